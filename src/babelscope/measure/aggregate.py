"""From per-item records to results.json: per-language metrics, macro/micro means, consistency,
off-target rate and fertility correlation. Pure functions of the records, so ``rescore`` gets
exactly the numbers that ``evaluate`` wrote.
"""

from __future__ import annotations

from babelscope.languages import REFERENCE, info
from babelscope.measure import metrics as M
from babelscope.measure.consistency import consistency, mark_flips
from babelscope.measure.lid import Identifier, identifier, is_language


def rescore_records(records: list[dict], info: dict) -> list[dict]:
    """Recompute every per-record score from the stored raw values (log-probs, outputs)."""
    if info["kind"] == "mc":
        return [M.score_mc_record(r) for r in records]
    if info["kind"] == "generate":
        return [M.score_gen_record(r, tuple(info["metrics"])) for r in records]
    return records


def task_metrics(records: list[dict], info: dict, language: str, lid: Identifier | None = None) -> dict:
    if info["kind"] == "mc":
        return M.mc_metrics(records)
    if info["kind"] == "bpc":
        return M.bpc_metrics(records)
    out = M.gen_metrics(records, tuple(info["metrics"]), language)
    out.update(off_target(records, language, lid))
    return out


def detect_language(text: str, lid: Identifier | None = None) -> str | None:
    """FLORES-200 code(s) of ``text`` by ``lid`` (default py3langid; see ``measure.lid``); None for blank text."""
    return (lid or identifier()).detect(text)


def off_target(records: list[dict], language: str, lid: Identifier | None = None) -> dict:
    """Share of non-empty outputs whose detected language is not ``language`` (``lid``, default py3langid)."""
    lid = lid or identifier()
    if language not in lid.names():
        return {"off_target": None, "off_target_note": f"{lid.name} cannot name {language}"}
    for r in records:
        r["detected_language"] = lid.detect(r["output"])
    judged = [r for r in records if r["detected_language"]]
    if not judged:
        return {"off_target": None}
    return {"off_target": sum(not is_language(r["detected_language"], language) for r in judged) / len(judged)}


def _means(per_lang: dict[str, dict]) -> tuple[dict, dict]:
    """(macro: each language equal, micro: item-weighted) for every numeric metric."""
    keys = {
        k
        for m in per_lang.values()
        for k, v in m.items()
        if isinstance(v, (int, float)) and k != "n" and not k.endswith("_stderr")
    }
    macro, micro = {}, {}
    for key in sorted(keys):
        pairs = [(m[key], m["n"]) for m in per_lang.values() if m.get(key) is not None]
        if pairs:
            macro[key] = sum(v for v, _ in pairs) / len(pairs)
            micro[key] = sum(v * n for v, n in pairs) / max(sum(n for _, n in pairs), 1)
    macro["n_languages"] = len(per_lang)
    micro["n"] = sum(m["n"] for m in per_lang.values())
    return macro, micro


def correlation(xs: list[float], ys: list[float]) -> dict:
    """Pearson and Spearman correlation with n and two-sided p-values (scipy)."""
    pairs = [(x, y) for x, y in zip(xs, ys, strict=True) if x is not None and y is not None]
    out = {"n": len(pairs)}
    if len(pairs) < 3 or len({x for x, _ in pairs}) < 2 or len({y for _, y in pairs}) < 2:
        return {**out, "pearson": None, "spearman": None, "note": "needs 3+ languages that differ"}
    from scipy import stats

    x, y = zip(*pairs, strict=True)
    pr, sr = stats.pearsonr(x, y), stats.spearmanr(x, y)
    return {
        **out,
        "pearson": float(pr.statistic),
        "pearson_p": float(pr.pvalue),
        "spearman": float(sr.statistic),
        "spearman_p": float(sr.pvalue),
    }


def fertility_correlation(per_task: dict, infos: dict, fertility: dict) -> dict:
    """Per task: correlation across languages of each fertility figure with the headline metric, one
    unit per figure: tokens per character over every language, tokens per word over the languages
    written with spaces, tokens per character of text over those written without."""
    out = {}
    for task, per_lang in per_task.items():
        metric = infos[task]["headline"]
        langs = [lang for lang in per_lang if lang in fertility]
        out[task] = {"metric": metric, "languages": langs}
        groups = {"tokens_per_char": ("tokens_per_char", langs),
                  "fertility_per_word": ("fertility", [g for g in langs if fertility[g].get("unit") == "word"]),
                  "fertility_per_char": ("fertility", [g for g in langs if fertility[g].get("unit") == "char"])}
        for key, (fig, members) in groups.items():
            out[task][key] = {**correlation([fertility[g].get(fig) for g in members],
                                            [per_lang[g].get(metric) for g in members]), "languages": members}
    return out


POOLED_UNITS = ("tokens_per_char", "fertility_per_word", "fertility_per_char", "nsl")


def pooled_fertility_correlation(results_list, names=None, languages=None) -> dict:
    """One correlation over several eval runs (models x datasets x languages), as the Bengali
    tokenization benchmark's analysis pools them.

    ``results_list``: eval ``results.json`` payloads (``tasks``, ``task_info``, ``fertility``);
    ``names``: a label per run (default run0, run1, ...); ``languages``: keep only these.
    Every (run, task, language) with a fertility figure and a headline value is one point; tasks
    are pooled per headline metric (accuracy with accuracy), one unit per figure as in
    ``fertility_correlation``: tokens per character over every language, tokens per word over
    languages written with spaces, tokens per character of text over those without, and ``nsl``:
    the run's tokens over the first run's on the same language (same item count), the first run
    being the baseline (1.0).
    Returns ``{metric: {runs, tasks, languages, points, <unit>: correlation + n}}``.
    """
    results_list = list(results_list)
    names = list(names) if names is not None else [f"run{i}" for i in range(len(results_list))]
    keep = set(languages) if languages is not None else None
    base = (results_list[0].get("fertility") or {}) if results_list else {}
    points: dict = {}
    for name, res in zip(names, results_list, strict=True):
        fert = res.get("fertility") or {}
        infos = res.get("task_info") or {}
        for task, per_lang in (res.get("tasks") or {}).items():
            metric = (infos.get(task) or {}).get("headline")
            for lang, m in per_lang.items():
                if metric is None or lang not in fert or (keep is not None and lang not in keep):
                    continue
                f, b = fert[lang], base.get(lang) or {}
                nsl = (f["tokens"] / b["tokens"] if f.get("tokens") and b.get("tokens")
                       and f.get("items") == b.get("items") else None)
                points.setdefault(metric, []).append({
                    "run": name, "task": task, "language": lang, "value": m.get(metric),
                    "tokens_per_char": f.get("tokens_per_char"), "unit": f.get("unit"),
                    "fertility": f.get("fertility"), "nsl": nsl})
    out = {}
    for metric, pts in points.items():
        groups = {"tokens_per_char": ("tokens_per_char", pts),
                  "fertility_per_word": ("fertility", [p for p in pts if p["unit"] == "word"]),
                  "fertility_per_char": ("fertility", [p for p in pts if p["unit"] == "char"]),
                  "nsl": ("nsl", pts)}
        out[metric] = {"runs": sorted({p["run"] for p in pts}, key=names.index),
                       "tasks": sorted({p["task"] for p in pts}),
                       "languages": sorted({p["language"] for p in pts}), "points": len(pts)}
        for key, (fig, members) in groups.items():
            out[metric][key] = correlation([p[fig] for p in members], [p["value"] for p in members])
    return out


def compute_results(
    records: dict, infos: dict, languages: list[str], fertility: dict | None = None, reference: str = REFERENCE,
    lid: Identifier | None = None,
) -> dict:
    """``records``: {task: {lang: [record]}}; ``infos``: {task: {kind, metrics, headline, ...}};
    ``lid``: the language identifier of off-target rates (default py3langid)."""
    per_task, macro, micro, cons = {}, {}, {}, {}
    for task, by_lang in records.items():
        info = infos[task]
        per_task[task] = {lang: task_metrics(by_lang[lang], info, lang, lid) for lang in languages if lang in by_lang}
        macro[task], micro[task] = _means(per_task[task])
        if info["kind"] == "mc":
            mark_flips(by_lang, reference)
            cons[task] = consistency(by_lang, reference)
            cons[task]["normalized"] = {
                k: v for k, v in consistency(by_lang, reference, "pred_norm").items() if k.startswith("mean")
            }
    out = {
        "languages": languages,
        "tasks": per_task,
        "macro": macro,
        "micro": micro,
        "consistency": cons,
        "task_info": infos,
        "headline": {
            t: {
                "metric": infos[t]["headline"],
                "macro": macro[t].get(infos[t]["headline"]),
                "micro": micro[t].get(infos[t]["headline"]),
            }
            for t in per_task
        },
    }
    gen = {
        t: {lang: m.get("off_target") for lang, m in per.items()}
        for t, per in per_task.items()
        if infos[t]["kind"] == "generate"
    }
    if gen:
        out["off_target"] = gen
    if fertility:
        out["fertility"] = fertility
        out["fertility_correlation"] = fertility_correlation(per_task, infos, fertility)
    return out


def format_table(result, reference: str = REFERENCE) -> str:
    """Plain-text table: one row per language, each task's headline (and acc_norm), consistency vs English."""
    res = result.results if hasattr(result, "results") else result
    cols: list[tuple[str, callable]] = []
    for task in res["tasks"]:
        head = res["task_info"][task]["headline"]
        cols.append((f"{task} {head}", lambda lang, t=task, h=head: res["tasks"][t].get(lang, {}).get(h)))
        if res["task_info"][task]["kind"] == "mc":
            cols.append((f"{task} acc_norm", lambda lang, t=task: res["tasks"][t].get(lang, {}).get("acc_norm")))
            cols.append(
                (
                    f"{task} cons. vs {reference[:3]}",
                    lambda lang, t=task: res["consistency"][t].get("vs_reference", {}).get(lang, {}).get("consistency"),
                )
            )
    header = ["language", "name", *[c for c, _ in cols]]
    rows = [[lang, info(lang).name, *[_fmt(f(lang)) for _, f in cols]] for lang in res["languages"]]
    rows.append(["macro", "(mean)", *[_fmt(_macro_cell(res, c)) for c, _ in cols]])
    widths = [max(len(str(r[i])) for r in [header, *rows]) for i in range(len(header))]
    lines = ["  ".join(str(v).ljust(w) for v, w in zip(r, widths, strict=True)) for r in [header, *rows]]
    lines.insert(1, "  ".join("-" * w for w in widths))
    return "\n".join(lines)


def _macro_cell(res, column: str):
    task, metric = column.split(" ", 1)
    if metric.startswith("cons."):
        return res["consistency"][task].get("mean_vs_reference")
    return res["macro"][task].get(metric)


def _fmt(v) -> str:
    return "-" if v is None else f"{v:.3f}" if isinstance(v, float) else str(v)
