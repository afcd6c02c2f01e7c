"""``babelscope report`` (one self-contained HTML file for run folders) and ``babelscope compare``
(per-language differences between two runs, in the terminal and optionally as a report)."""

from __future__ import annotations

import argparse

from babelscope.cli.common import Verb

DEFAULT_REPORT = "report.html"  # where `report` writes when -o is not given


def add_report_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument(
        "runs",
        nargs="+",
        metavar="RUN",
        help="run folders written by babelscope verbs (a folder holding several runs, such as a "
        "demo run, is searched for the runs inside it)",
    )
    p.add_argument(
        "--output",
        "-o",
        default=DEFAULT_REPORT,
        help=f"the HTML file to write (default: {DEFAULT_REPORT}); figures are inline, so this one "
        "file is the whole report and makes no network requests",
    )
    p.add_argument(
        "--compare",
        action="store_true",
        help="with exactly two runs, add a section of per-language differences (second − first)",
    )
    p.add_argument("--title", default=None, help="report title (default: babelscope report: <models>)")


def run_report(args: argparse.Namespace) -> int:
    from babelscope.report import write_report

    path = write_report(args.runs, args.output, compare=args.compare, title=args.title)
    print(f"babelscope: wrote report {path.resolve()}")
    return 0


def add_compare_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument("run_a", metavar="RUN_A", help="the first run folder (A, e.g. before)")
    p.add_argument("run_b", metavar="RUN_B", help="the second run folder (B, e.g. after)")
    p.add_argument(
        "--output",
        "-o",
        default=None,
        help="also write an HTML report of both runs with the comparison section to this file",
    )
    p.add_argument(
        "--metrics",
        "-m",
        default=None,
        help="comma-separated metric names to compare, e.g. acc,bits_per_char (default: every shared metric)",
    )
    p.add_argument(
        "--max_rows", type=int, default=400, help="at most this many rows in the terminal table (default: 400)"
    )


def run_compare(args: argparse.Namespace) -> int:
    from rich.console import Console

    from babelscope.report.collect import load_run
    from babelscope.report.compare import compare_runs, rich_table

    a, b = load_run(args.run_a), load_run(args.run_b)
    metrics = [m.strip() for m in args.metrics.split(",") if m.strip()] if args.metrics else None
    diffs = compare_runs(a, b, metrics)
    Console().print(rich_table(a, b, diffs, args.max_rows))
    if args.output:
        from babelscope.report import write_report

        path = write_report([args.run_a, args.run_b], args.output, compare=True)
        print(f"babelscope: wrote report {path.resolve()}")
    return 0


VERBS = [
    Verb(
        "report",
        "inspect",
        "one self-contained HTML report (figures + tables) for any set of run folders",
        add_report_arguments,
        run_report,
        description="Renders whatever the run folders contain: per-language accuracy with 95% intervals and "
        "macro/micro means, consistency heatmaps, fertility tables and the fertility-against-"
        "accuracy scatter, layer x head maps, neuron classes per layer, ablation and deactivation "
        "matrices, Text2Cypher tables, finetune/merge provenance with before/after per language. "
        "Every figure has alt text and its numbers in a table.\n\nExample:\n"
        "  babelscope report runs/default/eval-* runs/default/heads-* -o report.html",
    ),
    Verb(
        "compare",
        "inspect",
        "per-language differences between two runs (terminal table, optional report)",
        add_compare_arguments,
        run_compare,
        description="Matches every per-language figure the two runs share (same task/metric) and prints "
        "A, B and B − A per language with macro means.\n\nExample:\n"
        "  babelscope compare runs/default/eval-A runs/default/eval-B -o compare.html",
    ),
]
