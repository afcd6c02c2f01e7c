"""Best-effort reader for run folders of the previous layout (results.json without ``schema_version``).

The report reads only what ``babelscope.schema`` names: the envelope (``verb``, ``model``,
``languages``, ``config``) and one before/after shape (``stages`` + ``before_after``
``{task: {language: {stage: value}}}``). ``upgrade(results, config)`` rewrites an old results.json
into that shape once, when the folder is read; every guess about old key names lives here and
nowhere else. To convert a folder for good, re-run the verb with its ``config.yaml``
(``babelscope VERB --config RUN/config.yaml``).
"""

from __future__ import annotations

import math
import re

OLD_TABLES = ("before_after_tasks", "before_after_by_task", "before_after")  # finetune, merge: first present wins
_CODE = re.compile(r"^[a-z]{3}_[A-Z][a-z]{3}$")  # a FLORES-200 code: the old tables had no task level
NOT_STAGES = ("delta",)  # old finetune stored the change beside the stages


def upgrade(results: dict, config: dict) -> dict:
    """An old-layout results.json as the current schema: envelope keys and ``stages``/``before_after``."""
    out = {k: v for k, v in results.items() if k not in (*OLD_TABLES, "before", "after", "model", "languages")}
    out["verb"] = str(config.get("verb") or results.get("verb") or _guess_verb(results))
    out["model"] = {"name": _model_name(results, config)} if _model_name(results, config) else None
    out["languages"] = _languages(results, config)
    out["config"] = {k: v for k, v in config.items() if k != "verb"}
    table = _old_before_after(results)
    if table:
        stages: list[str] = []
        for by_lang in table.values():
            for per in by_lang.values():
                stages += [s for s in per if s not in stages and s not in NOT_STAGES]
        out["stages"] = stages
        out["before_after"] = {t: {lang: {s: per.get(s) for s in stages} for lang, per in by_lang.items()}
                               for t, by_lang in table.items()}
    return out


def _guess_verb(results: dict) -> str:
    return "eval" if "tasks" in results and "task_info" in results else "run"  # merge --evaluate's own evals


def _model_name(results: dict, config: dict) -> str | None:
    for key in ("model", "model_name"):
        if isinstance(results.get(key), str):
            return results[key]
    for part in str(config.get("model_args") or "").split(","):
        if part.strip().startswith("pretrained="):
            return part.split("=", 1)[1]
    return None


def _languages(results: dict, config: dict) -> list[str]:
    langs = results.get("languages")
    if isinstance(langs, dict):  # old finetune: {"training": [...], "evaluated": [...]}
        langs = langs.get("evaluated") or langs.get("training")
    if not isinstance(langs, list):
        langs = config.get("languages")
    if isinstance(langs, str):
        langs = langs.split(",")
    return [str(x).strip() for x in langs] if isinstance(langs, list) else []


def _old_before_after(results: dict) -> dict:
    """``{task: {language: {stage: number}}}`` from the old layouts (empty when there is none)."""
    for key in OLD_TABLES:
        found = results.get(key)
        if isinstance(found, dict) and found:
            if any(_CODE.match(str(k)) for k in found):  # {language: {stage: x}}: one table
                name = results.get("before_after_metric") or results.get("metric") or "result"
                found = {str(name): found}
            return {t: {lang: _numbers(per) for lang, per in by_lang.items() if isinstance(per, dict)}
                    for t, by_lang in found.items() if isinstance(by_lang, dict)}
    before, after = results.get("before"), results.get("after")  # old mask: {task: {language: x}} twice
    if isinstance(before, dict) and isinstance(after, dict):
        return {t: {lang: {"before": x, "after": (after.get(t) or {}).get(lang)} for lang, x in by_lang.items()}
                for t, by_lang in before.items() if isinstance(by_lang, dict)}
    return {}


def _numbers(per: dict) -> dict:
    return {k: v for k, v in per.items()
            if isinstance(v, (int, float)) and not isinstance(v, bool) and math.isfinite(float(v))}
