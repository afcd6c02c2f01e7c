"""``babelscope merge RECIPE.yaml``: streaming model merges, layer swapping, mergekit interop."""

from __future__ import annotations

import argparse

from babelscope.cli.common import Verb, add_limit_args, add_output_args, add_source_args

DEFAULT_SHARD_SIZE = "2GB"  # output shard size; memory does not depend on it (streamed writes)


def add_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument(
        "recipe",
        help="merge recipe YAML: mergekit's schema (models/slices, merge_method "
        "linear|task_arithmetic|ties|passthrough) or babelscope's layer_swap / revert "
        "(see docs/merge.md); model paths are local folders, relative to the recipe",
    )
    p.add_argument(
        "--emit_mergekit_yaml",
        default=None,
        metavar="FILE",
        help="also write the equivalent mergekit configuration to FILE (layer_swap and revert "
        "become linear slices), for running mergekit at cluster scale",
    )
    p.add_argument(
        "--dry_run",
        action="store_true",
        help="plan and check the merge (shapes, architectures, parameters) and write "
        "--emit_mergekit_yaml, but merge nothing",
    )
    p.add_argument(
        "--layers",
        choices=("recipe", "auto"),
        default="recipe",
        help="layer_swap's bottom/top: as the recipe says, or `auto` from a layers.json written by "
        "`babelscope layers` on the language expert (default: recipe)",
    )
    p.add_argument(
        "--layers_json",
        default=None,
        metavar="PATH",
        help="layers.json (or the run folder holding it) for --layers auto (default: <language_expert>/layers.json)",
    )
    p.add_argument(
        "--shard_size",
        default=DEFAULT_SHARD_SIZE,
        help=f"largest output shard, e.g. 500MB, 2GB (default: {DEFAULT_SHARD_SIZE})",
    )
    g = p.add_argument_group("before/after evaluation")
    g.add_argument(
        "--evaluate",
        action="store_true",
        help="evaluate every input model and the merged model on the same tasks, languages and "
        "items, and write the comparison to results.json (before_after)",
    )
    g.add_argument("--tasks", "-t", default=None, help="comma-separated measure tasks for --evaluate")
    g.add_argument("--languages", "-l", default=None, help="comma-separated languages for --evaluate, or `all`")
    g.add_argument("--batch_size", "-b", type=int, default=8, help="batch size for --evaluate (default: 8)")
    g.add_argument("--device", default=None, help="device for --evaluate: cpu, cuda, mps (default: cpu)")
    add_limit_args(p, "items per language for --evaluate")
    add_source_args(p)
    add_output_args(p)


def parse_size(text: str) -> int:
    from babelscope.errors import UsageError

    units = {"KB": 1000, "MB": 1000**2, "GB": 1000**3, "TB": 1000**4, "B": 1}
    t = str(text).strip().upper()
    for unit, mult in units.items():
        if t.endswith(unit) and t[: -len(unit)].replace(".", "", 1).isdigit():
            return int(float(t[: -len(unit)]) * mult)
    if t.isdigit():
        return int(t)
    raise UsageError(f"--shard_size {text!r} is not a size; write e.g. 500MB or 2GB")


def run(args: argparse.Namespace) -> int:
    from pathlib import Path

    from babelscope.errors import UsageError
    from babelscope.improve.layer_swap import layers_from_json, to_mergekit_yaml
    from babelscope.improve.merge import merge, plan_merge, prepare
    from babelscope.improve.merge_recipe import load_recipe
    from babelscope.runs import atomic_write_text

    raw = load_recipe(args.recipe)
    base_dir = Path(args.recipe).resolve().parent
    if args.evaluate and not (args.tasks and args.languages):
        raise UsageError("--evaluate needs --tasks and --languages (the items both models are measured on)")
    if args.layers == "auto":
        if raw.get("merge_method") != "layer_swap":
            raise UsageError("--layers auto applies to merge_method: layer_swap only")
        lang = raw.get("language_expert")
        if not lang and not args.layers_json:
            raise UsageError("--layers auto needs language_expert: in the recipe or --layers_json")
        source = Path(args.layers_json) if args.layers_json else base_dir / lang / "layers.json"
        bottom, top = layers_from_json(source)
        raw["parameters"] = {**(raw.get("parameters") or {}), "bottom": bottom, "top": top}
        print(f"babelscope: --layers auto: bottom {bottom}, top {top} from {source}")
    recipe = prepare(raw, base_dir)
    if args.emit_mergekit_yaml:
        atomic_write_text(args.emit_mergekit_yaml, to_mergekit_yaml(recipe))
        print(f"babelscope: wrote mergekit configuration {args.emit_mergekit_yaml}")
    if args.dry_run:
        plan = plan_merge(recipe)
        print(f"babelscope: plan OK: {len(plan.ops)} tensors, {len(plan.layer_sources)} layers")
        return 0
    name = raw.get("name") or Path(args.recipe).stem
    from babelscope.cli.common import start_run

    run_folder = start_run(args, "merge", name)
    model_dir = run_folder.path / "model"
    stats = merge(recipe, model_dir, shard_bytes=parse_size(args.shard_size))
    print(f"babelscope: merged model {model_dir} ({stats['tensors']} tensors, {stats['seconds']} s)")
    results = {"verb": "merge", "recipe": raw, "merge": stats}
    if args.evaluate:
        from babelscope.improve.merge_eval import before_after

        results.update(before_after(recipe, model_dir, args, run_folder))
    run_folder.write_results(results)
    run_folder.write_readme(_readme(raw, stats, results.get("before_after"), results.get("before_after_metric")))
    print(f"babelscope: wrote {run_folder.path / 'results.json'}")
    return 0


def _readme(raw: dict, stats: dict, before_after: dict | None, metric: str | None = None) -> str:
    lines = [
        f"# merge: {raw.get('merge_method')}",
        "",
        f"Merged model: `{stats['output']}` "
        f"({stats['layers']} layers, {stats['tensors']} tensors, {stats['seconds']} s). "
        "Its own README.md states the sources and the layer map.",
        "",
    ]
    if before_after:
        lines += [f"Metric: {metric}.", ""]
        models = sorted({m for row in before_after.values() for m in row})
        lines += ["## Before / after", "", "| language | " + " | ".join(models) + " |", "|---|" + "---|" * len(models)]
        for lang, row in before_after.items():
            lines.append(f"| {lang} | " + " | ".join(_fmt(row.get(m)) for m in models) + " |")
    return "\n".join(lines) + "\n"


def _fmt(v) -> str:
    return f"{v:.4f}" if isinstance(v, float) else str(v)


VERBS = [
    Verb(
        "merge",
        "improve",
        "merge models from a recipe: layer swap, linear, task arithmetic, TIES, revert",
        add_arguments,
        run,
        description="Streams a merge tensor by tensor from safetensors to sharded safetensors (two whole "
        "models are never in memory). Accepts mergekit's recipe schema for linear, "
        "task_arithmetic, ties and passthrough, plus layer_swap (language expert's outer "
        "layers + task expert's middle) and revert. The merged model goes to "
        "<output_path>/<name>/merge-<UTC>/model/ with config, tokenizer, recipe and a card."
        "\n\nExample:\n  babelscope merge examples/layer_swap/recipe.yaml --output_path runs "
        "--emit_mergekit_yaml mergekit.yml",
    )
]
