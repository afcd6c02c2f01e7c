"""PLAST on a vision-language model: the per-layer language-specificity curve measured on image +
question inputs, with the layers chosen for fine-tuning shaded (a ``layers --tasks visual:...`` run).

The before/after accuracy per language of the matching ``finetune --data visual:...`` run is the
generic before/after section (task ``visual``)."""

from __future__ import annotations

from babelscope.report import plots
from babelscope.report.collect import Run, is_number
from babelscope.report.model import Figure, Section, Table, fmt


def _scaled(values: list) -> list:
    top = max((v for v in values if is_number(v)), default=0) or 1
    return [v / top if is_number(v) else None for v in values]


def plast_layers(run: Run) -> list[Section]:
    doc = run.json_files().get("layers.json")
    if run.verb != "layers" or not isinstance(doc, dict) or "inputs" not in doc:
        return []
    ev, chosen = doc["evidence"], doc["recommended"]["layers"]
    x = list(range(len(ev["score"])))
    series = {"score": ev["score"], "language-neuron share (scaled)": _scaled(ev["language_neuron_share"]),
              "activation difference vs English (scaled)": _scaled(ev["activation_difference"]["mean"])}
    title = f"Language-specific layers on image + question inputs: {doc['model']}"
    src = plots.lines(x, series, xlabel="layer (shaded: chosen for fine-tuning)", ylabel="specificity", title=title,
                      bands=[(i, i, "chosen") for i in chosen])
    rows = [[i, *[series[k][i] for k in series], "yes" if i in chosen else ""] for i in x]
    table = Table.make(["layer", *series, "chosen"], rows, caption=title)
    alt = (f"Line chart of per-layer language specificity over {len(x)} layers of {doc['model']}; the chosen "
           f"layers {chosen} are shaded; the highest score is {fmt(max(ev['score']))} at layer "
           f"{max(x, key=lambda i: ev['score'][i])}.")
    inputs = doc["inputs"]
    intro = (f"Measured on {inputs.get('tasks')} ({inputs.get('train_items')} training items per language, "
             f"{', '.join(doc['languages'])}); counted: {inputs.get('counted')}. Chosen for PLAST fine-tuning: "
             f"layers {chosen} (budget {doc['recommended']['budget']}, first {doc['recommended']['max_depth']} "
             "of the stack).")
    return [Section("PLAST layers of a vision-language model", "plast_layers", run.label, intro=intro,
                    blocks=[Figure(src, alt, title, table)])]
