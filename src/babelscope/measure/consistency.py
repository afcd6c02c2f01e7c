"""Cross-lingual consistency of multiple-choice answers (MuBench's MLC and Rel-MLC).

For languages a and b over their shared items: ``consistency(a, b)`` = share of items on which
both choose the same option; ``relative`` = consistency / mean accuracy of a and b (MuBench's
Rel-MLC); ``both_correct`` = share right in both; ``kappa`` = Cohen's kappa over the chosen
option indices (chance-corrected: two languages near chance with the same position bias agree
a lot without understanding anything).
"""

from __future__ import annotations

from collections import Counter

from babelscope.languages import REFERENCE  # "vs English" columns compare each language with this one


def _kappa(a: list[int], b: list[int]) -> float | None:
    """Cohen's kappa, equal to scikit-learn's ``cohen_kappa_score`` (tests/test_metrics_libs.py). Not
    called from there on purpose: it costs milliseconds a call (validation, a confusion matrix) and the
    matrices call it 2 x languages^2 times per task (minutes for 200 languages), and it warns and
    returns nan (or raises on no items) where this returns None."""
    n = len(a)
    if n == 0:
        return None
    observed = sum(x == y for x, y in zip(a, b, strict=True)) / n
    ca, cb = Counter(a), Counter(b)
    expected = sum(ca[k] * cb[k] for k in ca) / (n * n)
    return None if expected >= 1 else (observed - expected) / (1 - expected)


def pair_stats(recs_a: dict, recs_b: dict, pred_key: str = "pred") -> dict:
    """Agreement figures of two languages' records (``{item_id: record}``) over shared items."""
    shared = [i for i in recs_a if i in recs_b]
    if not shared:
        return {"n": 0, "consistency": None, "relative": None, "both_correct": None, "kappa": None}
    pa = [recs_a[i][pred_key] for i in shared]
    pb = [recs_b[i][pred_key] for i in shared]
    agree = sum(x == y for x, y in zip(pa, pb, strict=True)) / len(shared)
    acc_a = sum(recs_a[i][pred_key] == recs_a[i]["gold"] for i in shared) / len(shared)
    acc_b = sum(recs_b[i][pred_key] == recs_b[i]["gold"] for i in shared) / len(shared)
    both = sum(
        recs_a[i][pred_key] == recs_a[i]["gold"] and recs_b[i][pred_key] == recs_b[i]["gold"] for i in shared
    ) / len(shared)
    mean_acc = (acc_a + acc_b) / 2
    return {
        "n": len(shared),
        "consistency": agree,
        "relative": agree / mean_acc if mean_acc else None,
        "both_correct": both,
        "kappa": _kappa(pa, pb),
    }


def consistency(records_by_lang: dict[str, list[dict]], reference: str = REFERENCE, pred_key: str = "pred") -> dict:
    """Language x language matrices, each language vs ``reference``, and their means."""
    by_id = {lang: {r["item_id"]: r for r in recs} for lang, recs in records_by_lang.items()}
    langs = list(by_id)
    matrix, relative, both, kappa = ({a: {} for a in langs} for _ in range(4))
    for a in langs:
        for b in langs:
            s = pair_stats(by_id[a], by_id[b], pred_key)
            matrix[a][b], relative[a][b], both[a][b], kappa[a][b] = (
                s["consistency"],
                s["relative"],
                s["both_correct"],
                s["kappa"],
            )
    out = {
        "prediction": pred_key,
        "languages": langs,
        "matrix": matrix,
        "relative_matrix": relative,
        "both_correct_matrix": both,
        "kappa_matrix": kappa,
    }
    pairs = [(a, b) for i, a in enumerate(langs) for b in langs[i + 1 :]]
    out["mean_pairwise"] = _mean([matrix[a][b] for a, b in pairs])
    out["mean_pairwise_relative"] = _mean([relative[a][b] for a, b in pairs])
    if reference in by_id:
        others = [lang for lang in langs if lang != reference]
        out["reference"] = reference
        out["vs_reference"] = {lang: pair_stats(by_id[lang], by_id[reference], pred_key) for lang in others}
        out["mean_vs_reference"] = _mean([out["vs_reference"][lang]["consistency"] for lang in others])
        out["mean_vs_reference_relative"] = _mean([out["vs_reference"][lang]["relative"] for lang in others])
    return out


def mark_flips(records_by_lang: dict[str, list[dict]], reference: str = REFERENCE) -> None:
    """Add ``flipped_vs_reference`` (the chosen option differs from the reference language's) in place."""
    if reference not in records_by_lang:
        return
    ref = {r["item_id"]: r["pred"] for r in records_by_lang[reference]}
    for recs in records_by_lang.values():
        for r in recs:
            r["flipped_vs_reference"] = None if r["item_id"] not in ref else bool(r["pred"] != ref[r["item_id"]])


def _mean(values):
    values = [v for v in values if v is not None]
    return sum(values) / len(values) if values else None
