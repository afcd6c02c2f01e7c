"""Paper protocols: named presets of a verb's config that run a seed method as its paper ran it.

A protocol is ``protocols/<name>.yaml`` shipped in the package::

    verb: finetune                     # the verb it configures
    paper: "Title (Authors, year), URL of the official code"
    description: one line: what the preset reproduces
    values: {max_steps: 1000, ...}     # config fields, as in --config run.yaml

``babelscope <verb> --protocol NAME`` (or ``bs.<verb>(protocol=NAME)``) applies ``values`` under
everything the user gives: defaults < protocol < ``--config`` YAML < command line. The run's
config.yaml records the protocol and every resolved value. ``docs/protocols.md`` has a card per
paper: what it ran, what the preset sets, and every remaining difference.
"""

from __future__ import annotations

import difflib
from dataclasses import dataclass
from functools import cache
from importlib import resources

import yaml

from babelscope.errors import UsageError


@dataclass(frozen=True)
class Protocol:
    name: str
    verb: str
    paper: str
    description: str
    values: dict


def _files() -> dict[str, object]:
    root = resources.files(__package__)
    return {p.name.removesuffix(".yaml"): p for p in root.iterdir() if p.name.endswith(".yaml")}


def available() -> list[str]:
    return sorted(_files())


@cache
def load(name: str) -> Protocol:
    """The protocol ``name``; an unknown name is a one-line error with the closest names."""
    files = _files()
    if name not in files:
        close = difflib.get_close_matches(name, files, n=3)
        hint = f" Did you mean {', '.join(close)}?" if close else ""
        raise UsageError(f"unknown protocol {name!r}.{hint} Known: {', '.join(sorted(files)) or 'none'} "
                         "(babelscope ls protocols).")
    doc = yaml.safe_load(files[name].read_text(encoding="utf-8"))
    if not isinstance(doc, dict) or not isinstance(doc.get("values", {}), dict) or "verb" not in doc:
        raise UsageError(f"protocol {name} is malformed: it needs verb: and values: (a mapping).")
    return Protocol(name, doc["verb"], str(doc.get("paper", "")), str(doc.get("description", "")),
                    dict(doc.get("values") or {}))


def for_verb(name: str, verb: str) -> Protocol:
    """The protocol ``name``, which must configure ``verb``."""
    protocol = load(name)
    if protocol.verb != verb:
        raise UsageError(f"protocol {name} configures `babelscope {protocol.verb}`, not `{verb}`; run "
                         f"`babelscope {protocol.verb} --protocol {name}`.")
    return protocol
