"""Sections of ``loop`` and ``agree`` runs: the loop's steps, the agreement of heads, neurons and layers
(per-layer series, rank correlations with intervals, per-language overlap, before/after), and the effect
matrix (per intervention, language x metric changes against the baseline with paired-bootstrap intervals).

Inputs: results.json ``steps`` (loop), ``agreement`` (loop: ``{before, after?, across?}``; agree: ``{models,
before_after}``) and ``effects`` ``{intervention: {task: {language: {metric: {before, after, delta, low,
high, n}}}}}`` (``measure.effects``).
"""

from __future__ import annotations

from babelscope.report import plots
from babelscope.report.collect import Run, lang_name
from babelscope.report.model import Cell, Figure, Note, Section, Table, cell, fmt

LOOP_VERBS = ("loop", "agree")
LOWER_IS_BETTER = ("bits_per_char",)


def loop_sections(run: Run) -> list[Section]:
    """Every section of a loop or agree run (none for other verbs)."""
    if run.verb not in LOOP_VERBS:
        return []
    secs = [steps(run)] if run.results.get("steps") else []
    doc = run.results.get("agreement") or {}
    if "models" in doc:  # agree
        secs += [agreement_section(d, f"Agreement: {m}", run.label) for m, d in doc["models"].items()]
        if doc.get("before_after"):
            secs.append(across_section(doc["before_after"], run.label))
    else:  # loop
        secs += [agreement_section(doc[k], t, run.label) for k, t in
                 (("before", "Agreement of heads, neurons and layers"), ("after", "Agreement after the improvement"))
                 if doc.get(k)]
        if doc.get("across"):
            secs.append(across_section(doc["across"], run.label))
    if run.results.get("effects"):
        secs.append(effects_section(run.results["effects"], run.results.get("reference"), run.label))
    return secs


def steps(run: Run) -> Section:
    rows = [[s["step"], s["verb"], s["status"], s.get("run") or "–", s.get("seconds")] for s in run.results["steps"]]
    table = Table.make(["step", "verb", "status", "run folder", "seconds"], rows, caption="the loop's steps")
    return Section("Loop: measure → interpret → improve → measure again", "loop-steps", run.label,
                   intro=f"Improvement: {run.results.get('improve')}. Every step is a run folder of its verb, "
                   "reported below on its own.", blocks=[table])


def agreement_section(doc: dict, title: str, label: str) -> Section:
    """Per-layer series (figure + table), correlations, per-language overlap."""
    series = doc.get("series") or {}
    names = list(series)
    sec = Section(title, "agreement", label, intro="Per layer: the share of every language's top LAHIS heads, "
                  "of specific / related / general neurons, and the PLAST layer score. Spearman's rho says "
                  "whether two series rank the layers alike (interval: bootstrap over layers).")
    if names:
        layers = list(range(doc["n_layers"]))
        rows = [[i, *[series[n][i] for n in names]] for i in layers]
        table = Table.make(["layer", *names], rows, caption="per-layer series")
        sec.add(Figure(plots.lines(layers, series, xlabel="layer", ylabel="share / score", title=title),
                       alt="per-layer series: " + "; ".join(f"{n} peaks at layer {_peak(series[n])}" for n in names),
                       caption="Per-layer shares and the PLAST score.", table=table))
    corr = [[c["a"], c["b"], c["rho"], _interval(c), c["n"]] for c in doc.get("correlations", [])]
    if corr:
        sec.add(Table.make(["series", "series", "Spearman rho", "95% interval", "layers"], corr,
                           caption="rank correlations between the series", signed_cols=(2,)))
    langs = doc.get("languages") or {}
    if langs:
        rows = [[lang, lang_name(lang), r["heads"], _layers(r["head_layers"]), r["neurons"],
                 _layers(r["neuron_layers"]), r["jaccard"], r["chance_jaccard"], r["rho"]] for lang, r in langs.items()]
        sec.add(Table.make(["language", "name", "specific heads", "their layers", "specific neurons",
                            "top neuron layers", "Jaccard", "chance", "rho of counts"], rows,
                           caption="do a language's specific heads and specific neurons sit in the same layers? "
                           "(neuron layers: as many as the head layers, most neurons first)"))
    return sec


def across_section(doc: dict, label: str) -> Section:
    sec = Section("Agreement before / after", "agreement-across", label)
    if not doc.get("comparable", True):
        return sec.add(Note(f"The two models are not comparable: {doc.get('why')}."))
    rows = [[name, c["rho"], _interval(c)] for name, c in doc.get("series", {}).items()]
    sec.add(Table.make(["series", "Spearman rho before vs after", "95% interval"], rows,
                       caption="does each series rank the layers alike in both models?", signed_cols=(1,)))
    jac = doc.get("head_layers_jaccard") or {}
    if jac:
        sec.add(Table.make(["language", "Jaccard of specific-head layers"], [[k, v] for k, v in jac.items()]))
    return sec


def effects_section(effects: dict, reference: str | None, label: str) -> Section:
    """One table per intervention: language rows, task/metric columns, change [interval] against the baseline."""
    sec = Section("Effect matrix", "effects", label, intro="Change against the baseline on the same held-out "
                  f"items (paired bootstrap over item ids, 95% interval). Consistency: share of items whose "
                  f"prediction equals {reference or 'the reference'}'s; row `all`: pooled over languages. "
                  "Green: a clear gain (interval excludes 0), red: a clear loss.")
    for name, table in effects.items():
        columns = sorted({(task, m) for task, per in table.items() for metrics in per.values() for m in metrics})
        langs = list(dict.fromkeys(lang for per in table.values() for lang in per))
        langs = [lang for lang in langs if lang != "all"] + (["all"] if "all" in langs else [])
        rows = [[Cell(lang), *[_effect(table.get(t, {}).get(lang, {}).get(m), m) for t, m in columns]]
                for lang in langs]
        sec.add(Table([ "language", *[f"{t} {m}" for t, m in columns]], rows, caption=f"{name}: change against "
                      "the baseline [95% interval]"))
    return sec


def _effect(change: dict | None, metric: str) -> Cell:
    if not change:
        return Cell("–")
    clear = change["low"] > 0 or change["high"] < 0
    base = cell(change["delta"], signed=True, lower_is_better=metric in LOWER_IS_BETTER)
    cls = base.cls if clear else "num"
    return Cell(f"{base.text} [{fmt(change['low'], 3)}, {fmt(change['high'], 3)}]", cls)


def _interval(c: dict) -> str:
    return "–" if c.get("low") is None else f"[{fmt(c['low'], 3)}, {fmt(c['high'], 3)}]"


def _layers(layers: list[int]) -> str:
    return ", ".join(map(str, layers)) or "–"


def _peak(values: list[float]) -> int:
    return max(range(len(values)), key=lambda i: values[i]) if values else 0
