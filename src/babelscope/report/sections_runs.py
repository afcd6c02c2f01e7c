"""Sections about the runs themselves: the overview table, each run's provenance (config.yaml,
README.md), and the single values no other section shows."""

from __future__ import annotations

from babelscope.report.collect import Run, is_lang, is_number
from babelscope.report.labels import path_label
from babelscope.report.model import Note, Section, Table

MAX_SCALARS = 60  # rows in a run's "other figures" table


# overview -----------------------------------------------------------------------------------


def overview(runs: list[Run]) -> Section:
    sec = Section("Runs in this report", "overview")
    rows = []
    for run in runs:
        langs = ", ".join(run.languages)
        rows.append([run.label, run.verb, run.model, langs or "–", str(run.config.get("tasks") or "–"), str(run.path)])
    sec.add(
        Table.make(
            ["run", "verb", "model", "languages", "tasks", "folder"],
            rows,
            caption="Run folders read for this report",
            collapsed=False,
        )
    )
    return sec


def run_header(run: Run) -> Section:
    """Per-run provenance: config.yaml and README.md, folded."""
    import yaml

    intro = f"Verb {run.verb}, model {run.model}. Folder {run.path}."
    sec = Section("Settings and notes", "run", run.label, intro=intro)
    if run.legacy:
        sec.add(Note("This folder has the previous results.json layout (no schema_version) and was read "
                     "best-effort; re-running the verb with --config on its config.yaml writes the current one."))
    if run.config:
        sec.add(
            Note(
                yaml.safe_dump(run.config, sort_keys=False, allow_unicode=True),
                pre=True,
                summary="config.yaml (re-runs this run with --config)",
            )
        )
    if run.readme.strip():
        sec.add(Note(run.readme.strip()[:6000], pre=True, summary="README.md"))
    return sec


# remaining scalars --------------------------------------------------------------------------


SCALARS_SHOWN_ELSEWHERE = (
    "schema_version",
    "environment",
    "config",
    "model",
    "started",
    "seconds",
    "before_after",
    "recipe",
    "merge",
    "verb",
    "task_info",
    "headline",
    "macro",
    "micro",
    "fertility_correlation",
)  # top-level keys shown elsewhere (the envelope in the run header and the overview; an eval's means in its
# tables' footers; its fertility correlation beside the fertility scatter)


def scalar_leaves(obj, path=(), depth=0):
    if depth > 4 or not isinstance(obj, dict):
        return
    for key, val in obj.items():
        if (not path and key in SCALARS_SHOWN_ELSEWHERE) or is_lang(key) or "trainable" in str(key):
            continue
        p = (*path, str(key))
        if is_number(val) or isinstance(val, bool) or (isinstance(val, str) and len(val) <= 200):
            yield path_label(p), val
        elif isinstance(val, dict):
            yield from scalar_leaves(val, p, depth + 1)


def scalars(run: Run) -> list[Section]:
    items = list(scalar_leaves(run.results))[:MAX_SCALARS]
    if not any(is_number(v) for _, v in items):  # names and labels alone are in the run header already
        return []
    sec = Section("Other figures", "scalars", run.label)
    sec.add(
        Table.make(
            ["key", "value"],
            [[k, v] for k, v in items],
            caption="Single values in results.json",
            collapsed=True,  # what no section shows: there to look up, folded
        )
    )
    return [sec]
