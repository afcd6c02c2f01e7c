"""Compare the language neurons of two models of the same architecture (e.g. base vs aligned).

* **Jaccard** per language: |S_A ∩ S_B| / |S_A ∪ S_B| of the neuron sets (layer, neuron).
* **Class transitions**: a 4 x 4 table of how many neurons moved from class c in A to class d in B
  (none / specific / related / general), e.g. specific -> general. The language-neurons paper
  reports that alignment turns language-specific neurons into language-related ones.
* **Per-layer shifts**: per class, the count per layer in A, in B and B - A.
"""

from __future__ import annotations

import torch

from babelscope.errors import UsageError
from babelscope.interpret.neurons import NEURONS_FILE
from babelscope.interpret.ternary import CLASSES
from babelscope.runs import RunFolder


def compare_tensors(
    classes_a: torch.Tensor,
    members_a: torch.Tensor,
    langs_a: list[str],
    classes_b: torch.Tensor,
    members_b: torch.Tensor,
    langs_b: list[str],
) -> dict:
    """The comparison from class maps [L, F] and memberships [K, L, F] of two runs."""
    if classes_a.shape != classes_b.shape:
        raise UsageError(
            f"the two runs have different MLP shapes {tuple(classes_a.shape)} and "
            f"{tuple(classes_b.shape)}; compare models of the same architecture."
        )
    common = [lang for lang in langs_a if lang in langs_b]
    if not common:
        raise UsageError(f"the two runs share no language ({langs_a} vs {langs_b}).")
    jaccard = {}
    for lang in common:
        a, b = members_a[langs_a.index(lang)].bool(), members_b[langs_b.index(lang)].bool()
        union = int((a | b).sum())
        jaccard[lang] = {
            "a": int(a.sum()),
            "b": int(b.sum()),
            "both": int((a & b).sum()),
            "jaccard": int((a & b).sum()) / union if union else None,
        }
    a, b = classes_a.long(), classes_b.long()
    moves = torch.zeros(len(CLASSES), len(CLASSES), dtype=torch.long)
    moves.index_put_((a.flatten(), b.flatten()), torch.ones(a.numel(), dtype=torch.long), accumulate=True)
    transitions = {
        f"{CLASSES[i]}->{CLASSES[j]}": int(moves[i, j])
        for i in range(len(CLASSES))
        for j in range(len(CLASSES))
        if i != j and moves[i, j]
    }
    per_layer = {}
    for v, name in enumerate(CLASSES):
        if v:
            ca, cb = (a == v).sum(1).tolist(), (b == v).sum(1).tolist()
            per_layer[name] = {"a": ca, "b": cb, "shift": [y - x for x, y in zip(ca, cb, strict=True)]}
    mean_j = [v["jaccard"] for v in jaccard.values() if v["jaccard"] is not None]
    return {
        "languages": common,
        "jaccard": jaccard,
        "mean_jaccard": sum(mean_j) / len(mean_j) if mean_j else None,
        "transitions": transitions,
        "transition_matrix": {"classes": list(CLASSES), "counts": moves.tolist()},
        "per_layer": per_layer,
        "totals": {name: {"a": sum(d["a"]), "b": sum(d["b"])} for name, d in per_layer.items()},
    }


def compare_results(result_a, result_b) -> dict:
    """Compare two in-memory ``NeuronResult`` objects."""
    out = compare_tensors(
        result_a.classes,
        result_a.sets.members,
        result_a.languages,
        result_b.classes,
        result_b.sets.members,
        result_b.languages,
    )
    return {"model_a": result_a.model, "model_b": result_b.model, **out}


def load_run(path) -> tuple[dict, dict]:
    """(tensors, metadata) of a ``babelscope neurons`` run folder."""
    run = RunFolder.open(path)
    if not (run.path / NEURONS_FILE).exists():
        raise UsageError(f"{path} has no {NEURONS_FILE}; pass run folders written by `babelscope neurons`.")
    return run.load_tensors(NEURONS_FILE)


def compare_runs(run_a, run_b) -> dict:
    """Compare two run folders of ``babelscope neurons``."""
    ta, ma = load_run(run_a)
    tb, mb = load_run(run_b)
    out = compare_tensors(ta["classes"], ta["members"], ma["languages"], tb["classes"], tb["members"], mb["languages"])
    return {
        "model_a": ma.get("model", "a"),
        "model_b": mb.get("model", "b"),
        "run_a": str(run_a),
        "run_b": str(run_b),
        "method_a": ma.get("method"),
        "method_b": mb.get("method"),
        **out,
    }


def format_compare(cmp: dict) -> str:
    """A Markdown summary: Jaccard per language, class totals, the largest transitions."""
    lines = [
        f"# compare-neurons: {cmp['model_a']} (A) vs {cmp['model_b']} (B)",
        "",
        "| language | A | B | both | Jaccard |",
        "|---|---|---|---|---|",
    ]
    for lang, j in cmp["jaccard"].items():
        jac = "n/a" if j["jaccard"] is None else f"{j['jaccard']:.3f}"
        lines.append(f"| {lang} | {j['a']} | {j['b']} | {j['both']} | {jac} |")
    lines += [
        "",
        "Class totals: " + ", ".join(f"{k} {v['a']} -> {v['b']}" for k, v in cmp["totals"].items()),
        "",
        "Transitions (neurons): "
        + ", ".join(f"{k} {v}" for k, v in sorted(cmp["transitions"].items(), key=lambda kv: -kv[1])),
    ]
    return "\n".join(lines) + "\n"
