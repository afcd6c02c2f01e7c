"""``babelscope <verb>``: discovers verbs in the modules of ``babelscope.cli``.

A module adds verbs by defining ``VERBS = [Verb(...)]``; nothing here changes.
"""

from __future__ import annotations

import argparse
import importlib
import os
import pkgutil
import sys

import babelscope.cli as cli_pkg
from babelscope.cli.common import GROUPS, Verb
from babelscope.errors import BabelscopeError

_NOT_VERBS = {"main", "common"}


def discover() -> list[Verb]:
    verbs: list[Verb] = []
    for info in pkgutil.iter_modules(cli_pkg.__path__):
        if info.name in _NOT_VERBS or info.name.startswith("_"):
            continue
        module = importlib.import_module(f"babelscope.cli.{info.name}")
        verbs.extend(getattr(module, "VERBS", []))
    return sorted(verbs, key=lambda v: (GROUPS.index(v.group), v.name))


def _epilog(verbs: list[Verb]) -> str:
    lines = []
    for group in GROUPS:
        members = [v for v in verbs if v.group == group]
        if members:
            lines.append(f"{group}:")
            lines += [f"  {v.name:<16} {v.help}" for v in members]
    lines.append("\nRun `babelscope VERB --help` for the flags of a verb. Flags are spelled as in lm-eval "
                 "(--model_args, --tasks, --batch_size, --limit, --output_path); hyphen forms are accepted. "
                 "`--config run.yaml` takes the same keys (CLI > YAML > defaults).")
    return "\n".join(lines)


def build_parser(verbs: list[Verb]) -> argparse.ArgumentParser:
    from babelscope import __version__

    parser = argparse.ArgumentParser(
        prog="babelscope", formatter_class=argparse.RawDescriptionHelpFormatter, epilog=_epilog(verbs),
        description="Measure, explain and improve what a causal language model can do in each language.")
    parser.add_argument("--version", action="version", version=f"babelscope {__version__}")
    sub = parser.add_subparsers(dest="verb", metavar="VERB", required=True)
    for verb in verbs:
        p = sub.add_parser(verb.name, description=verb.description or verb.help,
                           formatter_class=argparse.RawDescriptionHelpFormatter)
        verb.add_arguments(p)
        p.add_argument("--config", "-C", default=None,
                       help="YAML file whose keys equal the long flags (a run's config.yaml re-runs it)")
        p.add_argument("--verbose", action="store_true", help="show full tracebacks and library logs")
        p.set_defaults(func=verb.run)
    return parser


def _normalise(argv: list[str]) -> list[str]:
    """Accept hyphen aliases: ``--batch-size 4`` == ``--batch_size 4``."""
    out = []
    for tok in argv:
        if tok.startswith("--") and len(tok) > 2:
            name, eq, value = tok.partition("=")
            tok = name.replace("-", "_").replace("__", "--", 1) + eq + value
        out.append(tok)
    return out


def _apply_config(parser: argparse.ArgumentParser, argv: list[str], args: argparse.Namespace):
    """Re-parse with the YAML values as defaults, so CLI > YAML > defaults."""
    import yaml

    from babelscope.errors import UsageError

    try:
        with open(args.config, encoding="utf-8") as f:
            values = yaml.safe_load(f) or {}
    except OSError as exc:
        raise UsageError(f"cannot read --config {args.config}: {exc.strerror}") from None
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


def main(argv: list[str] | None = None) -> int:
    argv = _normalise(list(sys.argv[1:] if argv is None else argv))
    parser = build_parser(discover())
    args = parser.parse_args(argv)
    if not args.verbose:
        os.environ.setdefault("TRANSFORMERS_VERBOSITY", "error")
    try:
        if args.config:
            args = _apply_config(parser, argv, args)
        return int(args.func(args) or 0)
    except BabelscopeError as exc:
        if args.verbose:
            raise
        print(f"babelscope: error: {exc}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print("babelscope: interrupted; finished results are saved and the run resumes from them.",
              file=sys.stderr)
        return 130


if __name__ == "__main__":
    sys.exit(main())
