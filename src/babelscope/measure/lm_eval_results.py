"""``--write_lm_eval_results``: an eval's results in lm-eval's results layout.

``to_lm_eval(results, tasks)`` turns an eval's results.json into the ``results_<time>.json`` that
lm-eval 0.4.13's ``EvaluationTracker`` writes: one entry per (task, language), named as lm-eval
names it (``belebele_deu_Latn``; a language's own group such as ``global_mmlu_de``; a built-in task
as ``continuation_deu_Latn``), with
``"acc,none"`` / ``"acc_stderr,none"`` metrics, ``groups`` (item-weighted means, pooled standard
errors, as lm-eval's ``weight_by_size``), ``group_subtasks``, ``configs``, ``versions``, ``n-shot``,
``higher_is_better``, ``n-samples`` and ``config``. ``babelscope.report.lm_eval`` reads such a file
(ours or lm-eval's own) back into per-language tables.
"""

from __future__ import annotations

import math
import time
from datetime import datetime
from pathlib import Path

from babelscope.measure.metrics import LOWER_IS_BETTER

FILTER = "none"  # lm-eval's filter name for unfiltered metrics
BABELSCOPE_KEY = "babelscope"  # our extra key: {lm-eval group: babelscope task}, for an exact round trip
N_A = "N/A"  # what lm-eval writes for a standard error it could not compute


def _metrics(per_lang: dict, keep: list[str] | None) -> dict:
    """``{"acc,none": v, "acc_stderr,none": se}`` for the numeric metrics of one language."""
    out = {}
    for key, value in per_lang.items():
        if key == "n" or key.endswith("_stderr") or not _number(value) or (keep and key not in keep):
            continue
        se = per_lang.get(f"{key}_stderr")
        out[f"{key},{FILTER}"] = value
        out[f"{key}_stderr,{FILTER}"] = se if _number(se) else N_A
    return out


def _number(v) -> bool:
    return isinstance(v, (int, float)) and not isinstance(v, bool) and math.isfinite(v)


def pooled_stderr(stderrs: list[float], sizes: list[int]) -> float:
    """lm-eval's ``pooled_sample_stderr`` (pooled variance over subtasks weighted by size)."""
    var = sum((n - 1) * se**2 * n for n, se in zip(sizes, stderrs, strict=True)) / (sum(sizes) - len(sizes))
    return math.sqrt(var / sum(sizes))


def _group(name: str, rows: list[tuple[dict, int]]) -> dict:
    """A group's entry: item-weighted mean of every metric all its subtasks have (lm-eval's weight_by_size)."""
    total = sum(n for _, n in rows)
    out = {"alias": name, "name": name, "sample_len": total}
    keys = [k for k in rows[0][0] if "," in k and "_stderr," not in k and all(_number(r.get(k)) for r, _ in rows)]
    for key in keys:
        out[key] = sum(r[key] * n for r, n in rows) / total
        metric, filt = key.split(",")
        ses = [r.get(f"{metric}_stderr,{filt}") for r, _ in rows]
        ok = all(_number(se) for se in ses) and total > len(rows)
        out[f"{metric}_stderr,{filt}"] = pooled_stderr(ses, [n for _, n in rows]) if ok else N_A
    out["sample_count"] = {k: total for k in keys}
    return out


def _unit(task: str, lm: dict, lang: str) -> str:
    """The lm-eval name of one language of a task: its one subtask (belebele_deu_Latn), else the lm-eval
    group holding its subtasks (global_mmlu_de), else ``<task>_<language>`` (continuation_deu_Latn)."""
    subtasks = (lm.get("subtasks") or {}).get(lang) or []
    if len(subtasks) == 1:
        return subtasks[0]
    return (lm.get("groups") or {}).get(lang) or f"{lm.get('task', task)}_{lang}"


def _lm_eval_objects(task, lang: str) -> list:
    """The lm-eval task objects behind one language of a babelscope task (none for built-in tasks)."""
    return task.lm_eval_tasks(lang) if hasattr(task, "lm_eval_tasks") else []


def to_lm_eval(results: dict, tasks=()) -> dict:
    """lm-eval's aggregated results document for an eval's results.json; ``tasks``: the Task objects
    (lm-eval's own ``dump_config`` of their subtasks goes into ``configs``)."""
    by_name = {t.name: t for t in tasks}
    doc = {k: {} for k in ("results", "groups", "group_subtasks", "configs", "versions", "n-shot",
                           "higher_is_better", "n-samples")}
    doc[BABELSCOPE_KEY] = {}
    for task, per_lang in results["tasks"].items():
        info = results["task_info"][task]
        lm = info.get("lm_eval") or {}
        group = lm.get("task", task)
        doc[BABELSCOPE_KEY][group] = task
        rows = []
        for lang, values in per_lang.items():
            sub, n = _unit(task, lm, lang), int(values.get("n", 0))
            row = {"name": sub, "alias": sub, "sample_len": n, **_metrics(values, lm.get("metrics"))}
            doc["results"][sub] = row
            rows.append((row, n))
            built = _lm_eval_objects(by_name.get(task), lang)
            doc["configs"].update({t.config.task: t.dump_config() for t in built} or {sub: _config(sub, info)})
            doc["versions"].update(lm.get("versions") or {})
            doc["n-shot"].update(lm.get("n_shot") or {})
            doc["versions"].setdefault(sub, "0.0")
            doc["n-shot"].setdefault(sub, 0)
            doc["higher_is_better"][sub] = {k.split(",")[0]: k.split(",")[0] not in LOWER_IS_BETTER
                                            for k in row if k.endswith(f",{FILTER}") and "_stderr," not in k}
            doc["n-samples"][sub] = {"original": sum(len(t.eval_docs) for t in built) or n, "effective": n}
        if len(rows) > 1 or group not in doc["results"]:
            doc["results"][group] = doc["groups"][group] = _group(group, rows)
            doc["group_subtasks"][group] = [row["name"] for row, _ in rows]
            doc["versions"][group] = "0.0"
            doc["n-shot"][group] = 0
            doc["higher_is_better"][group] = doc["higher_is_better"][rows[0][0]["name"]]
    return {**doc, **_header(results)}


def _config(sub: str, info: dict) -> dict:
    """A built-in task's stand-in for lm-eval's task config."""
    return {"task": sub, "output_type": "multiple_choice" if info.get("kind") == "mc" else info.get("kind"),
            "description": info.get("description", ""), "metadata": {"version": 0.0, "source": "babelscope"}}


def _header(results: dict) -> dict:
    """``config`` and the run metadata lm-eval's tracker adds (what babelscope knows of them)."""
    environment = results.get("environment") or {}
    model = results.get("model") or {}
    cfg = results.get("config") or {}
    name = str(model.get("name") or "")
    return {
        "config": {"model": name, "model_args": cfg.get("model_args"), "model_dtype": environment.get("dtype"),
                   "model_revision": model.get("revision"), "batch_size": cfg.get("batch_size"), "batch_sizes": [],
                   "device": environment.get("device"), "use_cache": None, "limit": cfg.get("limit"),
                   "bootstrap_iters": 0, "gen_kwargs": None, "random_seed": cfg.get("seed"),
                   "numpy_seed": cfg.get("seed"), "torch_seed": cfg.get("seed"), "fewshot_seed": 1234},
        "git_hash": None, "date": _timestamp(results.get("started")),
        "transformers_version": environment.get("transformers"),
        "lm_eval_version": (environment.get("versions") or {}).get("lm_eval"), "upper_git_hash": None,
        "task_hashes": {},
        "model_source": "babelscope", "model_name": name, "model_name_sanitized": sanitize(name),
        "system_instruction": None, "system_instruction_sha": None, "fewshot_as_multiturn": False,
        "chat_template": None, "chat_template_sha": None,
        "total_evaluation_time_seconds": str(results.get("seconds", "")),
    }


def _timestamp(started) -> float:
    """lm-eval's ``date``: the start as a UNIX time (now when results.json has no start)."""
    try:
        return datetime.fromisoformat(str(started)).timestamp()
    except ValueError:
        return time.time()


def sanitize(model_name: str) -> str:
    """lm-eval's ``sanitize_model_name``."""
    import re

    return re.sub(r"[\"<>:/|\\?*\[\]]+", "__", model_name)


def file_name() -> str:
    """``results_<ISO time>.json`` as lm-eval's tracker names it (colons written as dashes)."""
    return f"results_{datetime.now().isoformat().replace(':', '-')}.json"


def tokenizer_info(loaded) -> dict:
    """lm-eval's ``add_tokenizer_info`` fields for a LoadedModel (max_length as lm-eval resolves it)."""
    from babelscope.measure.engine import _max_length

    tok = loaded.tokenizer
    out = {f"tokenizer_{k}_token": [str(getattr(tok, f"{k}_token", None)), str(getattr(tok, f"{k}_token_id", None))]
           for k in ("pad", "eos", "bos")}
    return {**out, "eot_token_id": tok.eos_token_id, "max_length": _max_length(loaded.model, tok)}


def write_lm_eval_results(run, tasks=(), loaded=None) -> Path:
    """``results_<time>.json`` in lm-eval's layout beside the run's results.json."""
    import json

    from babelscope.runs import dumps, redact

    doc = to_lm_eval(run.read_json("results.json"), tasks)
    if loaded is not None:
        doc.update(tokenizer_info(loaded))
    return run.write_json(file_name(), redact(json.loads(dumps(doc))))  # no home paths, as results.json
