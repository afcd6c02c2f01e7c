"""lm-eval's ``results_<time>.json`` (lm-eval's own output folders, or the one ``eval
--write_lm_eval_results`` writes) read as an eval run: subtasks whose names carry a language
(``belebele_deu_Latn``, ``xnli_de``; a group of one language's subtasks such as ``global_mmlu_de``
counts as one) become the languages of their group, named ``lm_eval-<group>`` as ``--tasks
lm_eval:<group>`` names it (``lm_eval-global_mmlu_*`` for groups that are one language each);
entries without a language are left out.
"""

from __future__ import annotations

import json
import math
from pathlib import Path

from babelscope.languages import split_task_name
from babelscope.schema import envelope

FILTER = "none"  # lm-eval's filter name for unfiltered metrics ("acc,none"), as measure.lm_eval_results writes
BABELSCOPE_KEY = "babelscope"  # written by measure.lm_eval_results: {lm-eval group: babelscope task}


def latest_file(folder) -> Path | None:
    """The newest ``results_*.json`` in ``folder`` (lm-eval's time stamps sort by name)."""
    files = sorted(Path(folder).glob("results_*.json"))
    return files[-1] if files else None


def _number(v) -> bool:
    return isinstance(v, (int, float)) and not isinstance(v, bool) and math.isfinite(v)


def _row(doc: dict, sub: str, row: dict) -> dict:
    """``{"acc,none": v, "acc_stderr,none": se}`` -> ``{"acc": v, "acc_stderr": se, "n": ...}``."""
    out = {"n": row.get("sample_len") or ((doc.get("n-samples") or {}).get(sub) or {}).get("effective")}
    for key, value in row.items():
        if "," in key and _number(value):
            metric, filt = key.split(",", 1)
            out[metric if filt == FILTER else f"{filt}_{metric}"] = value
    return out


def _units(doc: dict) -> list[str]:
    """The entries that stand for one language each: groups whose subtasks all share their language
    (global_mmlu_de), and the subtasks outside such groups (belebele_deu_Latn)."""
    group_subtasks = doc.get("group_subtasks") or {}
    units, covered = [], set()
    for group, subs in group_subtasks.items():
        lang = split_task_name(group)[0]
        if lang and subs and all(split_task_name(sub)[0] == lang for sub in subs):
            units.append(group)
            covered.update(subs)
    return units + [name for name in doc.get("results") or {}
                    if name not in group_subtasks and name not in covered and name not in units]


def per_language(doc: dict) -> dict[str, dict[str, dict]]:
    """``{task: {language: {metric: value}}}`` of an lm-eval results document."""
    names = doc.get(BABELSCOPE_KEY) or {}
    parent = {sub: g for g, subs in (doc.get("group_subtasks") or {}).items() for sub in subs}
    tasks: dict[str, dict] = {}
    for unit in _units(doc):
        lang, family = split_task_name(unit)
        row = (doc.get("results") or {}).get(unit) or (doc.get("groups") or {}).get(unit)
        if lang is None or not isinstance(row, dict):
            continue
        top = parent.get(unit)
        task = names.get(top or unit) or f"lm_eval-{top or family}"
        tasks.setdefault(task, {})[lang] = _row(doc, unit, row)
    return tasks


def _means(rows: dict[str, dict]) -> tuple[dict, dict]:
    """(macro, micro) means of every metric over the languages, as babelscope's eval writes them."""
    keys = {k for m in rows.values() for k, v in m.items() if _number(v) and k != "n" and not k.endswith("_stderr")}
    macro, micro = {}, {}
    for key in sorted(keys):
        pairs = [(m[key], m.get("n") or 0) for m in rows.values() if _number(m.get(key))]
        macro[key] = sum(v for v, _ in pairs) / len(pairs)
        micro[key] = sum(v * n for v, n in pairs) / max(sum(n for _, n in pairs), 1)
    macro["n_languages"] = len(rows)
    micro["n"] = sum(m.get("n") or 0 for m in rows.values())
    return macro, micro


def read(path) -> dict:
    """An eval results.json (envelope and payload) from an lm-eval results file."""
    doc = json.loads(Path(path).read_text(encoding="utf-8"))
    tasks = per_language(doc)
    info, macro, micro = {}, {}, {}
    for task, rows in tasks.items():
        metrics = [k for k in next(iter(rows.values())) if k != "n" and not k.endswith("_stderr")]
        head = "acc" if "acc" in metrics else (metrics[0] if metrics else "n")
        info[task] = {"kind": "mc" if head.startswith("acc") else "generate", "headline": head,
                      "description": f"read from lm-eval results {Path(path).name}"}
        macro[task], micro[task] = _means(rows)
    cfg = doc.get("config") or {}
    env = {"transformers": doc.get("transformers_version"), "versions": {"lm_eval": doc.get("lm_eval_version")}}
    out = envelope("eval", model={"name": doc.get("model_name") or cfg.get("model") or Path(path).parent.name},
                   languages=sorted({lang for rows in tasks.values() for lang in rows}),
                   config={"tasks": list(tasks), "limit": cfg.get("limit"), "source": "lm-eval results"},
                   environment=env, started="", seconds=float(doc.get("total_evaluation_time_seconds") or 0))
    return {**out, "tasks": tasks, "task_info": info, "macro": macro, "micro": micro, "consistency": {},
            "headline": {t: {"metric": info[t]["headline"], "macro": macro[t].get(info[t]["headline"]),
                             "micro": micro[t].get(info[t]["headline"])} for t in tasks}}
