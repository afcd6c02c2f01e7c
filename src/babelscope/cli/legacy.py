"""Verbs still defined the old way (``VERBS = [Verb(...)]`` in a cli module, argparse namespaces):
discovered here until each moves to ``babelscope.verbs``."""

from __future__ import annotations

import argparse
import importlib
import pkgutil

import babelscope.cli as cli_pkg
from babelscope.cli.common import Verb
from babelscope.cli.config_file import read_config_file
from babelscope.errors import UsageError

_NOT_VERBS = {"main", "common", "legacy", "config_file"}


def discover() -> list[Verb]:
    found: list[Verb] = []
    for info in pkgutil.iter_modules(cli_pkg.__path__):
        if info.name in _NOT_VERBS or info.name.startswith("_"):
            continue
        found.extend(getattr(importlib.import_module(f"babelscope.cli.{info.name}"), "VERBS", []))
    return found


def apply_config(parser: argparse.ArgumentParser, argv: list[str], args: argparse.Namespace):
    """Re-parse with the YAML values as defaults, so CLI > YAML > defaults."""
    values = read_config_file(args.config)
    values.pop("verb", None)
    sub = parser._subparsers._group_actions[0].choices[args.verb]
    known = {a.dest for a in sub._actions}
    unknown = sorted(set(values) - known)
    if unknown:
        raise UsageError(f"--config {args.config}: unknown key(s) {', '.join(unknown)} for `{args.verb}`.")
    sub.set_defaults(**values)
    for action in sub._actions:  # a YAML value satisfies a required flag
        if action.dest in values:
            action.required = False
    return parser.parse_args(argv)
