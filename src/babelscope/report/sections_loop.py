"""Sections of ``loop`` and ``agree`` runs: the loop's steps, the agreement of heads, neurons and layers
(per-layer series, rank correlations with intervals, per-language overlap, before/after), and the effect
matrix (per intervention, language x metric changes against the baseline with paired-bootstrap intervals).

Inputs: results.json ``steps`` (loop), ``agreement`` (loop: ``{before, after?, across?}``; agree: ``{models,
before_after}``; each in the rows of ``interpret.agreement.as_rows``) and ``effects`` (the rows of
``measure.effects.as_rows``: intervention, task, language, metric, before, after, delta, low, high, n).
Everything per layer or per language is a list of rows, so the report's generic tables leave it to these.
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
        secs.append(effects_section(run.results["effects"], run.results.get("reference"), run.label,
                                    run.results.get("effects_summary") or {}))
    return secs


def steps(run: Run) -> Section:
    rows = [[s["step"], s["verb"], s["status"], s.get("run") or "–", s.get("seconds"), s.get("cpu_seconds")]
            for s in run.results["steps"]]
    table = Table.make(["step", "verb", "status", "run folder", "seconds", "CPU seconds"], rows,
                       caption="the loop's steps (reused: finished in an earlier, interrupted run of the loop)")
    return Section("Loop: measure → interpret → improve → measure again", "loop-steps", run.label,
                   intro=f"Improvement: {run.results.get('improve')}. Every step is a run folder of its verb, "
                   "reported below on its own.", blocks=[table])


def agreement_section(doc: dict, title: str, label: str) -> Section:
    """Per-layer series (figure + table), correlations, per-language overlap."""
    layers = doc.get("layers") or []
    names = [k for k in (layers[0] if layers else {}) if k != "layer"]
    sec = Section(title, "agreement", label, intro="Per layer: the share of every language's top LAHIS heads, "
                  "of specific / related / general neurons, and the PLAST layer score. Spearman's rho says "
                  "whether two series rank the layers alike (interval: bootstrap over layers).")
    if names:
        series = {n: [row[n] for row in layers] for n in names}
        x = [row["layer"] for row in layers]
        table = Table.make(["layer", *names], [[row["layer"], *[row[n] for n in names]] for row in layers],
                           caption="per-layer series")
        sec.add(Figure(plots.lines(x, series, xlabel="layer", ylabel="share / score", title=title),
                       alt="per-layer series: " + "; ".join(f"{n} peaks at layer {_peak(series[n])}" for n in names),
                       caption="Per-layer shares and the PLAST score.", table=table))
    corr = [[c["a"], c["b"], c["rho"], _interval(c), c["n"]] for c in doc.get("correlations", [])]
    if corr:
        sec.add(Table.make(["series", "series", "Spearman rho", "95% interval", "layers"], corr,
                           caption="rank correlations between the series", signed_cols=(2,)))
    rows = [[r["language"], lang_name(r["language"]), r["heads"], _layers(r["head_layers"]), r["neurons"],
             _layers(r["neuron_layers"]), r["jaccard"], r["chance_jaccard"], r["rho"]]
            for r in doc.get("languages", [])]
    if rows:
        sec.add(Table.make(["language", "name", "specific heads", "their layers", "specific neurons",
                            "top neuron layers", "Jaccard", "chance", "rho of counts"], rows,
                           caption="do a language's specific heads and specific neurons sit in the same layers? "
                           "(neuron layers: as many as the head layers, most neurons first)"))
    return sec


def across_section(doc: dict, label: str) -> Section:
    sec = Section("Agreement before / after", "agreement-across", label)
    if not doc.get("comparable"):
        return sec.add(Note(f"The two models are not comparable: {doc.get('why')}."))
    rows = [[c["series"], c["rho"], _interval(c)] for c in doc.get("series", [])]
    sec.add(Table.make(["series", "Spearman rho before vs after", "95% interval"], rows,
                       caption="does each series rank the layers alike in both models?", signed_cols=(1,)))
    jac = [[r["language"], r["jaccard"]] for r in doc.get("head_layers_jaccard", [])]
    if jac:
        sec.add(Table.make(["language", "Jaccard of specific-head layers"], jac))
    return sec


def effects_section(rows: list[dict], reference: str | None, label: str, summary: dict | None = None) -> Section:
    """One table per intervention: language rows, task/metric columns, change [interval] against the baseline."""
    sec = Section("Effect matrix", "effects", label, intro="Change against the baseline on the same held-out "
                  f"items (paired bootstrap over item ids, 95% interval). Consistency: share of items whose "
                  f"prediction equals {reference or 'the reference'}'s; row `all`: pooled over languages. "
                  "Coloured: a clear gain or loss (the interval excludes 0).")
    for name in dict.fromkeys(r["intervention"] for r in rows):
        mine = [r for r in rows if r["intervention"] == name]
        columns = list(dict.fromkeys((r["task"], r["metric"]) for r in mine))
        langs = list(dict.fromkeys(r["language"] for r in mine))
        langs = [lang for lang in langs if lang != "all"] + (["all"] if "all" in langs else [])
        cells = {(r["language"], r["task"], r["metric"]): r for r in mine}
        table = [[Cell(lang), *[_effect(cells.get((lang, t, m)), m) for t, m in columns]] for lang in langs]
        sec.add(Table(["language", *[f"{t} {m}" for t, m in columns]], table,
                      caption=f"{name}: change against the baseline [95% interval]"))
        if name in (summary or {}):
            sec.add(Note(verdict_text(name, summary[name])))
    return sec


def verdict_text(name: str, summary: dict) -> str:
    """One line: who gained, who lost, and the pooled consistency before -> after."""
    def who(entries):
        return ", ".join(f"{e['language']} ({e['task']} {e['metric']})" for e in entries) or "none"

    cons = "; ".join(f"{c['task']} consistency {fmt(c['before'], 3)} → {fmt(c['after'], 3)} "
                     f"[{fmt(c['low'], 3)}, {fmt(c['high'], 3)}]: {c['verdict']}" for c in summary["consistency"])
    return f"{name}: clearly gained: {who(summary['gained'])}. Clearly lost: {who(summary['lost'])}." + \
        (f" Pooled over languages, {cons}." if cons else "")


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
