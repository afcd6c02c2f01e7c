"""Effect matrix: what an intervention did to each language, item by item, with paired bootstrap intervals.

Two evaluations of the same held-out items (``samples/<task>.<language>.jsonl`` of two ``eval`` runs,
parsed into ``{task: {language: [record, ...]}}``) are compared on the item ids they share. Each
metric is a ratio of per-item sums (``num / den``): accuracy is the share of items right (den 1),
bits per character is ``-sum(logprob) / ln 2 / sum(n_chars)``, and consistency is the share of items
whose prediction equals the reference language's prediction on the same item. The change is
``after - before`` on the shared items; its interval resamples those items with replacement (the
same resample for both evaluations, so item difficulty cancels) and takes the percentiles::

    effects = effect_table(baseline_records, after_records, reference="eng_Latn")
    effects["continuation"]["fra_Latn"]["acc"]   # {"before", "after", "delta", "low", "high", "n"}
    as_rows({"finetune": effects})               # flat rows, as results.json stores them
"""

from __future__ import annotations

import math

import numpy as np

N_BOOT = 1000  # bootstrap resamples
LEVEL = 0.95  # two-sided interval
CHOICE_METRICS = ("acc", "acc_norm")  # per-record 0/1 fields of multiple-choice tasks
GENERATION_METRICS = ("exact_match", "f1", "chrf", "execution_accuracy")  # per-record scores of generation tasks
CONSISTENCY = "consistency"  # agreement of a language's prediction with the reference's on the same item
ALL = "all"  # the pooled row: per item, the mean over every non-reference language
LOWER_IS_BETTER = ("bits_per_char",)


def item_values(records: list[dict], metric: str) -> dict[str, tuple[float, float]]:
    """``{item_id: (numerator, denominator)}`` of ``metric`` in one task and language's records."""
    out = {}
    for rec in records:
        if metric == "bits_per_char":
            if rec.get("logprob") is not None and rec.get("n_chars"):
                out[rec["item_id"]] = (-float(rec["logprob"]) / math.log(2), float(rec["n_chars"]))
        elif isinstance(rec.get(metric), (int, float)) and not isinstance(rec.get(metric), bool):
            out[rec["item_id"]] = (float(rec[metric]), 1.0)
    return out


def consistency_values(by_language: dict[str, list[dict]], reference: str) -> dict[str, dict]:
    """``{language: {item_id: (agrees, 1)}}`` for every non-reference language, plus ``ALL``: per item the
    mean agreement over the languages that have it."""
    ref = {r["item_id"]: r.get("pred") for r in by_language.get(reference, []) if r.get("pred") is not None}
    out: dict[str, dict] = {}
    for lang, records in by_language.items():
        if lang == reference:
            continue
        out[lang] = {r["item_id"]: (float(r["pred"] == ref[r["item_id"]]), 1.0) for r in records
                     if r.get("pred") is not None and r["item_id"] in ref}
    pooled: dict[str, list[float]] = {}
    for values in out.values():
        for item, (agree, _) in values.items():
            pooled.setdefault(item, []).append(agree)
    if out:
        out[ALL] = {item: (sum(v) / len(v), 1.0) for item, v in pooled.items()}
    return out


def paired_bootstrap(before: dict, after: dict, n_boot: int = N_BOOT, seed: int = 0,
                     level: float = LEVEL) -> dict | None:
    """The change ``after - before`` of a ratio metric on the shared items, with a percentile interval
    from resampling those items (one resample for both sides). None when no item is shared."""
    shared = sorted(set(before) & set(after))
    if not shared:
        return None
    b = np.array([before[i] for i in shared], dtype=float)  # [n, 2]: numerator, denominator
    a = np.array([after[i] for i in shared], dtype=float)  # [n, 2]
    idx = np.random.default_rng(seed).integers(0, len(shared), size=(n_boot, len(shared)))  # [n_boot, n]
    b_boot = b[idx, 0].sum(1) / b[idx, 1].sum(1)  # [n_boot]
    a_boot = a[idx, 0].sum(1) / a[idx, 1].sum(1)  # [n_boot]
    lo, hi = np.quantile(a_boot - b_boot, [(1 - level) / 2, (1 + level) / 2])
    vb, va = b[:, 0].sum() / b[:, 1].sum(), a[:, 0].sum() / a[:, 1].sum()
    return {"before": float(vb), "after": float(va), "delta": float(va - vb), "low": float(lo), "high": float(hi),
            "n": len(shared)}


def task_metrics(records: list[dict]) -> list[str]:
    """The per-item metrics a task's records carry."""
    if not records:
        return []
    first = records[0]
    if "logprob" in first and "n_chars" in first and "choices" not in first:
        return ["bits_per_char"]
    return [m for m in (*CHOICE_METRICS, *GENERATION_METRICS) if isinstance(first.get(m), (int, float))]


def effect_table(baseline: dict, treated: dict, reference: str | None = None, n_boot: int = N_BOOT,
                 seed: int = 0, level: float = LEVEL) -> dict:
    """``{task: {language: {metric: change}}}`` for every task and language both evaluations hold;
    multiple-choice tasks add ``consistency`` per language and pooled over languages (``ALL``)."""
    out: dict = {}
    for task in sorted(set(baseline) & set(treated)):
        table: dict = {}
        for lang in baseline[task]:
            if lang not in treated[task]:
                continue
            for metric in task_metrics(baseline[task][lang]):
                change = paired_bootstrap(item_values(baseline[task][lang], metric),
                                          item_values(treated[task][lang], metric), n_boot, seed, level)
                if change:
                    table.setdefault(lang, {})[metric] = change
        if reference and any("pred" in r for recs in baseline[task].values() for r in recs[:1]):
            before = consistency_values(baseline[task], reference)
            after = consistency_values(treated[task], reference)
            for lang in before:
                change = paired_bootstrap(before[lang], after.get(lang, {}), n_boot, seed, level)
                if change:
                    table.setdefault(lang, {})[CONSISTENCY] = change
        if table:
            out[task] = table
    return out


def verdict(change: dict, metric: str) -> str:
    """gained / lost (the interval excludes zero, read with the metric's direction) or unclear."""
    if change["low"] > 0 or change["high"] < 0:
        up = change["low"] > 0
        return "gained" if up != (metric in LOWER_IS_BETTER) else "lost"
    return "unclear"


def as_rows(effects: dict) -> list[dict]:
    """``{intervention: {task: {language: {metric: change}}}}`` as flat rows (results.json, tables, pandas)."""
    return [{"intervention": name, "task": task, "language": lang, "metric": metric, **change,
             "verdict": verdict(change, metric)}
            for name, table in effects.items() for task, per in table.items()
            for lang, metrics in per.items() for metric, change in metrics.items()]


def summarise(rows: list[dict]) -> dict:
    """Per intervention: the languages with a clear gain or loss (``{task, language, metric, delta}``) and the
    change of the consistency pooled over languages, one row per task."""
    out: dict = {}
    for row in rows:
        entry = out.setdefault(row["intervention"], {"gained": [], "lost": [], "consistency": []})
        if row["language"] == ALL:
            entry["consistency"].append({k: v for k, v in row.items() if k not in ("intervention", "language")})
        elif row["verdict"] != "unclear":
            entry[row["verdict"]].append({k: row[k] for k in ("task", "language", "metric", "delta")})
    return out
