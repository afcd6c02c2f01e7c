"""Fertility section: tokenizers side by side per language (``babelscope fertility`` and the demo).

Reads ``results["fertility"] = {tokenizer: {language: {"fertility", "tokens_per_char",
"bytes_per_token", "parity", "unit", ...}}}``; a single-tokenizer layout ``{language: {...}}`` works too.
"""

from __future__ import annotations

from babelscope.report import plots
from babelscope.report.collect import LangTable, Run, is_lang, is_number, lang_name, language_tables
from babelscope.report.model import Figure, Section, Table, fmt

FIGURE_METRICS = (
    ("fertility", "tokens per word (per character for scripts without spaces)"),
    ("parity", "tokens relative to English on the same items (English = 1)"),
)
FERTILITY = ("tokens_per_word", "fertility", "tokens_per_unit")  # metrics that measure fertility
ACCURACY = ("acc", "acc_norm", "execution_accuracy", "exact_match", "f1")  # metrics for the scatter
MAX_SCATTERS = 3  # fertility x accuracy pairs plotted (same-run pairs first)
TABLE_METRICS = ("fertility", "tokens_per_char", "bytes_per_token", "parity")  # columns per tokenizer


def _by_tokenizer(results: dict) -> dict[str, dict[str, dict]]:
    fert = results.get("fertility")
    if not isinstance(fert, dict):
        return {}
    if any(is_lang(k) for k in fert):
        return {str(results.get("tokenizer") or "tokenizer"): fert}
    return {
        str(tok): {lang: v for lang, v in per.items() if is_lang(lang) and isinstance(v, dict)}
        for tok, per in fert.items()
        if isinstance(per, dict)
    }


def fertility(run: Run) -> list[Section]:
    toks = {t: per for t, per in _by_tokenizer(run.results).items() if per}
    if not toks:
        return []
    langs: list[str] = []
    for per in toks.values():
        langs += [lang for lang in per if lang not in langs]
    sec = Section(
        "Tokenizer fertility",
        "fertility",
        run.label,
        intro=f"{len(toks)} tokenizer(s) on {len(langs)} languages of the same aligned items: " + ", ".join(toks) + ".",
    )
    for metric, meaning in FIGURE_METRICS:
        series = {t: [per.get(lang, {}).get(metric) for lang in langs] for t, per in toks.items()}
        if not any(is_number(v) for vals in series.values() for v in vals):
            continue
        ref = 1.0 if metric == "parity" else None
        src = plots.grouped_bars(langs, series, xlabel=metric, title=f"{metric} per language", ref=ref)
        rows = [[lang, *[series[t][i] for t in toks]] for i, lang in enumerate(langs)]
        units = {per.get(lang, {}).get("unit") for per in toks.values() for lang in langs} - {None}
        tab = Table.make(["language", *toks], rows, caption=f"{metric}: {meaning}")
        worst = {
            t: max(((v, lang) for v, lang in zip(vals, langs) if is_number(v)), default=(None, "–"))
            for t, vals in series.items()
        }
        alt = (
            f"Grouped horizontal bar chart of {metric} ({meaning}) for {len(langs)} languages and "
            f"{len(toks)} tokenizers. Highest: "
            + "; ".join(f"{t} {lang} {fmt(v)}" for t, (v, lang) in worst.items())
            + "."
        )
        caption = f"{metric}: {meaning}" + (f"; units: {', '.join(sorted(units))}" if units else "")
        sec.add(Figure(src, alt, caption, tab))
    columns, rows = ["language", "name", "unit"], []
    for t in toks:
        columns += [f"{t}: {m}" for m in TABLE_METRICS]
    for lang in langs:
        unit = next((per[lang].get("unit") for per in toks.values() if lang in per), None)
        row = [lang, lang_name(lang), unit]
        for per in toks.values():
            row += [per.get(lang, {}).get(m) for m in TABLE_METRICS]
        rows.append(row)
    sec.add(Table.make(columns, rows, caption="Every fertility figure per language and tokenizer", collapsed=True))
    return [sec]


# fertility against accuracy (within one run or across runs) --------------------------------


def _first(table: LangTable, names) -> str | None:
    return next((n for n in names if n in table.metrics()), None)


def fertility_scatter(runs: list[Run]) -> list[Section]:
    """Scatter of fertility against accuracy, one point per language, with correlations."""
    fert, acc = [], []
    for run in runs:
        for t in language_tables(run.results):
            f, a = _first(t, FERTILITY), _first(t, ACCURACY)
            if f and a:  # both in one table (eval results with fertility beside accuracy)
                fert.append((run, t, f))
                acc.append((run, t, a))
            elif f:
                fert.append((run, t, f))
            elif a and "before_after" not in t.path:
                acc.append((run, t, a))
    # pairs: fertility and accuracy of the same run first; then a fertility run's tokenizers against the
    # accuracy of runs that carry no fertility of their own
    own = {id(r) for r, _, _ in fert}
    pairs = [(f, a) for f in fert for a in acc if f[0] is a[0]]
    pairs += [(f, a) for f in fert for a in acc if f[0].verb == "fertility" and id(a[0]) not in own]
    out = []
    for (frun, ft, fm), (arun, at, am) in pairs:
        if len(out) >= MAX_SCATTERS:
            break
        langs = [
            lang
            for lang in ft.rows
            if lang in at.rows and is_number(ft.rows[lang].get(fm)) and is_number(at.rows[lang].get(am))
        ]
        if len(langs) < 3:
            continue
        xs = [ft.rows[lang][fm] for lang in langs]
        ys = [at.rows[lang][am] for lang in langs]
        out.append(_scatter_section(frun, ft, fm, arun, at, am, langs, xs, ys))
    return out


def _scatter_section(frun, ft, fm, arun, at, am, langs, xs, ys) -> Section:
    from scipy import stats

    task = at.path[-1] if at.path else am
    tokenizer = f", tokenizer {ft.path[-1]}" if frun is not arun and len(ft.path) > 1 else ""
    title = f"Fertility against accuracy: {task} ({arun.label}{tokenizer})"
    src = plots.scatter(
        xs,
        ys,
        langs,
        xlabel=f"{fm} ({ft.name})",
        ylabel=f"{am} ({at.name})",
        title="Fertility against accuracy, one point per language",
    )
    corr = []
    if len(set(xs)) > 1 and len(set(ys)) > 1:
        pr, pp = stats.pearsonr(xs, ys)
        sr, sp = stats.spearmanr(xs, ys)
        corr = [["Pearson r", float(pr), float(pp), len(xs)], ["Spearman ρ", float(sr), float(sp), len(xs)]]
    tab = Table.make(
        ["language", fm, am],
        [[lang, x, y] for lang, x, y in zip(langs, xs, ys)],
        caption="Fertility and accuracy per language",
    )
    alt = (
        f"Scatter plot of {am} against {fm} for {len(langs)} languages: "
        + "; ".join(f"{lang} ({fmt(x)}, {fmt(y)})" for lang, x, y in zip(langs, xs, ys))
        + "."
    )
    runs = frun.label if frun is arun else f"{frun.label} and {arun.label}"
    sec = Section(title, "fertility_accuracy", intro=f"From {runs}.")
    sec.add(Figure(src, alt, "Each point is a language; dashed line: least-squares fit.", tab))
    if corr:
        sec.add(
            Table.make(
                ["correlation", "coefficient", "p-value", "n languages"],
                corr,
                caption="Correlation across languages",
                collapsed=False,
            )
        )
    return sec
