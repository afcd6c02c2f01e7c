"""Run-to-run comparison: per-language differences (B − A) of every per-language figure both runs share.

Tables are matched by their place in results.json (``per_language``, ``fertility / default`` ...)
and metric; when two runs of different verbs share no place, tables are matched by metric name.
"""

from __future__ import annotations

from dataclasses import dataclass

from babelscope.errors import UsageError
from babelscope.report import plots
from babelscope.report.collect import LangTable, Run, language_tables
from babelscope.report.model import Figure, Section, Table, fmt
from babelscope.report.sections import headline_metric, mean
from babelscope.report.sections_improve import _lower_is_better


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


def compare_sections(a: Run, b: Run, max_figures: int = 6) -> list[Section]:
    """Report sections: one per (table, metric) group with a diverging bar chart of B − A."""
    diffs = compare_runs(a, b)
    out = []
    for k, ((name, metric), group) in enumerate(headline_diffs(diffs).items()):
        title = f"Comparison: {name} / {metric}"
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
