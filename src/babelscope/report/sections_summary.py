"""The report's opening section: results per language across the evaluation runs.

One table per run that holds ``tasks`` (``{task: {language: {metric: value}}}``, the eval layout):
a row per language, and per task its headline metric, the cross-lingual consistency against the
reference language (``consistency[task].vs_reference[language].consistency``) and the off-target
rate of generation tasks (``off_target``), where the run has them; the macro mean in the footer.
"""

from __future__ import annotations

from babelscope.report.collect import Run, is_lang, is_number, lang_name
from babelscope.report.labels import label
from babelscope.report.model import Section, Table
from babelscope.report.sections import HEADLINE, mean

OFF_TARGET_KEYS = ("off_target", "off_target_rate")  # per-language metric names of the off-target rate


def eval_tasks(run: Run) -> dict[str, dict[str, dict]]:
    """``{task: {language: metrics}}`` of an evaluation run, empty for other runs."""
    tasks = run.results.get("tasks")
    if not isinstance(tasks, dict):
        return {}
    return {
        str(t): {lang: m for lang, m in per.items() if is_lang(lang) and isinstance(m, dict)}
        for t, per in tasks.items()
        if isinstance(per, dict) and any(is_lang(k) for k in per)
    }


def task_headline(run: Run, task: str, per: dict[str, dict]) -> str | None:
    """The run's own headline metric of ``task`` (``headline`` or ``task_info``), else the first of HEADLINE."""
    present = {k for m in per.values() for k, v in m.items() if is_number(v)}
    for key, field in (("headline", "metric"), ("task_info", "headline")):
        named = (run.results.get(key) or {}).get(task)
        if isinstance(named, dict) and named.get(field) in present:
            return named[field]
    return next((m for m in HEADLINE if m in present), None)


def _consistency(run: Run, task: str) -> tuple[dict[str, float], str | None]:
    node = (run.results.get("consistency") or {}).get(task)
    vs = node.get("vs_reference") if isinstance(node, dict) else None
    if not isinstance(vs, dict):
        return {}, None
    values = {lang: v["consistency"] for lang, v in vs.items()
              if isinstance(v, dict) and is_number(v.get("consistency"))}
    return values, node.get("reference")


def _off_target(run: Run, task: str, per: dict[str, dict]) -> dict[str, float]:
    own = {lang: m[k] for lang, m in per.items() for k in OFF_TARGET_KEYS if is_number(m.get(k))}
    top = (run.results.get("off_target") or {}).get(task) if run.verb != "heads" else None
    if isinstance(top, dict):
        own.update({lang: v for lang, v in top.items() if is_lang(lang) and is_number(v)})
    return own


def run_table(run: Run) -> Table | None:
    """Languages x (task, figure) for one evaluation run; None when the run has no tasks."""
    tasks = eval_tasks(run)
    columns: list[str] = []
    per_col: list[dict[str, float]] = []
    refs = []
    for task, per in tasks.items():
        head = task_headline(run, task, per)
        if head:
            columns.append(f"{task}: {label(head)}")
            per_col.append({lang: m[head] for lang, m in per.items() if is_number(m.get(head))})
        cons, ref = _consistency(run, task)
        if cons:
            columns.append(f"{task}: consistency")
            per_col.append(cons)
            refs.append(ref)
        off = _off_target(run, task, per)
        if off:
            columns.append(f"{task}: {label('off_target')}")
            per_col.append(off)
    if not columns:
        return None
    langs: list[str] = []
    for per in tasks.values():
        langs += [lang for lang in per if lang not in langs]
    rows = [[lang, lang_name(lang), *[col.get(lang) for col in per_col]] for lang in langs]
    foot = [["macro mean", "", *[mean(col.values()) for col in per_col]]]
    caption = f"{run.label} (model {run.model})"
    if refs:
        ref = ", ".join(sorted({r or "the reference language" for r in refs}))
        caption += f"; consistency: share of items answered as {ref} does"
    return Table.make(["language", "name", *columns], rows, caption=caption, foot=foot, collapsed=False)


def per_language_summary(runs: list[Run]) -> list[Section]:
    """The opening section: one table per evaluation run (nothing when no run evaluated tasks)."""
    tables = [t for run in runs if (t := run_table(run)) is not None]
    if not tables:
        return []
    intro = (
        "Per language and task: the headline metric, the cross-lingual consistency (the share of items on "
        "which the language picks the same option as the reference language) and, for generation tasks, the "
        "off-target rate (answers in another language). Click a column heading to sort."
    )
    return [Section("Results per language", "summary", intro=intro, blocks=tables)]
