"""The ``neurons`` run (LAPE / ternary): neuron classes per layer, and the deactivation matrix (switch
off one language's neurons, see whose loss rises).

Reads results.json ``per_layer`` ``{class: [count per layer]}``, ``phases``, ``method``,
``neurons_per_language`` and ``deactivation.per_language``; the matrix from ``deactivation.json``
(``languages``, ``increase[L][M]`` = loss of M with L's neurons off minus M's loss, in nats per token).
"""

from __future__ import annotations

from babelscope.report import plots
from babelscope.report.collect import LangMatrix, Run, is_number
from babelscope.report.labels import label
from babelscope.report.model import Figure, Section, Table, fmt
from babelscope.report.sections import matrix_block

SUMMARY_COLUMNS = {  # deactivation.per_language figures shown per language, with their headings
    "neurons": "neurons",
    "own_increase": "own loss increase",
    "random_own_increase": "with as many random neurons",
    "own_vs_other_languages": "own ÷ other languages' increase",
}


def neurons(run: Run) -> list[Section]:
    out = []
    classes = _classes(run)
    if classes:
        out.append(_class_section(run, classes))
    deact = _deactivation(run)
    if deact:
        out.append(deact)
    return out


def _classes(run: Run) -> dict[str, list[int]]:
    per_layer = run.results.get("per_layer") or (run.json_files().get("layer_counts.json") or {}).get("classes")
    if not isinstance(per_layer, dict):
        return {}
    return {str(k): v for k, v in per_layer.items()
            if isinstance(v, list) and v and all(is_number(x) for x in v)}


def _class_section(run: Run, classes: dict[str, list[int]]) -> Section:
    method = str(run.results.get("method") or run.config.get("method") or "")
    n = len(next(iter(classes.values())))
    x = list(range(n))
    named = {label(k): v for k, v in classes.items()}
    phases = [p for p in run.results.get("phases") or [] if isinstance(p, dict)
              and isinstance(p.get("layers"), list) and len(p["layers"]) == 2]
    bands = [(p["layers"][0], p["layers"][1], str(p.get("phase", "")).split()[0]) for p in phases]
    src = plots.lines(x, named, xlabel="layer", ylabel="neurons", title="Neurons per layer and class", bands=bands)
    tab = Table.make(["layer", *named], [[i, *[v[i] for v in classes.values()]] for i in x],
                     caption="Neurons per layer and class")
    totals = "; ".join(f"{name} {sum(v)}" for name, v in named.items())
    alt = (f"Line chart over {n} layers of the neurons of each class ({totals} in total)"
           + (f", with the phases {', '.join(str(p.get('phase')) for p in phases)} shaded" if phases else "") + ".")
    per_lang = run.results.get("neurons_per_language")
    intro = f"Method: {method}." if method else ""
    if isinstance(per_lang, dict) and per_lang:
        intro += " Language neurons: " + ", ".join(f"{lang} {fmt(v)}" for lang, v in per_lang.items()) + "."
    sec = Section(f"Language neurons per layer{f' ({method})' if method else ''}", "neurons", run.label,
                  intro=intro.strip(), blocks=[Figure(src, alt, "Neurons per layer and class; shaded: the phases "
                                                      "along the layers.", tab)])
    if phases:
        sec.add(Table.make(["phase", "first layer", "last layer"], [[p["phase"], *p["layers"]] for p in phases],
                           caption="Phases along the layers", collapsed=False))
    return sec


def _deactivation(run: Run) -> Section | None:
    doc = run.json_files().get("deactivation.json") or {}
    langs, inc = doc.get("languages"), doc.get("increase")
    per_lang = doc.get("per_language") or (run.results.get("deactivation") or {}).get("per_language")
    blocks: list = []
    if isinstance(langs, list) and isinstance(inc, list) and len(inc) == len(langs):
        matrix = LangMatrix(("deactivation",), langs, langs, inc)
        blocks += matrix_block(matrix, "Loss increase when a language's neurons are switched off",
                               cbar_label="loss increase (nats per token)")
    if isinstance(per_lang, dict) and per_lang:
        cols = [c for c in SUMMARY_COLUMNS if any(isinstance(v, dict) and c in v for v in per_lang.values())]
        rows = [[lang, *[v.get(c) for c in cols]] for lang, v in per_lang.items() if isinstance(v, dict)]
        blocks.append(Table.make(["language", *[SUMMARY_COLUMNS[c] for c in cols]], rows,
                                 caption="Per language: its own neurons switched off", collapsed=False))
    if not blocks:
        return None
    intro = ("Rows: the language whose neurons are switched off; columns: the language whose loss is measured. "
             "Specific neurons show as a bright diagonal.")
    return Section("Deactivation: whose loss rises", "neurons", run.label, intro=intro, blocks=blocks)
