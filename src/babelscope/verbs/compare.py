"""``babelscope compare``: per-language differences between two runs (terminal table, optional report)."""

from __future__ import annotations

import io
from dataclasses import asdict, dataclass

from rich.console import Console

from babelscope.measure.aggregate import task_metrics  # recomputes a task's figures on the shared items
from babelscope.report import write_report
from babelscope.report.collect import load_run
from babelscope.report.compare import compare_runs, item_warnings, rich_table, shared_items
from babelscope.verbs import VerbSpec
from babelscope.verbs.config import Config, option
from babelscope.verbs.result import Result


@dataclass
class CompareConfig(Config):
    run_a: str = option(help="the first run folder (A, e.g. before)", positional=True, metavar="RUN_A")
    run_b: str = option(help="the second run folder (B, e.g. after)", positional=True, metavar="RUN_B")
    output: str | None = option(None, "also write an HTML report of both runs with the comparison section to "
                                "this file", short="-o")
    metrics: str | None = option(None, "comma-separated metric names to compare, e.g. acc,bits_per_char "
                                 "(default: every shared metric)", short="-m")
    max_rows: int = option(400, "at most this many rows in the terminal table", minimum=1)


def run(config: CompareConfig) -> Result:
    a, b, differ = shared_items(load_run(config.run_a), load_run(config.run_b), rescore=task_metrics)
    metrics = [m.strip() for m in config.metrics.split(",") if m.strip()] if config.metrics else None
    diffs = compare_runs(a, b, metrics)
    warnings = item_warnings(differ)
    summary = "".join(f"babelscope: warning: {w}\n" for w in warnings)
    summary += _render(rich_table(a, b, diffs, config.max_rows))
    extras = {"diffs": diffs}
    if config.output:
        path = write_report([config.run_a, config.run_b], config.output, compare=True, rescore=task_metrics)
        summary += f"\nbabelscope: wrote report {path.resolve()}"
        extras["report"] = path
    results = {"run_a": config.run_a, "run_b": config.run_b, "warnings": warnings,
               "item_sets": [asdict(d) for d in differ],
               "diffs": [{**asdict(d), "delta": d.delta} for d in diffs]}
    return Result("compare", results, None, summary, extras=extras)


def _render(table) -> str:
    """The rich table as text for the terminal (colours kept when the output is one)."""
    buffer = io.StringIO()
    terminal = Console()
    Console(file=buffer, width=terminal.width, force_terminal=terminal.is_terminal,
            color_system=terminal.color_system).print(table)
    return buffer.getvalue().rstrip("\n")


def rows(results: dict) -> list[dict]:
    """table, metric, language, a, b, delta (one row per difference)."""
    return list(results.get("diffs", []))


SPEC = VerbSpec(
    "compare", "inspect", "per-language differences between two runs (terminal table, optional report)",
    CompareConfig, run,
    description="Matches every per-language figure the two runs share (same task/metric) and prints A, B and "
    "B − A per language with macro means. Where the runs scored different items (e.g. different --limit), both are "
    "compared only on the items both scored, with a warning saying how many were dropped. Example: babelscope "
    "compare runs/default/eval-A runs/default/eval-B -o compare.html",
    writes_results=False,
)
