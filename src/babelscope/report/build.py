"""Collect run folders, run every section renderer over them, render one self-contained HTML file.

    from babelscope.report import write_report
    write_report(["runs/default/eval-...", "runs/default/heads-..."], "report.html")

Renderers are independent: each looks for what it needs and returns nothing otherwise. A renderer
that fails on an unexpected layout adds a short note instead of breaking the report (``strict=True``
re-raises, for tests).
"""

from __future__ import annotations

import datetime as dt
import sys
from pathlib import Path

from babelscope import __version__
from babelscope.errors import UsageError
from babelscope.report import sections as measure
from babelscope.report import (
    sections_fertility,
    sections_heads,
    sections_improve,
    sections_interpret,
    sections_layers,
    sections_loop,
    sections_neurons,
    sections_runs,
    sections_summary,
    sections_vision,
)
from babelscope.report.collect import Run, load_runs
from babelscope.report.compare import compare_sections
from babelscope.report.lm_eval import latest_file
from babelscope.report.model import Note, Section
from babelscope.runs import atomic_write_text, redact

MAX_NESTING = 5  # how deep to look for run folders inside a given folder (the demo nests its runs)


def find_run_folders(paths) -> list[Path]:
    """The given run folders, plus run folders nested inside them (a demo run holds its sub-runs)."""
    out: list[Path] = []
    for p in map(Path, paths):
        if not p.is_dir():
            raise UsageError(f"run folder {p} does not exist; pass folders that babelscope verbs wrote.")
        found = [p] if _is_run(p) else []
        found += sorted(q for q in _nested(p, MAX_NESTING) if q != p)
        if not found:
            raise UsageError(f"{p} holds no run folder (no config.yaml or results.json in it or below it).")
        out += [q for q in found if q not in out]
    return out


def _is_run(p: Path) -> bool:
    return (p / "config.yaml").is_file() or (p / "results.json").is_file() or latest_file(p) is not None


def _nested(p: Path, depth: int):
    if depth <= 0:
        return
    for child in sorted(p.iterdir()):
        if child.is_dir() and child.name not in ("artifacts", "samples", "model", "checkpoints"):
            if _is_run(child):
                yield child
            yield from _nested(child, depth - 1)


def _safe(fn, *args, strict: bool, label: str, what: str) -> list[Section]:
    try:
        result = fn(*args)
    except Exception as exc:  # a new layout must never break the whole report
        if strict:
            raise
        print(f"babelscope: report: skipped {what} of {label}: {type(exc).__name__}: {exc}", file=sys.stderr)
        return [
            Section(
                f"{what}: not rendered",
                "error",
                label,
                blocks=[
                    Note(
                        f"This part could not be rendered ({type(exc).__name__}: {exc}). "
                        "The run folder's files are unchanged."
                    )
                ],
            )
        ]
    return [result] if isinstance(result, Section) else list(result or [])


CURATED = {  # verb -> its own renderer, which shows the whole run (the generic renderers then stay out)
    "layers": lambda run: sections_vision.plast_layers(run) or sections_layers.layers(run),  # an LVLM's, or text
    "neurons": sections_neurons.neurons,
    "heads": sections_heads.heads,
    "loop": sections_loop.loop_sections,  # its steps are runs of their own in the same report
}


def generic_sections(run: Run, strict: bool) -> list[Section]:
    """Sections of a run no curated renderer claims, found by the shapes in its folder."""
    claimed: list[tuple] = [(k,) for k in sections_improve.claimed_keys(run)]
    fert = _safe(sections_fertility.fertility, run, strict=strict, label=run.label, what="fertility")
    if fert:
        claimed.append(("fertility",))
    secs = _safe(sections_improve.provenance, run, strict=strict, label=run.label, what="provenance")
    secs += _safe(sections_improve.before_after, run, strict=strict, label=run.label, what="before/after")
    renderers = [
        ("per-language results", lambda r: measure.per_language(r, tuple(claimed))),
        ("matrices", measure.matrices),
        ("head classes", sections_interpret.head_classes),
        ("head scores", sections_interpret.head_scores),
        ("neuron sets", sections_interpret.neuron_sets),
        ("per-layer series", sections_interpret.layer_series),
        ("training curve", sections_interpret.training_curve),
        ("head mask", sections_improve.head_mask),
    ]
    for what, fn in renderers:
        secs += _safe(fn, run, strict=strict, label=run.label, what=what)
    secs += fert  # the tokenizer tables after the results
    return secs + _safe(sections_runs.scalars, run, strict=strict, label=run.label, what="other figures")


def run_sections(run: Run, strict: bool = False) -> list[Section]:
    """Every section one run yields, in reading order: its header, then its curated or generic sections."""
    secs = _safe(sections_runs.run_header, run, strict=strict, label=run.label, what="run header")
    if run.verb in CURATED:
        return secs + _safe(CURATED[run.verb], run, strict=strict, label=run.label, what=run.verb)
    return secs + generic_sections(run, strict)


def build_report(run_paths, compare: bool = False, strict: bool = False, title: str | None = None,
                 rescore=None) -> dict:
    """The template context: runs, their sections, and the sections across runs (results per language
    first). ``rescore`` recomputes a task's metrics on a subset of its records (see ``report.compare``)."""
    runs = load_runs(find_run_folders(run_paths), required=[p for p in map(Path, run_paths) if _is_run(p)])
    across = _safe(sections_summary.per_language_summary, runs, strict=strict, label="all runs", what="summary")
    if compare:
        if len(runs) != 2:
            raise UsageError(f"--compare needs exactly two run folders, got {len(runs)}.")
        across += compare_sections(*runs, rescore=rescore)  # a comparison the user asked for must not fail silently
    across += _safe(
        sections_fertility.fertility_scatter, runs, strict=strict, label="all runs", what="fertility scatter"
    )
    across += _safe(sections_runs.overview, runs, strict=strict, label="all runs", what="overview")
    per_run = [(run, run_sections(run, strict)) for run in runs]
    return {
        "title": title or ("babelscope report: " + ", ".join(sorted({r.model for r in runs}))),
        "generated": dt.datetime.now(dt.UTC).strftime("%Y-%m-%d %H:%M UTC"),
        "version": __version__,
        "across": across,
        "runs": per_run,
    }


def render(context: dict) -> str:
    import jinja2

    env = jinja2.Environment(
        loader=jinja2.PackageLoader("babelscope.report", "templates"),
        autoescape=jinja2.select_autoescape(["html", "j2"]),
        trim_blocks=True,
        lstrip_blocks=True,
    )
    return env.get_template("report.html.j2").render(**context)


def write_report(
    run_paths, out_path="report.html", compare: bool = False, strict: bool = False, title: str | None = None,
    rescore=None,
) -> Path:
    """Write one self-contained HTML report of ``run_paths`` to ``out_path``; returns its path."""
    html = render(build_report(run_paths, compare=compare, strict=strict, title=title, rescore=rescore))
    return atomic_write_text(Path(out_path), redact(html))  # no home folder or URL credentials in the file
