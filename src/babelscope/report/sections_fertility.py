"""Fertility sections: tokenizers side by side per language (``babelscope fertility``, the demo), and
fertility against accuracy across languages.

Reads ``results["fertility"] = {tokenizer: {language: {"fertility", "unit", "tokens_per_char",
"parity", ...}}}``; a single-tokenizer layout ``{language: {...}}`` (an eval run's own) works too.
``fertility`` is tokens per word for scripts written with spaces and tokens per character for the
others (``unit``), so a figure never plots it: every axis has one unit, tokens per character, which
every language has. Tokens per word appears in the tables, for the languages it exists for.
"""

from __future__ import annotations

from babelscope.report import plots
from babelscope.report.collect import Run, is_lang, is_number, lang_name
from babelscope.report.labels import label
from babelscope.report.model import Figure, Section, Table, fmt
from babelscope.report.sections_summary import eval_tasks, task_headline

UNIT = "tokens_per_char"  # the one unit that figures plot (defined for every script)
MIN_PLOT_LANGUAGES = 5  # fewer languages: a table, no figure


def _by_tokenizer(results: dict) -> dict[str, dict[str, dict]]:
    fert = results.get("fertility")
    if not isinstance(fert, dict):
        return {}
    if any(is_lang(k) for k in fert):
        return {str(results.get("tokenizer") or "this model's tokenizer"): fert}
    return {
        str(tok): {lang: v for lang, v in per.items() if is_lang(lang) and isinstance(v, dict)}
        for tok, per in fert.items()
        if isinstance(per, dict)
    }


def per_word(figures: dict) -> float | None:
    """Tokens per word, only for a language whose ``fertility`` is counted per word."""
    return figures.get("fertility") if figures.get("unit", "word") == "word" else None


def fertility(run: Run) -> list[Section]:
    toks = {t: per for t, per in _by_tokenizer(run.results).items() if per}
    if not toks:
        return []
    langs: list[str] = []
    for per in toks.values():
        langs += [lang for lang in per if lang not in langs]
    columns, rows = ["language", "name"], []
    for t in toks:
        columns += [f"{t}: tokens per word", f"{t}: tokens per character", f"{t}: parity with English"]
    for lang in langs:
        row = [lang, lang_name(lang)]
        for per in toks.values():
            f = per.get(lang, {})
            row += [per_word(f), f.get(UNIT), f.get("parity")]
        rows.append(row)
    own = run.verb != "fertility"  # an eval run's own tokenizer: the numbers behind its scatter, folded
    table = Table.make(columns, rows, caption="Fertility per language and tokenizer (tokens per word: languages "
                       "written with spaces only; parity: tokens against English on the same items)", collapsed=own)
    sec = Section("Tokenizer fertility", "fertility", run.label,
                  intro=f"{len(toks)} tokenizer(s) on {len(langs)} languages of the same aligned items: "
                  + ", ".join(toks) + ".")
    if not own and len(langs) >= MIN_PLOT_LANGUAGES:
        series = {t: [per.get(lang, {}).get(UNIT) for lang in langs] for t, per in toks.items()}
        src = plots.grouped_bars(langs, series, xlabel=label(UNIT), title=f"{label(UNIT)} per language")
        alt = (f"Grouped horizontal bar chart of tokens per character for {len(langs)} languages and {len(toks)} "
               "tokenizers: " + "; ".join(f"{t}: " + ", ".join(f"{lang} {fmt(v, 3)}" for lang, v in zip(langs, vals))
                                          for t, vals in series.items()) + ".")
        sec.add(Figure(src, alt, "Tokens per character (one unit for every script; fewer is cheaper).", table))
    else:
        sec.add(table)
    return [sec]


# fertility against accuracy ---------------------------------------------------------------


def fertility_scatter(runs: list[Run]) -> list[Section]:
    """Per evaluation run with fertility figures of its own (else the first fertility run's first tokenizer):
    the headline metric of its first task against tokens per character, one point per language, and the
    correlation for every task. A table instead of the figure below MIN_PLOT_LANGUAGES languages."""
    donors = [(f"tokenizer {tok} of {r.label}", per) for r in runs if r.verb == "fertility"
              for tok, per in _by_tokenizer(r.results).items()]
    out = []
    for run in runs:
        tasks = eval_tasks(run)
        own = next(iter(_by_tokenizer(run.results).values()), None)
        source, fert = ("this run's tokenizer", own) if own else donors[0] if donors else ("", {})
        points = []
        for task, per in tasks.items():
            head = task_headline(run, task, per)
            langs = [lang for lang in per if head and is_number(per[lang].get(head))
                     and is_number(fert.get(lang, {}).get(UNIT))]
            if len(langs) >= 3:
                xs, ys = [fert[lang][UNIT] for lang in langs], [per[lang][head] for lang in langs]
                points.append((task, head, langs, xs, ys))
        if points:
            out.append(_scatter_section(run, points, source))
    return out


def _scatter_section(run: Run, points: list, source: str) -> Section:
    from scipy import stats

    task, head, langs, xs, ys = points[0]
    sec = Section(f"Fertility against {label(head)}: {run.label}", "fertility_accuracy",
                  intro=f"One point per language: tokens per character ({source}) and the task's headline metric. "
                  "A correlation across a handful of languages is a hint, not a finding.")
    tab = Table.make(["language", label(UNIT), f"{task}: {label(head)}"],
                     [[lang, x, y] for lang, x, y in zip(langs, xs, ys)], caption="Fertility and result per language")
    if len(langs) >= MIN_PLOT_LANGUAGES:
        src = plots.scatter(xs, ys, langs, xlabel=label(UNIT), ylabel=f"{label(head)} ({task})",
                            title=f"{label(head)} against tokens per character")
        alt = (f"Scatter plot of {label(head)} on {task} against tokens per character for {len(langs)} languages: "
               + "; ".join(f"{lang} ({fmt(x, 3)}, {fmt(y, 3)})" for lang, x, y in zip(langs, xs, ys)) + ".")
        sec.add(Figure(src, alt, "Each point is a language.", tab))
    else:
        sec.add(tab)
    corr = []
    for task, head, _, xs, ys in points:
        if len(set(xs)) > 1 and len(set(ys)) > 1:
            pr, sr = stats.pearsonr(xs, ys), stats.spearmanr(xs, ys)
            corr.append([task, label(head), float(pr[0]), float(pr[1]), float(sr[0]), float(sr[1]), len(xs)])
    if corr:
        sec.add(Table.make(["task", "metric", "Pearson r", "p-value", "Spearman ρ", "p-value", "languages"], corr,
                           caption="Correlation across languages with tokens per character", collapsed=False))
    return sec
