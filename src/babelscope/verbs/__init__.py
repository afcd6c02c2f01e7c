"""One module per verb: a config dataclass and ``run(config) -> Result``.

Each verb module defines ``SPEC = VerbSpec(...)``; the CLI parsers are generated from the specs
and the Python API (``bs.eval(...)``, ``bs.heads(...)``) calls the same ``run``::

    import babelscope as bs
    r = bs.eval(model="default", tasks="continuation", languages="eng_Latn,fra_Latn", limit=4)
    r.to_frame()
"""

from __future__ import annotations

import importlib
from collections.abc import Callable
from dataclasses import dataclass

from babelscope import runs
from babelscope.errors import BabelscopeError, UsageError

GROUPS = ("measure", "interpret", "improve", "inspect")  # order of verb groups in --help
MODULES = {  # verb name -> module under babelscope.verbs
    "cypher": "cypher", "report": "report", "compare": "compare",
    "eval": "eval", "rescore": "rescore",
    "fertility": "fertility", "ls": "ls", "merge": "merge", "demo": "demo",
    "neurons": "neurons", "compare-neurons": "compare_neurons", "layers": "layers", "finetune": "finetune",
    "heads": "heads", "mask": "mask",
    "loop": "loop", "agree": "agree",
}


@dataclass(frozen=True)
class VerbSpec:
    name: str
    group: str  # one of GROUPS
    help: str  # one line for the verb list
    config: type  # a Config dataclass
    run: Callable  # run(config) -> Result
    description: str = ""  # longer text for `babelscope VERB --help`
    writes_results: bool = True  # False: the verb writes no run folder (report, compare, ls)


def spec(name: str) -> VerbSpec:
    if name not in MODULES:
        raise UsageError(f"unknown verb {name!r}; known: {', '.join(sorted(MODULES))}.")
    return importlib.import_module(f"babelscope.verbs.{MODULES[name]}").SPEC


def all_specs() -> list[VerbSpec]:
    return sorted((spec(n) for n in MODULES), key=lambda s: (GROUPS.index(s.group), s.name))


def execute(verb: VerbSpec, config):
    """``verb.run(config)``; a run folder it created is removed again when the verb fails before
    writing anything but its config (bad input leaves no folder behind)."""
    first = len(runs.CREATED)
    try:
        return verb.run(config)
    except (BabelscopeError, KeyboardInterrupt):
        for path in runs.CREATED[first:]:
            runs.RunFolder(path).discard_if_empty()
        raise


def call(name: str, config=None, **options):
    """Run verb ``name`` from a config object or keyword options (the Python API)."""
    verb = spec(name)
    if config is None:
        config = verb.config.from_mapping(options, source=f"bs.{name}()", verb=name)
    elif options:
        raise UsageError(f"bs.{name}(): pass either a config object or keyword options, not both.")
    else:
        config.validate()
    return execute(verb, config)
