"""``babelscope report``: one self-contained HTML file (figures and tables) for any set of run folders."""

from __future__ import annotations

import argparse
from dataclasses import dataclass
from pathlib import Path

from babelscope.errors import UsageError
from babelscope.measure.aggregate import task_metrics  # --compare: a task's figures on the shared items
from babelscope.report import write_report
from babelscope.verbs import VerbSpec
from babelscope.verbs.config import Config, option
from babelscope.verbs.result import Result

DEFAULT_REPORT = "report.html"  # where `report` writes when -o is not given
RUNS_HELP = ("run folders written by babelscope verbs (a folder holding several runs, such as a demo run, is "
             "searched for the runs inside it)")


@dataclass
class ReportConfig(Config):
    runs: list = option(help=RUNS_HELP, cli=False)  # the CLI takes them as positional RUN... (add_to_parser)
    output: str = option(DEFAULT_REPORT, "the HTML file to write; figures are inline, so this one file is the "
                         "whole report and makes no network requests", short="-o")
    compare: bool = option(False, "with exactly two runs, add a section of per-language differences (second − "
                           "first)")
    title: str | None = option(None, "report title (default: babelscope report: <models>)")

    @classmethod
    def add_to_parser(cls, parser: argparse.ArgumentParser) -> None:
        parser.add_argument("runs", nargs="+", metavar="RUN", default=argparse.SUPPRESS, help=RUNS_HELP)
        super().add_to_parser(parser)

    def validate(self) -> None:
        super().validate()
        self.runs = [self.runs] if isinstance(self.runs, (str, Path)) else list(self.runs or [])
        if not self.runs:
            raise UsageError("report: pass one or more run folders.")


def run(config: ReportConfig) -> Result:
    path = write_report([str(p) for p in config.runs], config.output, compare=config.compare, title=config.title,
                        rescore=task_metrics)
    return Result("report", {}, None, f"babelscope: wrote report {path.resolve()}", extras={"report": path})


SPEC = VerbSpec(
    "report", "inspect", "one self-contained HTML report (figures + tables) for any set of run folders",
    ReportConfig, run,
    description="Opens with the results per language (a language x task table of each eval run's headline "
    "metric, consistency and off-target rate), then renders whatever the run folders contain: per-language "
    "accuracy with 95% intervals and macro/micro means, consistency heatmaps, fertility in tokens per character, "
    "curated sections for layers (PLAST), neurons (class counts, deactivation matrix) and heads (LAHIS), "
    "Text2Cypher tables, finetune/merge provenance with before/after per language; every table sorts on a click. "
    "Every figure has alt text and its numbers in a "
    "table. Run folders of the previous layout (no schema_version in results.json) are read best-effort. "
    "Example: babelscope report runs/default/eval-* runs/default/heads-* -o report.html",
    writes_results=False,
)
