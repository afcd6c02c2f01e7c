"""The ``layers`` run (PLAST): the language-specificity and logit-lens curves per layer, and the chosen
layers with the evidence that chose them.

Reads ``layers.json`` (``recommended``, ``ranking``, ``evidence``: ``score``, ``language_neuron_share``,
``specific_share``, ``activation_difference.mean``, ``logit_lens.target_share`` / ``onset_layer``; or
``param_diff.change`` for ``layers --diff``), falling back to results.json for the recommendation.
"""

from __future__ import annotations

from babelscope.report import plots
from babelscope.report.collect import Run, is_lang, is_number
from babelscope.report.labels import label
from babelscope.report.model import Figure, Section, Table, fmt
from babelscope.report.sections import mean

UNSCALED = ("score", "target_share")  # curves already on 0..1; the others are drawn divided by their maximum


def _series(evidence: dict) -> dict[str, list[float]]:
    """The per-layer curves in ``evidence``: each ``{name: [value per layer]}``; the logit lens as its
    mean over languages."""
    out: dict[str, list[float]] = {}
    for key in ("score", "language_neuron_share", "specific_share"):
        if _numbers(evidence.get(key)):
            out[key] = evidence[key]
    diff = evidence.get("activation_difference")
    if isinstance(diff, dict) and _numbers(diff.get("mean")):
        out["activation_difference"] = diff["mean"]
    shares = [s for lang, s in ((evidence.get("logit_lens") or {}).get("target_share") or {}).items()
              if is_lang(lang) and _numbers(s)]
    if shares and len({len(s) for s in shares}) == 1:
        out["target_share"] = [mean(s[i] for s in shares) for i in range(len(shares[0]))]
    change = (evidence.get("param_diff") or {}).get("change")
    if _numbers(change):
        out["change"] = change
    n_layers = len(next(iter(out.values()), []))
    return {k: v for k, v in out.items() if len(v) == n_layers}  # one x axis: the layers


def _runs(layers: list[int]) -> list[tuple[int, int]]:
    """Consecutive layers as (first, last) spans: [0, 1, 5] -> [(0, 1), (5, 5)]."""
    spans: list[list[int]] = []
    for i in sorted(layers):
        if spans and i == spans[-1][1] + 1:
            spans[-1][1] = i
        else:
            spans.append([i, i])
    return [(a, b) for a, b in spans]


def _scaled(values: list[float]) -> list[float]:
    top = max(values)
    return [v / top for v in values] if top > 0 else list(values)


def _numbers(v) -> bool:
    return isinstance(v, list) and len(v) >= 2 and all(is_number(x) for x in v)


def _doc(run: Run) -> dict:
    doc = run.json_files().get("layers.json")
    return doc if isinstance(doc, dict) else run.results


def layers(run: Run) -> list[Section]:
    doc = _doc(run)
    rec = doc.get("recommended") or run.results.get("recommended")
    evidence = doc.get("evidence") if isinstance(doc.get("evidence"), dict) else {}
    if not isinstance(rec, dict) and not evidence:
        return []
    chosen = [int(x) for x in rec.get("layers", []) if is_number(x)] if isinstance(rec, dict) else []
    series = _series(evidence)
    title = "Language-specific layers (PLAST)"
    if doc.get("method") == "parameter change":
        title = "Most-changed layers (parameter change against the base)"
    sec = Section(title, "layers", run.label, intro=_intro(doc, rec, chosen, series))
    if series:
        sec.add(_curves(series, chosen))
    onset = (evidence.get("logit_lens") or {}).get("onset_layer") or run.results.get("onset_layer")
    if isinstance(onset, dict) and onset:
        sec.add(Table.make(["language", "onset layer"], [[lang, v] for lang, v in onset.items()],
                           caption="Logit lens: first layer from which the target language holds at least half its "
                           "last-layer share of top-1 guesses (– : never)", collapsed=False))
    return [sec]


def _intro(doc: dict, rec, chosen: list[int], series: dict) -> str:
    if not isinstance(rec, dict):
        return ""
    ranking = doc.get("ranking") or []
    key, what = ("change", "most-changed") if "change" in series else ("score", "most language-specific")
    text = f"Layers to finetune: {', '.join(map(str, chosen)) or 'none'}"
    if key in series and chosen:
        text += " (" + ", ".join(f"layer {i}: {label(key)} {fmt(series[key][i], 3)}" for i in chosen
                                 if i < len(series[key])) + ")"
    if is_number(rec.get("budget")) and is_number(rec.get("max_depth")):
        text += (f", the {fmt(rec['budget'] * 100, 3)}% {what} layers among the first "
                 f"{fmt(rec['max_depth'] * 100, 3)}% of the stack")
    text += "."
    if "bottom" in rec and "top" in rec:
        text += f" Layer swapping takes the bottom {rec['bottom']} and top {rec['top']} layers."
    if ranking:
        text += f" Ranking, {what} first: {', '.join(map(str, ranking))}."
    return text


def _curves(series: dict[str, list[float]], chosen: list[int]) -> Figure:
    n = len(next(iter(series.values())))
    x = list(range(n))
    named = {label(k): v for k, v in series.items()}
    drawn = {(name if k in UNSCALED else f"{name} (scaled to max 1)"): v if k in UNSCALED else _scaled(v)
             for (k, v), name in zip(series.items(), named)}  # one panel: every curve on 0..1
    src = plots.lines(x, drawn, xlabel="layer", ylabel="0 to 1", title="Evidence per layer",
                      bands=[(a, b, "chosen") for a, b in _runs(chosen)], one_shade=True)
    rows = [[i, "yes" if i in chosen else "", *[series[k][i] for k in series]] for i in x]
    tab = Table.make(["layer", "chosen", *named], rows, caption="Evidence per layer (shaded: chosen layers)")
    peaks = "; ".join(f"{name} peaks at layer {max(x, key=lambda i, v=v: v[i])}" for name, v in named.items())
    alt = (f"Line chart over {n} layers of {', '.join(named)}; chosen layers "
           f"{', '.join(map(str, chosen)) or 'none'} are shaded. {peaks}.")
    return Figure(src, alt, "Per-layer evidence; the chosen layers are shaded.", tab)
