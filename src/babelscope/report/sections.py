"""Section renderers for measure-type content: run overview, per-language metrics with intervals,
language x language matrices (consistency, ablation, deactivation), and the remaining scalar figures.

Each renderer takes what it needs if present and returns no section otherwise.
"""

from __future__ import annotations

import math

from babelscope.report import plots
from babelscope.report.collect import (
    LangMatrix,
    LangTable,
    Run,
    is_lang,
    lang_name,
    language_matrices,
    language_tables,
)
from babelscope.report.labels import label, path_label
from babelscope.report.model import Figure, Note, Section, Table, fmt

Z95 = 1.96  # normal quantile of a two-sided 95% interval (interval = value ± 1.96 stderr)
HEADLINE = (
    "own_increase",
    "own_delta",
    "jaccard",
    "off_target_rate",
    "acc",
    "acc_norm",
    "execution_accuracy",
    "exact_match",
    "f1",
    "chrf",
    "bleu",
    "google_bleu",
    "bits_per_char",
    "bpc",
    "tokens_per_word",
    "fertility",
    "loss",
)  # first present = the plotted metric
FERTILITY = ("tokens_per_word", "fertility", "tokens_per_unit")  # metrics that measure fertility


def mean(values) -> float | None:
    vals = [v for v in values if v is not None and math.isfinite(v)]
    return sum(vals) / len(vals) if vals else None


# per-language metrics -----------------------------------------------------------------------


def headline_metric(table: LangTable, results: dict | None = None) -> str:
    """The run's own headline for this task (eval's ``headline``/``task_info``), else the first of HEADLINE."""
    metrics = table.metrics()
    task = table.path[-1] if table.path else None
    for key in ("headline", "task_info"):
        per_task = (results or {}).get(key)
        named = per_task.get(task) if task and isinstance(per_task, dict) else None
        name = (named.get("metric") or named.get("headline")) if isinstance(named, dict) else None
        if name in metrics:
            return name
    for name in HEADLINE:
        if name in metrics:
            return name
    return metrics[0]


def micro_mean(table: LangTable, metric: str) -> float | None:
    """Item-weighted mean over the languages that have the metric (None without item counts)."""
    pairs = [(table.rows[lang].get(metric), table.count(lang)) for lang in table.rows]
    if any(c is None for _, c in pairs):
        return None
    pairs = [(v, c) for v, c in pairs if v is not None]
    total = sum(c for _, c in pairs)
    return sum(v * c for v, c in pairs) / total if total else None


def lang_table_block(table: LangTable, title: str, results: dict | None = None) -> list:
    """Bar chart of the headline metric with 95% intervals, macro/micro means; all metrics in a table."""
    metrics = table.metrics()
    if not metrics:
        return []
    head = headline_metric(table, results)
    langs = list(table.rows)
    values = [table.rows[lang].get(head) for lang in langs]
    errors = [Z95 * se if (se := table.stderr(lang, head)) is not None else None for lang in langs]
    macro, micro = mean(values), micro_mean(table, head)
    means = {"macro mean": macro}
    if micro is not None:
        means["micro mean"] = micro
    has_se = {m: any(table.stderr(lang, m) is not None for lang in langs) for m in metrics}
    has_n = any(table.count(lang) is not None for lang in langs)
    columns = ["language", "name"]
    for m in metrics:
        columns += [label(m)] + (["± 95% CI"] if has_se[m] else [])
    columns += [label("n")] if has_n else []
    rows = []
    for lang in langs:
        row = [lang, lang_name(lang)]
        for m in metrics:
            row.append(table.rows[lang].get(m))
            if has_se[m]:
                se = table.stderr(lang, m)
                row.append(None if se is None else Z95 * se)
        if has_n:
            row.append(table.count(lang))
        rows.append(row)
    foot = []
    for name, fn in (
        ("macro mean", lambda m: mean(table.rows[lang].get(m) for lang in langs)),
        ("micro mean (item-weighted)", lambda m: micro_mean(table, m)),
    ):
        vals = [fn(m) for m in metrics]
        if name.startswith("micro") and all(v is None for v in vals):
            continue
        row = [name, ""]
        for m, v in zip(metrics, vals):
            row += [v] + ([None] if has_se[m] else [])
        foot.append(row + ([sum(c for lang in langs if (c := table.count(lang)) is not None)] if has_n else []))
    tab = Table.make(columns, rows, caption=f"{title}: every metric per language", foot=foot)
    ci = " with 95% confidence intervals (1.96 standard errors)" if any(errors) else ""
    src = plots.bars(langs, values, errors, xlabel=label(head), title=f"{label(head)} per language", means=means)
    alt = (
        f"Horizontal bar chart of {label(head)} for {len(langs)} languages{ci}; macro mean {fmt(macro)}"
        + (f", micro mean {fmt(micro)}" if micro is not None else "")
        + ". "
        + "; ".join(f"{lang} {fmt(v)}" for lang, v in zip(langs, values))
        + "."
    )
    return [
        Figure(
            src,
            alt,
            f"{label(head)} per language{ci}. Dashed: macro mean (each language equal)"
            + ("; dotted: micro mean (item-weighted)." if micro is not None else "."),
            tab,
        )
    ]


def section_kind(run: Run, table: LangTable) -> tuple[str, str]:
    metrics = set(table.metrics())
    if metrics & set(FERTILITY) or run.verb == "fertility":
        return "Fertility", "fertility"
    if run.verb == "cypher" or metrics & {"execution_accuracy", "syntax_error_rate"}:
        return "Text2Cypher", "cypher"
    if any("consisten" in p for p in table.path):
        ref = next((v for k, v in _node(run.results, table.path[:-1]).items() if k == "reference"), None)
        return (f"Cross-lingual consistency against {ref}" if ref else "Cross-lingual consistency"), "consistency"
    return "Per-language results", "languages"


def _node(obj, path) -> dict:
    for key in path:
        obj = obj.get(key, {}) if isinstance(obj, dict) else {}
    return obj if isinstance(obj, dict) else {}


def per_language(run: Run, claimed: tuple = ()) -> list[Section]:
    out = []
    tables = [t for t in language_tables(run.results) if not any(t.path[: len(c)] == c for c in claimed)]
    groups: dict[tuple, list[LangTable]] = {}
    for t in tables:
        if t.group is not None:
            groups.setdefault(t.group, []).append(t)
    for table in tables:
        if table.group is not None and len(groups[table.group]) > 1:
            if table is groups[table.group][0]:
                out += grouped_section(run, groups[table.group])
            continue
        kind_title, kind = section_kind(run, table)
        parts = [p for p in table.path if kind != "consistency" or p not in ("consistency", "vs_reference")]
        name = path_label(parts)
        title = f"{kind_title}: {name}" if name else kind_title
        if kind == "consistency":  # every figure against the reference language, in a table
            blocks = [consistency_table(table, title)]
        else:
            blocks = lang_table_block(table, title, run.results)
        if blocks:
            out.append(Section(title, kind, run.label, blocks=blocks))
    return out


def consistency_table(table: LangTable, title: str) -> Table:
    metrics = table.metrics()
    rows = [[lang, lang_name(lang), *[table.rows[lang].get(m) for m in metrics], table.count(lang)]
            for lang in table.rows]
    foot = [["macro mean", "", *[mean(table.rows[lang].get(m) for lang in table.rows) for m in metrics], None]]
    return Table.make(["language", "name", *[label(m) for m in metrics], label("n")], rows,
                      caption=f"{title}: each language against the reference language", foot=foot)


def grouped_section(run: Run, tables: list[LangTable]) -> list[Section]:
    """Sibling tables split from ``{lang: {group: {metric}}}`` (e.g. Text2Cypher per question kind) in one
    section: the headline metric per language and group side by side, every metric in a folded table."""
    head = headline_metric(tables[0], run.results)
    kind_title, kind = section_kind(run, tables[0])
    name = path_label(tables[0].group)
    title = f"{kind_title}: {name}" if name else kind_title
    langs: list[str] = []
    for t in tables:
        langs += [lang for lang in t.rows if lang not in langs]
    series = {t.path[-1]: [t.rows.get(lang, {}).get(head) for lang in langs] for t in tables}
    src = plots.grouped_bars(langs, series, xlabel=label(head),
                             title=f"{label(head)} per language and {name or 'group'}")
    tab = Table.make(
        ["language", *series],
        [[lang, *[series[g][i] for g in series]] for i, lang in enumerate(langs)],
        caption=f"{head} per language and {name or 'group'}",
    )
    metrics = [m for t in tables for m in t.metrics()]
    metrics = list(dict.fromkeys(metrics))
    full = Table.make(
        ["language", "group", *metrics, "n"],
        [[lang, t.path[-1], *[t.rows[lang].get(m) for m in metrics], t.count(lang)] for t in tables for lang in t.rows],
        caption=f"{title}: every metric",
        collapsed=True,
    )
    alt = (
        f"Grouped bar chart of {head} for {len(langs)} languages and {len(series)} groups ("
        + ", ".join(series)
        + "); "
        + "; ".join(
            f"{g}: " + ", ".join(f"{lang} {fmt(v)}" for lang, v in zip(langs, vals)) for g, vals in series.items()
        )
        + "."
    )
    return [
        Section(
            title, kind, run.label, blocks=[Figure(src, alt, f"{head} per language, one bar per group.", tab), full]
        )
    ]


# language x language matrices ---------------------------------------------------------------

_MATRIX_TITLES = (
    ("consisten", "Cross-lingual consistency"),
    ("ablat", "Head ablation"),
    ("deactiv", "Neuron deactivation"),
    ("overlap", "Overlap"),
    ("jaccard", "Overlap (Jaccard)"),
    ("transition", "Class transitions (rows: run A, columns: run B)"),
)


SECONDARY_MATRICES = ("relative_matrix", "both_correct_matrix", "kappa_matrix")  # folded tables, no heatmap


def matrix_title(path: tuple[str, ...]) -> str:
    """A heading for the matrix found at ``path`` in results.json (or a side file), in words."""
    low = " ".join(path).lower()
    if path and path[0] == "consistency":
        name = path_label(path[1:])
        return f"Cross-lingual consistency: {name}" if name else "Cross-lingual consistency"
    for key, title in _MATRIX_TITLES:
        if key in low:
            return f"{title}: {path_label(path)}"
    return f"Matrix: {path_label(path)}"


def artifact_matrices(run: Run) -> list[LangMatrix]:
    """2-D artifacts whose two axes are languages (from the safetensors metadata)."""
    out = []
    for path in run.artifacts():
        tensors, meta = run.load_artifact(path)
        for name, arr in tensors.items():
            axes = axes_of(meta, name, arr.ndim)
            langs = meta.get("languages")
            if (
                arr.ndim == 2
                and axes
                and all("lang" in a for a in axes)
                and isinstance(langs, list)
                and arr.shape == (len(langs), len(langs))
            ):
                out.append(LangMatrix((path.stem, name), list(langs), list(langs), arr.tolist()))
    return out


def axes_of(meta: dict, name: str, ndim: int) -> list[str] | None:
    """Axis names of tensor ``name`` from safetensors metadata, in any of the usual spellings."""
    for key in (f"{name}.axes", f"{name}_axes", "axes", "axis_names", "dims", "dim_names"):
        val = meta.get(key)
        if isinstance(val, dict):
            val = val.get(name)
        if isinstance(val, list) and len(val) == ndim and all(isinstance(a, str) for a in val):
            return [a.lower() for a in val]
        if isinstance(val, str) and len(val.split(",")) == ndim:
            return [a.strip().lower() for a in val.split(",")]
    return None


def matrix_block(m: LangMatrix, title: str, cbar_label: str | None = None) -> list:
    flat = [v for row in m.values for v in row if v is not None]
    if not flat:
        return []
    diverging = min(flat) < 0 < max(flat)
    src = plots.heatmap(
        m.values, m.rows, m.cols, title=title, diverging=diverging,
        cbar_label=cbar_label if cbar_label is not None else label(m.path[-1]) if m.path else "",
    )
    rows = [[r, *vals] for r, vals in zip(m.rows, m.values)]
    tab = Table.make(["row \\ column", *m.cols], rows, caption=f"{title}: every cell", collapsed=True)
    notes = []
    langs = all(is_lang(r) for r in m.rows)
    if (
        m.rows == m.cols and len(m.rows) > 1 and langs and "consisten" not in m.name.lower()
    ):  # consistency: diagonal = 1
        n = len(m.rows)
        col_max = sum(
            1
            for j in range(n)
            if m.values[j][j] is not None
            and m.values[j][j] >= max(v for v in (m.values[i][j] for i in range(n)) if v is not None)
        )
        row_max = sum(
            1
            for i in range(n)
            if m.values[i][i] is not None and m.values[i][i] >= max(v for v in m.values[i] if v is not None)
        )
        notes.append(
            Note(
                f"The diagonal (a language with itself) is the largest entry of its column for "
                f"{col_max} of {n} languages and of its row for {row_max} of {n}."
            )
        )
    alt = (
        f"Heatmap of {title}, {len(m.rows)} rows by {len(m.cols)} columns of languages; values from "
        f"{fmt(min(flat))} to {fmt(max(flat))}. The table below lists every cell."
    )
    return [Figure(src, alt, title, tab), *notes]


def matrices(run: Run) -> list[Section]:
    out = []
    found = language_matrices(run.results) + artifact_matrices(run)
    for fname, obj in run.json_files().items():  # side files: their own evidence, not copies of an eval
        found += [
            LangMatrix((fname, *m.path), m.rows, m.cols, m.values)
            for m in language_matrices(obj)
            if "consisten" not in m.name.lower()
        ]
    by_place: dict[tuple, Section] = {}  # a consistency heatmap and its secondary matrices share a section
    for m in found:
        title = matrix_title(m.path)
        if m.path and m.path[-1] in SECONDARY_MATRICES:  # table only, folded
            rows = [[r, *vals] for r, vals in zip(m.rows, m.values)]
            table = Table.make(["row \\ column", *m.cols], rows, caption=f"{title}: every cell", collapsed=True)
            home = by_place.get(m.path[:-1])
            if home is not None:
                home.add(table)
            else:
                out.append(Section(title, "matrix", run.label, blocks=[table]))
            continue
        blocks = matrix_block(m, title)
        if blocks:
            kind = "consistency" if "consisten" in m.name.lower() else "matrix"
            out.append(Section(title, kind, run.label, blocks=blocks))
            by_place.setdefault(m.path[:-1], out[-1])
    return out
