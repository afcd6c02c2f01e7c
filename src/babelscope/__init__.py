"""babelscope: measure, explain and improve what a causal LM can do in each language.

The public API is lazy, so ``import babelscope`` and ``babelscope --help`` stay fast. Every verb
of the CLI is a function taking the same options as keyword arguments (or a config object)::

    import babelscope as bs
    r = bs.eval(model="default", tasks="continuation", languages="eng_Latn,fra_Latn", limit=4)
    r.to_frame()                      # a tidy pandas table; r.path is the run folder
    loaded = bs.load_model("default")
    with bs.hooks(loaded.model, {"blocks.0.attn.hook_z": fn}):
        ...
"""

from __future__ import annotations

import importlib
import sys
import types

__version__ = "0.1.0"

_LAZY = {
    "load_model": "babelscope.models.load:load_model",
    "load_tokenizer": "babelscope.models.load:load_tokenizer",
    "LoadedModel": "babelscope.models.load:LoadedModel",
    "hooks": "babelscope.models.hooks:hooks",
    "get_act_name": "babelscope.models.hooks:get_act_name",
    "get_adapter": "babelscope.models.adapters:get_adapter",
    "register_architecture": "babelscope.models.adapters:register_architecture",
    "resolve_language": "babelscope.languages:resolve",
    "load_corpus": "babelscope.data.corpus:load_corpus",
    "RunFolder": "babelscope.runs:RunFolder",
    "BabelscopeError": "babelscope.errors:BabelscopeError",
}
_SUBMODULES = {"measure", "interpret", "improve", "cypher", "report", "data", "models", "languages", "verbs",
               "schema", "runs", "errors", "distributed", "testing", "cli"}


def _verb_function(verb: str):
    from babelscope import verbs

    spec = verbs.spec(verb)

    def run_verb(config=None, **options):
        return verbs.call(verb, config, **options)

    run_verb.__name__ = run_verb.__qualname__ = verb.replace("-", "_")
    options = ", ".join(f.name for f in spec.config.fields())
    run_verb.__doc__ = f"{spec.help}.\n\n{spec.description}\n\nOptions: {options}. Returns a Result."
    return run_verb


def _verb_names() -> dict[str, str]:
    from babelscope.verbs import MODULES

    return {name.replace("-", "_"): name for name in MODULES}


def __getattr__(name: str):
    if name in _LAZY:
        module, attr = _LAZY[name].split(":")
        return getattr(importlib.import_module(module), attr)
    if name in _SUBMODULES:
        return importlib.import_module(f"babelscope.{name}")
    if name in _verb_names():
        return _verb_function(_verb_names()[name])
    raise AttributeError(f"module 'babelscope' has no attribute {name!r}")


def __dir__():
    return sorted([*_LAZY, *_SUBMODULES, *_verb_names(), "__version__"])


class _VerbPackage(types.ModuleType):
    """A subpackage named like a verb (``babelscope.cypher``, ``babelscope.report``): calling it runs the
    verb, so ``bs.cypher(...)`` works like ``bs.eval(...)`` while ``bs.cypher.graph`` stays the module."""

    def __call__(self, config=None, **options):
        from babelscope import verbs

        return verbs.call(self.__name__.rsplit(".", 1)[1], config, **options)


class _Package(types.ModuleType):
    """``babelscope`` itself: importing a subpackage binds it as an attribute here (the import system
    does that, which would hide the verb function of the same name), so those few become callable."""

    def __setattr__(self, name, value):
        if name in _VERB_PACKAGES and isinstance(value, types.ModuleType):
            value.__class__ = _VerbPackage
        super().__setattr__(name, value)


_VERB_PACKAGES = ("cypher", "report")  # subpackages that are also verbs
sys.modules[__name__].__class__ = _Package
