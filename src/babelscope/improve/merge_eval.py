"""Before/after: the merge's inputs and the merged model measured on the same items and languages.

Each model is evaluated with ``babelscope.measure.evaluate`` (same tasks, languages, ``limit`` and
source, so the same items) into ``<run>/eval/<label>/``; the comparison of each task's headline
metric goes to results.json:

    "before_after": {language: {model_label: metric}}          # the first task's headline metric
    "before_after_metric": "<task>/<metric>"
    "before_after_by_task": {task: {language: {model_label: metric}}}
"""

from __future__ import annotations

from pathlib import Path

from babelscope.improve.merge_recipe import Recipe


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


def before_after(recipe: Recipe, merged: Path, args, run_folder) -> dict:
    """Evaluate every input and the merged model; write per-model evals; return the comparison."""
    from babelscope.measure.evaluate import evaluate
    from babelscope.models.load import load_model
    from babelscope.runs import RunFolder

    tasks = [t.strip() for t in args.tasks.split(",") if t.strip()]
    by_task: dict[str, dict[str, dict[str, float]]] = {}
    headline = {}
    for label, path in model_labels(recipe, merged).items():
        print(f"babelscope: evaluating {label} ({path})")
        loaded = load_model(path, device=args.device)
        sub = RunFolder(run_folder.path / "eval" / label)
        sub.path.mkdir(parents=True, exist_ok=True)
        result = evaluate(
            loaded, tasks, args.languages, limit=args.limit, source=args.source, batch_size=args.batch_size, run=sub
        )
        for task, per_lang in result.results["tasks"].items():
            metric = result.results["task_info"][task]["headline"]
            headline[task] = metric
            for lang, metrics in per_lang.items():
                by_task.setdefault(task, {}).setdefault(lang, {})[label] = metrics.get(metric)
        del loaded
    first = next(iter(by_task), None)
    run_folder.write_json(
        "before_after.json",
        {"metric": f"{first}/{headline.get(first)}", "by_task": by_task},
    )
    return {
        "before_after": by_task.get(first, {}),
        "before_after_metric": f"{first}/{headline.get(first)}",
        "before_after_by_task": by_task,
    }
