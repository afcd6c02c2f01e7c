"""Do LAHIS heads, language neurons and PLAST layers point at the same part of the model?

Pure functions on parsed run results: a ``heads`` run's results.json (``specific`` / ``candidates``
``{language: [flat head id]}``, ``n_layers``, ``n_heads``), a ``neurons`` run's neurons.json
(``neurons`` ``{language: {layer: [neuron id]}}``) and layer_counts.json (``classes`` ``{specific,
related, general: [count per layer]}``), and a ``layers`` run's layers.json (``evidence.score``, the
PLAST layer score). Each becomes a per-layer series (a share of the whole, so series of any size
compare); Spearman's rank correlation between two series says whether they rank layers alike, and
its interval comes from resampling layers::

    doc = agreement(heads_results, neurons_doc, layer_counts, layers_doc)
    doc["correlations"]          # [{a, b, rho, low, high, n}]
    doc["languages"]["fra_Latn"] # its heads' layers vs its specific neurons' layers

Note: the PLAST score is the mean of the scaled language-neuron share and the activation difference,
so with ``layers --neurons_run`` it shares one ingredient with the neuron series.
"""

from __future__ import annotations

from itertools import combinations
from math import comb

import numpy as np

N_BOOT = 1000  # bootstrap resamples of layers
LEVEL = 0.95
NEURON_CLASSES = ("specific", "related", "general")


# per-layer series -------------------------------------------------------------------------------------


def head_layer_counts(heads: list[int], n_layers: int, n_heads: int) -> list[int]:
    """How many of the flat head ids (layer * n_heads + head) sit in each layer."""
    counts = [0] * n_layers
    for h in heads:
        counts[int(h) // n_heads] += 1
    return counts


def shares(counts) -> list[float]:
    """Each layer's share of the total (all zeros when the total is zero)."""
    total = float(sum(counts))
    return [c / total if total else 0.0 for c in counts]


def specific_neuron_ids(neurons: dict[str, dict]) -> dict[str, dict[int, list[int]]]:
    """``{language: {layer: [neuron id]}}`` of neurons in that language's set and in no other language's."""
    members: dict[tuple[int, int], set] = {}
    for lang, per_layer in neurons.items():
        for layer, ids in per_layer.items():
            for i in ids:
                members.setdefault((int(layer), int(i)), set()).add(lang)
    out: dict[str, dict[int, list[int]]] = {lang: {} for lang in neurons}
    for (layer, i), langs in sorted(members.items()):
        if len(langs) == 1:
            out[next(iter(langs))].setdefault(layer, []).append(i)
    return out


def specific_neuron_counts(neurons: dict[str, dict], n_layers: int) -> dict[str, list[int]]:
    """``{language: [count per layer]}`` of its specific neurons (``specific_neuron_ids``)."""
    out = {lang: [0] * n_layers for lang in neurons}
    for lang, per_layer in specific_neuron_ids(neurons).items():
        for layer, ids in per_layer.items():
            out[lang][layer] = len(ids)
    return out


def layer_series(heads: dict, layer_counts: dict | None = None, layers_doc: dict | None = None) -> dict:
    """``{name: [value per layer]}``: the share of every language's top LAHIS heads, of specific / related /
    general neurons, and the PLAST score (each present when its run is)."""
    n_layers, n_heads = heads["n_layers"], heads["n_heads"]
    top = [h for ids in heads.get("candidates", {}).values() for h in ids]
    series = {"top_heads": shares(head_layer_counts(top, n_layers, n_heads))}
    classes = (layer_counts or {}).get("classes", {})
    for cls in NEURON_CLASSES:
        if cls in classes and len(classes[cls]) == n_layers:
            series[f"{cls}_neurons"] = shares(classes[cls])
    score = ((layers_doc or {}).get("evidence") or {}).get("score")
    if score is not None and len(score) == n_layers:
        series["plast_score"] = [float(s) for s in score]
    return series


# rank correlation -------------------------------------------------------------------------------------


def ranks(x) -> np.ndarray:
    """Ranks from 1, ties sharing their mean rank."""
    x = np.asarray(x, dtype=float)
    order = np.argsort(x, kind="stable")
    r = np.empty(len(x))
    r[order] = np.arange(1, len(x) + 1)
    for value in np.unique(x):
        tied = x == value
        r[tied] = r[tied].mean()
    return r


def spearman(x, y) -> float | None:
    """Spearman's rho (Pearson on tie-averaged ranks); None when either side is constant."""
    rx, ry = ranks(x), ranks(y)
    if len(rx) < 2 or rx.std() == 0 or ry.std() == 0:
        return None
    return float(np.corrcoef(rx, ry)[0, 1])


def bootstrap_spearman(x, y, n_boot: int = N_BOOT, seed: int = 0, level: float = LEVEL) -> dict:
    """rho and a percentile interval from resampling the paired points (layers) with replacement."""
    x, y = np.asarray(x, dtype=float), np.asarray(y, dtype=float)
    rho = spearman(x, y)
    rng = np.random.default_rng(seed)
    draws = [spearman(x[i], y[i]) for i in rng.integers(0, len(x), size=(n_boot, len(x)))]
    draws = [d for d in draws if d is not None]
    lo, hi = (np.quantile(draws, [(1 - level) / 2, (1 + level) / 2]) if draws else (None, None))
    return {"rho": rho, "low": None if lo is None else float(lo), "high": None if hi is None else float(hi),
            "n": len(x)}


def correlations(series: dict, n_boot: int = N_BOOT, seed: int = 0) -> list[dict]:
    """Spearman with an interval for every pair of series."""
    return [{"a": a, "b": b, **bootstrap_spearman(series[a], series[b], n_boot, seed)}
            for a, b in combinations(series, 2)]


# per language ------------------------------------------------------------------------------------------


def top_layers(counts: list[int], k: int) -> list[int]:
    """The ``k`` layers with the most (nonzero) counts, ties to the lower layer."""
    ranked = sorted((i for i, c in enumerate(counts) if c > 0), key=lambda i: (-counts[i], i))
    return sorted(ranked[:k])


def jaccard(a, b) -> float | None:
    a, b = set(a), set(b)
    return len(a & b) / len(a | b) if a | b else None


def chance_jaccard(n: int, k1: int, k2: int) -> float | None:
    """Expected Jaccard of two random layer sets of sizes k1 and k2 out of n (hypergeometric overlap)."""
    if n <= 0 or k1 + k2 == 0:
        return None
    total = comb(n, k2)
    return sum(comb(k1, j) * comb(n - k1, k2 - j) / total * j / (k1 + k2 - j)
               for j in range(max(0, k1 + k2 - n), min(k1, k2) + 1) if k1 + k2 - j > 0)


def language_overlap(head_counts: dict[str, list[int]], neuron_counts: dict[str, list[int]]) -> dict:
    """Per language: the layers holding its specific heads, the same number of layers with most of its
    specific neurons, their Jaccard overlap beside chance, and Spearman of the per-layer counts."""
    out = {}
    for lang in sorted(set(head_counts) & set(neuron_counts)):
        h, nrn = head_counts[lang], neuron_counts[lang]
        head_layers = [i for i, c in enumerate(h) if c > 0]
        neuron_layers = top_layers(nrn, max(1, len(head_layers)))
        out[lang] = {"head_layers": head_layers, "neuron_layers": neuron_layers,
                     "jaccard": jaccard(head_layers, neuron_layers),
                     "chance_jaccard": chance_jaccard(len(h), len(head_layers), len(neuron_layers)),
                     "rho": spearman(h, nrn), "heads": int(sum(h)), "neurons": int(sum(nrn))}
    return out


# one document --------------------------------------------------------------------------------------


def agreement(heads: dict, neurons_doc: dict | None = None, layer_counts: dict | None = None,
              layers_doc: dict | None = None, n_boot: int = N_BOOT, seed: int = 0) -> dict:
    """Series per layer, their pairwise rank correlations, and the per-language overlap."""
    series = layer_series(heads, layer_counts, layers_doc)
    n_layers, n_heads = heads["n_layers"], heads["n_heads"]
    doc = {"n_layers": n_layers, "series": series, "correlations": correlations(series, n_boot, seed)}
    if neurons_doc and "neurons" in neurons_doc:
        head_counts = {lang: head_layer_counts(ids, n_layers, n_heads) for lang, ids in heads["specific"].items()}
        doc["languages"] = language_overlap(head_counts, specific_neuron_counts(neurons_doc["neurons"], n_layers))
    return doc


def across_models(before: dict, after: dict, n_boot: int = N_BOOT, seed: int = 0) -> dict:
    """Two ``agreement`` documents of the same layer count (before / after finetune or merge): for each
    series both hold, Spearman between the models; for each language, the overlap of its head layers."""
    if before["n_layers"] != after["n_layers"]:
        return {"comparable": False, "why": f"{before['n_layers']} vs {after['n_layers']} layers"}
    same = [name for name in before["series"] if name in after["series"]]
    langs = sorted(set(before.get("languages", {})) & set(after.get("languages", {})))
    return {"comparable": True,
            "series": {name: bootstrap_spearman(before["series"][name], after["series"][name], n_boot, seed)
                       for name in same},
            "head_layers_jaccard": {lang: jaccard(before["languages"][lang]["head_layers"],
                                                  after["languages"][lang]["head_layers"]) for lang in langs}}


# as results.json stores them ---------------------------------------------------------------------------


def as_rows(doc: dict) -> dict:
    """An ``agreement`` document with every per-layer and per-language part as a list of rows (what results.json
    holds: the report's generic tables then leave it to the loop section)."""
    series = doc["series"]
    out = {"layers": [{"layer": i, **{name: values[i] for name, values in series.items()}}
                      for i in range(doc["n_layers"])],
           "correlations": doc["correlations"],
           "languages": [{"language": lang, **row} for lang, row in doc.get("languages", {}).items()]}
    return {**out, **{k: v for k, v in doc.items() if k not in ("n_layers", "series", "correlations", "languages")}}


def across_rows(doc: dict) -> dict:
    """An ``across_models`` document as rows."""
    if not doc.get("comparable"):
        return doc
    return {"comparable": True, "series": [{"series": name, **c} for name, c in doc["series"].items()],
            "head_layers_jaccard": [{"language": lang, "jaccard": j} for lang, j in doc["head_layers_jaccard"].items()]}
