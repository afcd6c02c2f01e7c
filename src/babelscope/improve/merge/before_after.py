"""Before/after: the merge's inputs and the merged model measured on the same items and languages.

``babelscope merge --evaluate`` evaluates each model (same tasks, languages, ``limit`` and source, so
the same items); the labels here name them (and are the stages of results.json's before/after
table), and ``headline_table`` compares each task's headline metric::

    {task: {language: {model_label: value}}}      # labels e.g. task_expert, language_expert, merged
"""

from __future__ import annotations

from pathlib import Path

from babelscope.improve.merge.recipe import Recipe


def model_labels(recipe: Recipe, merged: Path) -> dict[str, str]:
    """label -> model folder; experts keep their role names for layer_swap and revert."""
    raw = recipe.raw
    roles = {"task_expert": "task_expert", "language_expert": "language_expert", "model": "finetuned"}
    labels = {label: raw[key] for key, label in roles.items() if isinstance(raw.get(key), str)}
    if recipe.base_model:
        labels.setdefault("base", recipe.base_model)
    for path in recipe.referenced_models():
        if path not in labels.values():
            labels[Path(path).name] = path
    labels["merged"] = str(merged)
    return labels


def headline_table(results: dict[str, dict]) -> tuple[dict, dict]:
    """Eval results.json documents by model label -> ``{task: {language: {label: headline value}}}`` (the
    before/after table, labels in the order given) and ``{task: headline metric}``."""
    table: dict[str, dict[str, dict[str, float | None]]] = {}
    metrics: dict[str, str] = {}
    for label, res in results.items():
        for task, per_lang in res["tasks"].items():
            metric = metrics.setdefault(task, res["task_info"][task]["headline"])
            for lang, values in per_lang.items():
                table.setdefault(task, {}).setdefault(lang, {})[label] = values.get(metric)
    return table, metrics
