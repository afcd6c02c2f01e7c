"""Compare the language neurons of two models of the same architecture (e.g. base vs aligned).

* **Jaccard** per language: |S_A ∩ S_B| / |S_A ∪ S_B| of the neuron sets (layer, neuron).
* **Class transitions**: a 4 x 4 table of how many neurons moved from class c in A to class d in B
  (none / specific / related / general), e.g. specific -> general. The language-neurons paper
  reports that alignment turns language-specific neurons into language-related ones.
* **Per-layer shifts**: per class, the count per layer in A, in B and B - A.

Two ternary runs are compared at one lambda: each run's own sweep may stop at a different lambda,
which moves neurons between classes by itself. ``compare_runs`` re-selects run B at run A's lambda
(or both at a given ``lam``) from the runs' statistics and records the lambda it used. LAPE runs
name class 2 "multi-language" (LAPE's word), ternary runs "related"; the integers are the same.
"""

from __future__ import annotations

import json

import torch

from babelscope.errors import UsageError
from babelscope.interpret import ternary
from babelscope.interpret.neurons import NEURONS_FILE, STATS_FILE, class_names
from babelscope.interpret.ternary import CLASSES
from babelscope.models.reducers import NeuronReducer
from babelscope.runs import RunFolder


def compare_tensors(
    classes_a: torch.Tensor,
    members_a: torch.Tensor,
    langs_a: list[str],
    classes_b: torch.Tensor,
    members_b: torch.Tensor,
    langs_b: list[str],
    names: tuple[str, ...] = CLASSES,
) -> dict:
    """The comparison from class maps [L, F] and memberships [K, L, F] of two runs (``names``: the
    names of class values 0..3)."""
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
    moves = torch.zeros(len(names), len(names), dtype=torch.long)
    moves.index_put_((a.flatten(), b.flatten()), torch.ones(a.numel(), dtype=torch.long), accumulate=True)
    transitions = {
        f"{names[i]}->{names[j]}": int(moves[i, j])
        for i in range(len(names))
        for j in range(len(names))
        if i != j and moves[i, j]
    }
    per_layer = {}
    for v, name in enumerate(names):
        if v:
            ca, cb = (a == v).sum(1).tolist(), (b == v).sum(1).tolist()
            per_layer[name] = {"a": ca, "b": cb, "shift": [y - x for x, y in zip(ca, cb, strict=True)]}
    mean_j = [v["jaccard"] for v in jaccard.values() if v["jaccard"] is not None]
    return {
        "languages": common,
        "jaccard": jaccard,
        "mean_jaccard": sum(mean_j) / len(mean_j) if mean_j else None,
        "transitions": transitions,
        "transition_matrix": {"classes": list(names), "counts": moves.tolist()},
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
        _names(result_a.method, result_b.method),
    )
    return {"model_a": result_a.model, "model_b": result_b.model, **out}


def load_run(path) -> tuple[dict, dict]:
    """(tensors, metadata) of a ``babelscope neurons`` run folder."""
    run = RunFolder.open(path)
    if not (run.path / NEURONS_FILE).exists():
        raise UsageError(f"{path} has no {NEURONS_FILE}; pass run folders written by `babelscope neurons`.")
    return run.load_tensors(NEURONS_FILE)


def _names(method_a, method_b) -> tuple[str, ...]:
    """Class names shared by both runs: LAPE's when both are LAPE runs, else the ternary ones."""
    return class_names("lape") if method_a == method_b == "lape" else CLASSES


def _probabilities(path, tensors: dict) -> torch.Tensor:
    """[L, F, K] activation probabilities: exact (float64) from the statistics when present."""
    stats = RunFolder.open(path).path / STATS_FILE
    return NeuronReducer.load(stats).probabilities() if stats.exists() else tensors["probabilities"].double()


def _selection(path) -> dict:
    """The selection settings recorded in the run's neurons.json (empty when absent)."""
    doc = RunFolder.open(path).path / "neurons.json"
    return json.loads(doc.read_text()).get("selection", {}) if doc.exists() else {}


def _reselect(path, tensors: dict, meta: dict, sel: dict, lam: float) -> tuple:
    """(classes, members) of a ternary run re-selected at ``lam`` with its own rates."""
    p = _probabilities(path, tensors)
    sets = ternary.select(p, meta["languages"], lam, sel.get("top_rate", ternary.TOP_RATE),
                          sel.get("bar_rate", ternary.BAR_RATE))
    return ternary.classify(p, sets), sets.members


def compare_runs(run_a, run_b, lam: float | None = None) -> dict:
    """Compare two run folders of ``babelscope neurons``.

    Two ternary runs are compared at one lambda: ``lam`` when given (both runs re-selected), else
    run A's (run B re-selected when its own differs). The result records ``lambda``,
    ``lambda_from`` (option / run_a) and each run's own lambda; other methods compare as saved.
    """
    ta, ma = load_run(run_a)
    tb, mb = load_run(run_b)
    sel_a, sel_b = _selection(run_a), _selection(run_b)
    ca, ka, cb, kb = ta["classes"], ta["members"], tb["classes"], tb["members"]
    both_ternary = ma.get("method") == mb.get("method") == "ternary"
    if lam is not None and not both_ternary:
        raise UsageError("--lambda applies to two ternary runs; these are "
                         f"{ma.get('method')} and {mb.get('method')}.")
    own = {"a": sel_a.get("lambda"), "b": sel_b.get("lambda")}
    used, source, reselected = None, None, []
    if both_ternary:
        used, source = (lam, "option") if lam is not None else (own["a"], "run_a")
        if used is not None:
            if lam is not None or own["a"] is None:
                ca, ka = _reselect(run_a, ta, ma, sel_a, used)
                reselected.append("a")
            if lam is not None or own["b"] != used:
                cb, kb = _reselect(run_b, tb, mb, sel_b, used)
                reselected.append("b")
    out = compare_tensors(ca, ka, ma["languages"], cb, kb, mb["languages"],
                          _names(ma.get("method"), mb.get("method")))
    return {
        "model_a": ma.get("model", "a"),
        "model_b": mb.get("model", "b"),
        "run_a": str(run_a),
        "run_b": str(run_b),
        "method_a": ma.get("method"),
        "method_b": mb.get("method"),
        "lambda": used,
        "lambda_from": source,
        "own_lambda": own,
        "reselected": reselected,
        **out,
    }


def format_compare(cmp: dict) -> str:
    """A Markdown summary: Jaccard per language, class totals, the largest transitions."""
    lines = [
        f"# compare-neurons: {cmp['model_a']} (A) vs {cmp['model_b']} (B)",
        "",
        *([f"Both runs compared at lambda {cmp['lambda']:.4g} (from {cmp.get('lambda_from')}; own lambdas "
           f"{cmp.get('own_lambda')}).", ""] if cmp.get("lambda") is not None else []),
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
