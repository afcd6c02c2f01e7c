"""babelscope: measure, explain and improve what a causal LM can do in each language.

The public API is lazy, so ``import babelscope`` and ``babelscope --help`` stay fast::

    import babelscope as bs
    loaded = bs.load_model("default")
    with bs.hooks(loaded.model, {"blocks.0.attn.hook_z": fn}):
        ...
"""

from __future__ import annotations

import importlib

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
    "fertility": "babelscope.measure.fertility:fertility",
    "RunFolder": "babelscope.runs:RunFolder",
    "BabelscopeError": "babelscope.errors:BabelscopeError",
}
_SUBMODULES = {"measure", "interpret", "improve", "cypher", "report", "data", "models", "languages"}


def __getattr__(name: str):
    if name in _LAZY:
        module, attr = _LAZY[name].split(":")
        return getattr(importlib.import_module(module), attr)
    if name in _SUBMODULES:
        return importlib.import_module(f"babelscope.{name}")
    raise AttributeError(f"module 'babelscope' has no attribute {name!r}")


def __dir__():
    return sorted([*_LAZY, *_SUBMODULES, "__version__"])
