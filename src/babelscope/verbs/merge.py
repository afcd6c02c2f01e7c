"""``babelscope merge RECIPE.yaml``: streaming model merges, layer swapping, mergekit interop.

The merged model goes to ``<output_path>/<name>/merge-<UTC>/model/``; results.json's ``model`` is
that folder. With ``evaluate`` every input and the merged model are evaluated on the same items
and results.json holds ``stages`` (e.g. task_expert, language_expert, merged) and
``before_after`` ``{task: {language: {stage: value}}}``::

    import babelscope as bs
    r = bs.merge(recipe="examples/layer_swap/recipe.yaml", evaluate=True, tasks="continuation",
                 languages="eng_Latn,deu_Latn", limit=8)
    r.to_frame()   # task, language, stage, value
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from babelscope import schema
from babelscope.errors import UsageError
from babelscope.improve.merge import merge, plan_merge, prepare
from babelscope.improve.merge.before_after import headline_table, model_labels
from babelscope.improve.merge.layer_swap import layers_from_json, to_mergekit_yaml
from babelscope.improve.merge.recipe import load_recipe
from babelscope.languages import resolve_many
from babelscope.measure.evaluate import evaluate
from babelscope.measure.tasks import get_tasks
from babelscope.models.identity import file_hash
from babelscope.models.load import load_model
from babelscope.runs import RunFolder, atomic_write_text
from babelscope.verbs import VerbSpec
from babelscope.verbs.common import bind_model, finish, seed_everything, start_run
from babelscope.verbs.config import OutputOptions, option
from babelscope.verbs.result import Result

DEFAULT_SHARD_SIZE = "2GB"  # output shard size; memory does not depend on it (streamed writes)
SIZE_UNITS = {"KB": 1000, "MB": 1000**2, "GB": 1000**3, "TB": 1000**4, "B": 1}
EVAL = "before/after evaluation"  # option group


@dataclass(kw_only=True)  # recipe is required, after the output options' defaults
class MergeConfig(OutputOptions):
    recipe: str = option(help="merge recipe YAML: mergekit's schema (models/slices, merge_method linear|"
                         "task_arithmetic|ties|passthrough) or babelscope's layer_swap / revert (see docs/merge.md); "
                         "model paths are local folders, relative to the recipe", positional=True, metavar="RECIPE")
    emit_mergekit_yaml: str | None = option(None, "also write the equivalent mergekit configuration to FILE "
                                            "(layer_swap and revert become linear slices), for running mergekit at "
                                            "cluster scale", metavar="FILE")
    dry_run: bool = option(False, "plan and check the merge (shapes, architectures, parameters) and write "
                           "--emit_mergekit_yaml, but merge nothing")
    layers: str = option("recipe", "layer_swap's bottom/top: as the recipe says, or `auto` from a layers.json "
                         "written by `babelscope layers` on the language expert", choices=("recipe", "auto"))
    layers_json: str | None = option(None, "layers.json (or the run folder holding it) for --layers auto "
                                     "(default: <language_expert>/layers.json)", metavar="PATH")
    shard_size: str = option(DEFAULT_SHARD_SIZE, "largest output shard, e.g. 500MB, 2GB")
    evaluate: bool = option(False, "evaluate every input model and the merged model on the same tasks, languages "
                            "and items, and write the comparison to results.json (stages, before_after)", group=EVAL)
    tasks: str | None = option(None, "comma-separated measure tasks for --evaluate", short="-t", group=EVAL)
    languages: str | None = option(None, "comma-separated languages for --evaluate, or `all`", short="-l",
                                   group=EVAL)
    batch_size: int = option(8, "batch size for --evaluate", short="-b", minimum=1, group=EVAL)
    device: str | None = option(None, "device for --evaluate: cpu, cuda, mps (default: cpu)", group=EVAL)
    limit: int | None = option(None, "at most this many items per language for --evaluate (for quick runs)",
                               short="-L", minimum=1, group=EVAL)
    source: str = option("builtin", "text source of the built-in tasks for --evaluate: builtin, a JSONL/CSV/TSV "
                         "file, or hf:<dataset>[:<config>][@<split>]", group=EVAL)

    def validate(self) -> None:
        super().validate()
        parse_size(self.shard_size)
        if self.evaluate and not (self.tasks and self.languages):
            raise UsageError("--evaluate needs --tasks and --languages (the items both models are measured on)")


def parse_size(text: str) -> int:
    """``"500MB"`` -> 500_000_000 (decimal units); a bare number is bytes."""
    t = str(text).strip().upper()
    for unit, mult in SIZE_UNITS.items():
        if t.endswith(unit) and t[: -len(unit)].replace(".", "", 1).isdigit():
            return int(float(t[: -len(unit)]) * mult)
    if t.isdigit():
        return int(t)
    raise UsageError(f"--shard_size {text!r} is not a size; write e.g. 500MB or 2GB")


def _auto_layers(raw: dict, config: MergeConfig, base_dir: Path) -> None:
    """``--layers auto``: bottom/top of the recipe from the language expert's layers.json."""
    if raw.get("merge_method") != "layer_swap":
        raise UsageError("--layers auto applies to merge_method: layer_swap only")
    lang = raw.get("language_expert")
    if not lang and not config.layers_json:
        raise UsageError("--layers auto needs language_expert: in the recipe or --layers_json")
    source = Path(config.layers_json) if config.layers_json else base_dir / lang / "layers.json"
    bottom, top = layers_from_json(source)
    raw["parameters"] = {**(raw.get("parameters") or {}), "bottom": bottom, "top": top}
    print(f"babelscope: --layers auto: bottom {bottom}, top {top} from {source}")


def _eval_languages(config: MergeConfig) -> list[str]:
    """The --evaluate languages, with the tasks checked in them before anything is merged."""
    if not config.evaluate:
        return []
    languages = resolve_many(config.languages)
    for task in get_tasks(config.tasks):
        task.load(languages, source=config.source, limit=1)
    return languages


def _evaluate_all(config: MergeConfig, models: dict[str, str], languages: list[str], run: RunFolder) -> dict:
    """Evaluate each model (label -> folder) into ``<run>/eval/<label>/``; the before/after payload."""
    settings = {"tasks": config.tasks, "languages": ",".join(languages), "limit": config.limit,
                "source": config.source, "batch_size": config.batch_size}
    results = {}
    for label, path in models.items():
        print(f"babelscope: evaluating {label} ({path})")
        loaded = load_model(path, device=config.device)
        sub = RunFolder(run.path / "eval" / label, verb="eval", config={"model": path, **settings},
                        languages=languages)
        sub.path.mkdir(parents=True, exist_ok=True)
        bind_model(sub, loaded)
        results[label] = evaluate(loaded, config.tasks, languages, limit=config.limit, source=config.source,
                                  batch_size=config.batch_size, run=sub).results
        del loaded
    table, metrics = headline_table(results)
    run.write_json("before_after.json", {"stages": list(models), "metrics": metrics, "before_after": table})
    return {**schema.before_after(table, stages=list(models)), "before_after_metric": metrics}


def run(config: MergeConfig) -> Result:
    raw = load_recipe(config.recipe)
    base_dir = Path(config.recipe).resolve().parent
    if config.layers == "auto":
        _auto_layers(raw, config, base_dir)
    recipe = prepare(raw, base_dir)
    plan = plan_merge(recipe)  # shapes, architectures and parameters checked before anything is written
    languages = _eval_languages(config)
    if config.emit_mergekit_yaml:
        atomic_write_text(config.emit_mergekit_yaml, to_mergekit_yaml(recipe))
        print(f"babelscope: wrote mergekit configuration {config.emit_mergekit_yaml}")
    if config.dry_run:
        summary = f"babelscope: plan OK: {len(plan.ops)} tensors, {len(plan.layer_sources)} layers"
        return Result("merge", {}, None, summary, 0, {"plan": plan})
    run = start_run(config, "merge", raw.get("name") or Path(config.recipe).stem)
    run.languages = languages
    seed_everything(config.seed)
    model_dir = run.path / "model"
    stats = merge(recipe, model_dir, shard_bytes=parse_size(config.shard_size))
    print(f"babelscope: merged model {model_dir} ({stats['tensors']} tensors, {stats['seconds']} s)")
    run.model = {"name": str(model_dir), "source": "folder", "revision": None, "file_hash": file_hash(model_dir)}
    payload = {"recipe": raw, "merge": stats}
    if config.evaluate:
        payload.update(_evaluate_all(config, model_labels(recipe, model_dir), languages, run))
    run.write_results(payload)
    run.write_readme(readme(raw, stats, payload))
    return finish("merge", run, f"babelscope: wrote {run.path / 'results.json'}", model=model_dir)


def readme(raw: dict, stats: dict, payload: dict) -> str:
    """The run folder's README: what was merged, and one before/after table per task."""
    lines = [f"# merge: {raw.get('merge_method')}", "",
             f"Merged model: `{stats['output']}` ({stats['layers']} layers, {stats['tensors']} tensors, "
             f"{stats['seconds']} s). Its own README.md states the sources and the layer map.", ""]
    stages = payload.get("stages", [])
    for task, by_lang in payload.get("before_after", {}).items():
        lines += [f"## Before / after: {task} ({payload['before_after_metric'].get(task)})", "",
                  "| language | " + " | ".join(stages) + " |", "|---|" + "---|" * len(stages)]
        lines += [f"| {lang} | " + " | ".join(_fmt(row.get(s)) for s in stages) + " |" for lang, row in by_lang.items()]
        lines.append("")
    return "\n".join(lines) + "\n"


def _fmt(v) -> str:
    return f"{v:.4f}" if isinstance(v, float) else str(v)


SPEC = VerbSpec(
    "merge", "improve", "merge models from a recipe: layer swap, linear, task arithmetic, TIES, revert",
    MergeConfig, run,
    description="Streams a merge tensor by tensor from safetensors to sharded safetensors (two whole models are "
    "never in memory). Accepts mergekit's recipe schema for linear, task_arithmetic, ties and passthrough, plus "
    "layer_swap (language expert's outer layers + task expert's middle) and revert. The merged model goes to "
    "<output_path>/<name>/merge-<UTC>/model/ with config, tokenizer, recipe and a card. Example: babelscope merge "
    "examples/layer_swap/recipe.yaml --output_path runs --emit_mergekit_yaml mergekit.yml",
)
