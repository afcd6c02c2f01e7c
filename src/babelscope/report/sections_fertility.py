"""Fertility section: tokenizers side by side per language (``babelscope fertility`` and the demo).

Reads ``results["fertility"] = {tokenizer: {language: {"fertility", "tokens_per_char",
"bytes_per_token", "parity", "unit", ...}}}``; a single-tokenizer layout ``{language: {...}}`` works too.
"""

from __future__ import annotations

from babelscope.report import plots
from babelscope.report.collect import Run, is_lang, is_number, lang_name
from babelscope.report.model import Figure, Section, Table, fmt

FIGURE_METRICS = (
    ("fertility", "tokens per word (per character for scripts without spaces)"),
    ("parity", "tokens relative to English on the same items (English = 1)"),
)
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
