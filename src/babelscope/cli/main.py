"""``babelscope <verb>``: parsers generated from the verb configs (``babelscope.verbs``).

Each verb's flags are its config fields; ``--config run.yaml`` gives the same keys (CLI > YAML >
defaults). Errors a user can fix print one line and exit 2; ``--verbose`` shows the traceback.
Only the chosen verb's module is imported, so ``babelscope VERB ...`` starts fast.
"""

from __future__ import annotations

import argparse
import os
import sys

from babelscope import __version__, verbs
from babelscope.cli.config_file import read_config_file
from babelscope.errors import BabelscopeError

EPILOG = ("\nRun `babelscope VERB --help` for the flags of a verb. Flags are spelled as in lm-eval "
          "(--model_args, --tasks, --batch_size, --limit, --output_path); hyphen forms are accepted. "
          "`--config run.yaml` takes the same keys (CLI > YAML > defaults).")


class _Parser(argparse.ArgumentParser):
    """argparse with one-line errors (no usage block): what was wrong, and where the flags are listed."""

    def error(self, message):
        self.exit(2, f"{self.prog}: error: {message}; see `{self.prog} --help`\n")


def _epilog(specs: list) -> str:
    lines = []
    for group in verbs.GROUPS:
        members = [s for s in specs if s.group == group]
        if members:
            lines.append(f"{group}:")
            lines += [f"  {s.name:<16} {s.help}" for s in members]
    return "\n".join(lines) + EPILOG


def build_parser(only: str | None = None) -> argparse.ArgumentParser:
    """The whole parser, or (``only``) the top level plus one verb's sub-parser."""
    specs = [verbs.spec(only)] if only in verbs.MODULES else verbs.all_specs()
    parser = _Parser(prog="babelscope", formatter_class=argparse.RawDescriptionHelpFormatter, allow_abbrev=False,
                     epilog=_epilog(specs) if only is None else EPILOG,
                     description="Measure, explain and improve what a causal language model can do in each language.")
    parser.add_argument("--version", action="version", version=f"babelscope {__version__}")
    sub = parser.add_subparsers(dest="verb", metavar="VERB", required=True)
    for spec in specs:
        p = sub.add_parser(spec.name, description=spec.description or spec.help, allow_abbrev=False)
        spec.config.add_to_parser(p)
        p.add_argument("--config", "-C", default=None,
                       help="YAML file whose keys equal the long flags (a run's config.yaml re-runs it)")
        p.add_argument("--verbose", action="store_true", help="show full tracebacks and library logs")
        p.set_defaults(_spec=spec)
    return parser


def _normalise(argv: list[str]) -> list[str]:
    """Accept hyphen aliases: ``--batch-size 4`` == ``--batch_size 4``, ``--no-dry-run`` == ``--no-dry_run``."""
    out = []
    for tok in argv:
        if tok.startswith("--") and len(tok) > 2:
            name, eq, value = tok.partition("=")
            prefix = "--no-" if name.startswith("--no-") else "--"
            tok = prefix + name[len(prefix):].replace("-", "_") + eq + value
        out.append(tok)
    return out


def config_of(args: argparse.Namespace):
    """The verb config from the parsed flags over the ``--config`` YAML over the defaults."""
    given = {k: v for k, v in vars(args).items() if k not in ("verb", "config", "verbose", "_spec")}
    values = {**(read_config_file(args.config) if args.config else {}), **given}
    return args._spec.config.from_mapping(values, source=f"--config {args.config}" if args.config else "",
                                          verb=args._spec.name)


def main(argv: list[str] | None = None) -> int:
    argv = _normalise(list(sys.argv[1:] if argv is None else argv))
    first = next((a for a in argv if not a.startswith("-")), None)
    args = build_parser(only=first).parse_args(argv)
    if not args.verbose:
        os.environ.setdefault("TRANSFORMERS_VERBOSITY", "error")
    try:
        result = verbs.execute(args._spec, config_of(args))
        if result.summary:
            print(result.summary)
        return result.exit_code
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
