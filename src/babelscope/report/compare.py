"""Run-to-run comparison: per-language differences (B − A) of every per-language figure both runs share.

Tables are matched by their place in results.json (``per_language``, ``fertility / default`` ...)
and metric; when two runs of different verbs share no place, tables are matched by metric name.

Two runs compare like with like only on the same items. ``shared_items`` reads the item ids of each
task and language from both runs' ``samples/<task>.<language>.jsonl``; where they differ (say two evals
with different ``--limit``), both runs' figures of that task and language are recomputed on the items
both scored (``rescore(records, task_info, language)``, e.g. ``measure.aggregate.task_metrics``; without
it, the metrics that are a mean over items), the task's cross-language consistency is left out, and a
warning says how many items were dropped.
"""

from __future__ import annotations

import copy
import json
from dataclasses import dataclass

from babelscope.errors import UsageError
from babelscope.report import plots
from babelscope.report.collect import LangTable, Run, is_number, language_tables
from babelscope.report.labels import label, path_label
from babelscope.report.model import Figure, Note, Section, Table, fmt
from babelscope.report.sections import headline_metric, mean
from babelscope.report.sections_improve import _lower_is_better


@dataclass
class ItemSet:
    """One task and language whose items differ between the runs."""

    task: str
    language: str
    a: int  # items A scored
    b: int  # items B scored
    shared: int  # items both scored: what the comparison uses


def _samples(run: Run) -> dict[tuple[str, str], list[dict]]:
    """``{(task, language): records}`` from ``samples/<task>.<language>.jsonl``."""
    out = {}
    for path in run.sample_files():
        task, _, lang = path.stem.rpartition(".")
        try:
            out[(task, lang)] = [json.loads(line) for line in path.read_text(encoding="utf-8").splitlines() if line]
        except ValueError:
            continue
    return out


def _restrict(run: Run, task: str, lang: str, records: list[dict], rescore) -> None:
    """Replace ``run``'s figures of (task, language) by those of ``records`` only."""
    per = run.results["tasks"][task]
    info = (run.results.get("task_info") or {}).get(task)
    if rescore is not None and isinstance(info, dict):
        new = rescore(records, info, lang)
    else:  # metrics that are a mean over the items' own values
        new = {k: mean(r[k] for r in records) for k in per[lang]
               if records and all(is_number(r.get(k)) for r in records)}
        new["n"] = len(records)
    per[lang] = {k: v for k, v in new.items() if is_number(v)}


def shared_items(a: Run, b: Run, rescore=None) -> tuple[Run, Run, list[ItemSet]]:
    """Copies of ``a`` and ``b`` whose per-language task figures cover only the items both runs scored,
    and the (task, language) pairs where the item sets differed."""
    a, b = copy.deepcopy(a), copy.deepcopy(b)
    sa, sb = _samples(a), _samples(b)
    differ = []
    for (task, lang), recs_a in sa.items():
        recs_b = sb.get((task, lang))
        tasks_a, tasks_b = a.results.get("tasks") or {}, b.results.get("tasks") or {}
        if recs_b is None or lang not in tasks_a.get(task, {}) or lang not in tasks_b.get(task, {}):
            continue
        ids_a, ids_b = [r.get("item_id") for r in recs_a], [r.get("item_id") for r in recs_b]
        if set(ids_a) == set(ids_b):
            continue
        both = set(ids_a) & set(ids_b)
        differ.append(ItemSet(task, lang, len(set(ids_a)), len(set(ids_b)), len(both)))
        for run, recs in ((a, recs_a), (b, recs_b)):
            _restrict(run, task, lang, [r for r in recs if r.get("item_id") in both], rescore)
    for task in {d.task for d in differ}:  # agreement across languages was measured on other items
        for run in (a, b):
            (run.results.get("consistency") or {}).pop(task, None)
    return a, b, differ


def item_warnings(differ: list[ItemSet]) -> list[str]:
    """One line per task whose item sets differ: how many languages, items compared and dropped."""
    out = []
    for task in dict.fromkeys(d.task for d in differ):
        rows = [d for d in differ if d.task == task]
        a, b, shared = (sum(getattr(d, k) for d in rows) for k in ("a", "b", "shared"))
        out.append(
            f"{task}: the runs scored different items in {len(rows)} language(s) "
            f"({', '.join(d.language for d in rows)}); compared only on the {shared} items both scored, dropping "
            f"{a - shared} of A's {a} and {b - shared} of B's {b}; its consistency figures are not compared."
        )
    return out


@dataclass
class Diff:
    table: str
    metric: str
    language: str
    a: float
    b: float

    @property
    def delta(self) -> float:
        return self.b - self.a


def _pairs(a: Run, b: Run) -> list[tuple[LangTable, LangTable]]:
    ta, tb = language_tables(a.results), language_tables(b.results)
    by_path = {t.path: t for t in tb}
    pairs = [(t, by_path[t.path]) for t in ta if t.path in by_path]
    if pairs:
        return pairs
    unused = list(tb)
    for t in ta:  # different layouts: pair tables one to one by the metrics and languages they share
        if not t.metrics():
            continue
        head = headline_metric(t)

        def overlap(u, t=t):
            return len(set(t.metrics()) & set(u.metrics())), len(set(t.rows) & set(u.rows))

        candidates = [u for u in unused if head in u.metrics()]
        if candidates:
            match = max(candidates, key=overlap)
            unused.remove(match)
            pairs.append((t, match))
    return pairs


def compare_runs(a: Run, b: Run, metrics: list[str] | None = None) -> list[Diff]:
    """Every (table, metric, language) present in both runs, with A's and B's value (only ``metrics``
    when given)."""
    diffs = []
    for ta, tb in _pairs(a, b):
        for metric in ta.metrics():
            if metric not in tb.metrics() or (metrics and metric not in metrics):
                continue
            for lang, vals in ta.rows.items():
                va, vb = vals.get(metric), tb.rows.get(lang, {}).get(metric)
                if va is not None and vb is not None:
                    diffs.append(Diff(ta.name, metric, lang, va, vb))
    if not diffs and metrics:
        raise UsageError(f"none of the metrics {', '.join(metrics)} is in both runs; drop --metrics to see all.")
    if not diffs:
        raise UsageError(
            f"{a.path} and {b.path} share no per-language figures to compare; pass two runs of "
            "the same kind (e.g. two eval runs, or a finetune run and an eval run)."
        )
    return diffs


def headline_diffs(diffs: list[Diff]) -> dict[tuple[str, str], list[Diff]]:
    """Diffs grouped by (table, metric), in first-seen order."""
    groups: dict[tuple[str, str], list[Diff]] = {}
    for d in diffs:
        groups.setdefault((d.table, d.metric), []).append(d)
    return groups


def rich_table(a: Run, b: Run, diffs: list[Diff], max_rows: int = 400):
    from rich.table import Table as RichTable

    table = RichTable(title=f"B − A per language\nA = {a.path}\nB = {b.path}", title_justify="left")
    for col, kw in (
        ("table", {}),
        ("metric", {}),
        ("language", {}),
        ("A", {"justify": "right"}),
        ("B", {"justify": "right"}),
        ("B − A", {"justify": "right"}),
    ):
        table.add_column(col, **kw)
    for (name, metric), group in headline_diffs(diffs).items():
        for d in group:
            if table.row_count >= max_rows:
                break
            better = d.delta < 0 if _lower_is_better(metric) else d.delta > 0
            color = "" if d.delta == 0 else "green" if better else "red"
            delta = f"{'+' if d.delta > 0 else ''}{fmt(d.delta)}"
            table.add_row(name, metric, d.language, fmt(d.a), fmt(d.b), f"[{color}]{delta}[/]" if color else delta)
        macro = mean(d.delta for d in group)
        table.add_row(
            name,
            metric,
            "[bold]macro mean[/]",
            fmt(mean(d.a for d in group)),
            fmt(mean(d.b for d in group)),
            f"[bold]{'+' if (macro or 0) > 0 else ''}{fmt(macro)}[/]",
            end_section=True,
        )
    return table


def _item_section(differ: list[ItemSet]) -> Section:
    sec = Section("Comparison: the runs scored different items", "compare_items")
    for line in item_warnings(differ):
        sec.add(Note("Warning: " + line))
    rows = [[d.task, d.language, d.a, d.b, d.shared, d.a - d.shared, d.b - d.shared] for d in differ]
    cols = ["task", "language", "items in A", "items in B", "compared (shared)", "dropped from A", "dropped from B"]
    return sec.add(Table.make(cols, rows, caption="Items per task and language", collapsed=len(rows) > 12))


def compare_sections(a: Run, b: Run, max_figures: int = 6, rescore=None) -> list[Section]:
    """Report sections: the item-set warning (if any), then one per (table, metric) group with a
    diverging bar chart of B − A."""
    a, b, differ = shared_items(a, b, rescore)
    diffs = compare_runs(a, b)
    out = [_item_section(differ)] if differ else []
    for k, ((name, metric), group) in enumerate(headline_diffs(diffs).items()):
        title = f"Comparison: {path_label(name.split(' / '))} · {label(metric)}"
        rows = [[d.language, d.a, d.b, d.delta] for d in group]
        foot = [["macro mean", mean(d.a for d in group), mean(d.b for d in group), mean(d.delta for d in group)]]
        tab = Table.make(
            ["language", "A", "B", "B − A"],
            rows,
            caption=f"{title}: A = {a.label}, B = {b.label}",
            signed_cols=(3,),
            lower_is_better=_lower_is_better(metric),
            foot=foot,
            collapsed=len(rows) > 24,
        )
        sec = Section(title, "compare", intro=f"A = {a.path}; B = {b.path}.")
        if k < max_figures:
            src = plots.diverging_bars(
                [d.language for d in group], [d.delta for d in group], xlabel=f"{metric}: B − A", title=title
            )
            alt = (
                f"Bar chart of the change in {metric} from run A to run B for {len(group)} languages: "
                + "; ".join(f"{d.language} {'+' if d.delta > 0 else ''}{fmt(d.delta)}" for d in group)
                + "."
            )
            sec.add(Figure(src, alt, "Bars right of zero: B is higher than A.", tab))
        else:
            sec.add(tab)
        out.append(sec)
    return out
