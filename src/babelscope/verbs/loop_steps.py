"""The steps of ``babelscope loop``: which verbs run, in which order, with which config objects.

Every step's config is built from the loop's settings, the loop's defaults for that step (sized so the
default model's loop fits 30 minutes on 2 CPU cores) and a YAML plan's ``steps: {step: {option: value}}``;
the wiring (model, languages, where the folder goes, earlier steps' folders) always wins. Every
evaluation (baseline, ablations, after) uses the same tasks, source and limit, so the same held-out items.
"""

from __future__ import annotations

import sys
from pathlib import Path

import torch
import yaml

from babelscope.errors import UsageError
from babelscope.interpret.agreement import specific_neuron_ids
from babelscope.interpret.deactivation import deactivation_hooks
from babelscope.languages import REFERENCE
from babelscope.measure.evaluate import evaluate
from babelscope.measure.tasks import get_tasks
from babelscope.models.head_mask import SoftHeadMask
from babelscope.models.hooks import add_hooks
from babelscope.models.load import EMBEDDED, embedded_folder
from babelscope.runs import RunFolder, atomic_write_text
from babelscope.verbs import spec
from babelscope.verbs.common import bind_model, finish, seed_everything, start_run

STEP_VERBS = {"baseline": "eval", "heads": "heads", "neurons": "neurons", "layers": "layers",
              "ablate_heads": "eval", "deactivate_neurons": "eval", "finetune": "finetune", "mask": "mask",
              "merge": "merge", "after_finetune": "eval", "after": "eval", "heads_after": "heads",
              "neurons_after": "neurons"}
PLAN_KEYS = {"baseline": "eval", "ablate_heads": "eval", "deactivate_neurons": "eval", "after_finetune": "eval",
             "after": "eval", "heads_after": "heads", "neurons_after": "neurons"}  # shared plan entry (the step's
# own entry, e.g. steps.heads_after, adds to it)
STEP_DEFAULTS = {  # sized for the default model on 2 CPU cores (docs/loop.md has the timings)
    "heads": {"num_items": 16, "max_length": 128},
    "neurons": {"max_tokens": 512},
    "layers": {"lens_positions": 16},
    "finetune": {"max_steps": 30, "eval_limit": 16, "max_length": 64, "checkpoint_every": 10},  # resumable
    "mask": {"train_limit": 16, "eval_limit": 16, "epochs": 1},
}
ABLATION_MASK = "specific_heads_zeroed.safetensors"  # written into the loop folder
MERGE_WEIGHT = 0.5  # the fine-tuned model's share in the merge (the base has the rest)


def plan(config) -> list[str]:
    """The step names of this loop, in order."""
    steps = ["baseline", "heads", "neurons", "layers"]
    steps += ["ablate_heads", "deactivate_neurons"] if config.ablate else []
    steps += {"finetune": ["finetune"], "mask": ["mask"], "merge": ["finetune", "merge", "after_finetune"]}[
        config.improve]
    steps.append("after")
    return steps + (["heads_after", "neurons_after"] if config.reinterpret else [])


def check_plan(steps: dict) -> None:
    """A YAML plan's ``steps``: known step names, and options their verbs have (before anything runs)."""
    keys = {**STEP_VERBS, "eval": "eval"}  # `eval` applies to every evaluation step
    unknown = sorted(set(steps) - set(keys))
    if unknown:
        raise UsageError(f"steps: unknown step(s) {', '.join(unknown)}; known: {', '.join(keys)}.")
    for name, values in steps.items():
        if not isinstance(values, dict):
            raise UsageError(f"steps.{name} must be a mapping of {keys[name]} options, not {values!r}.")
        config = spec(keys[name]).config
        known = {f.name for f in config.fields()} | set(config.RENAMED)
        wrong = sorted(k for k in values if k.replace("-", "_") not in known)
        if wrong:
            raise UsageError(f"steps.{name}: unknown option(s) {', '.join(wrong)} of `babelscope {keys[name]}`; "
                             f"see babelscope {keys[name]} --help.")


def interpretation_languages(languages: list[str]) -> list[str]:
    """The layer analysis compares against English: the heads, neurons and layers steps all include it."""
    return languages if REFERENCE in languages else [REFERENCE, *languages]


def _config(name: str, config, wiring: dict):
    """The step's config object: loop defaults < the plan's ``steps`` entry < the wiring."""
    verb = STEP_VERBS[name]
    key = PLAN_KEYS.get(name, name)
    given = config.steps or {}
    values = {**STEP_DEFAULTS.get(key, {}), **given.get(key, {}), **(given.get(name, {}) if name != key else {}),
              **wiring}
    if "run_name" not in wiring:
        values["run_name"] = name
    return spec(verb).config.from_mapping(values, source=f"loop step {name}", verb=verb)


def _model(config, model: str | None = None, extra_args: str = "") -> dict:
    args = ",".join(a for a in (config.model_args, extra_args) if a)
    return {"model": model or config.model, "model_args": args, "device": config.device,
            "batch_size": config.batch_size, "trust_remote_code": config.trust_remote_code, "seed": config.seed}


def _eval(name: str, config, root: Path, model: str | None = None, extra_args: str = ""):
    languages = config.language_list()
    return _config(name, config, {**_model(config, model, extra_args), "tasks": config.tasks, "source": config.source,
                                  "languages": ",".join(languages), "limit": config.limit,
                                  "reference": config.reference(languages), "output_path": str(root)})


def _improved(config, done: dict) -> tuple[str | None, str]:
    """(model, extra model_args) of the improved model."""
    if config.improve == "mask":
        return None, f"head_mask={done['mask'] / 'head_mask.safetensors'}"
    return str(done["merge" if config.improve == "merge" else "finetune"] / "model"), ""


def build_step(name: str, config, root: Path, done: dict) -> tuple[str, object]:
    """(verb, config object) of step ``name``; the config is None when the step has nothing to do."""
    verb = STEP_VERBS[name]
    interp = ",".join(interpretation_languages(config.language_list()))
    text = {"languages": interp, "source": config.source, "output_path": str(root)}
    if name in ("baseline", "deactivate_neurons"):
        if name == "deactivate_neurons" and not any(specific_neuron_ids(_neurons(done["neurons"])).values()):
            return verb, _skip(name, "no language-specific neurons")
        return verb, _eval(name, config, root)
    if name == "ablate_heads":
        mask = ablation_mask(root, done["heads"])
        return verb, (_eval(name, config, root, extra_args=f"head_mask={mask}") if mask
                      else _skip(name, "no language-specific heads"))
    if name in ("heads", "neurons"):
        return verb, _config(name, config, {**_model(config), **text})
    if name == "layers":
        return verb, _config(name, config, {**_model(config), **text, "neurons_run": str(done["neurons"])})
    if name in ("heads_after", "neurons_after"):
        model, extra = _improved(config, done)
        return verb, _config(name, config, {**_model(config, model, extra), **text})
    if name == "finetune":
        return verb, _config(name, config, {
            **_model(config), "languages": ",".join(config.language_list()), "data": f"parallel:{config.source}",
            "eval_source": config.source, "eval_languages": ",".join(config.language_list()),
            "layers": "auto", "layers_json": str(done["layers"]), "method": "full", "no_save": False,
            "output_path": str(root)})
    if name == "mask":
        return verb, _config(name, config, {**_model(config), "languages": ",".join(config.language_list()),
                                            "source": config.source, "scores": str(done["heads"]),
                                            "output_path": str(root)})
    if name == "merge":
        recipe = merge_recipe(config, root, done)
        return verb, _config(name, config, {"recipe": str(recipe), "output_path": str(root), "seed": config.seed})
    if name == "after_finetune":
        return verb, _eval(name, config, root, model=str(done["finetune"] / "model"))
    model, extra = _improved(config, done)
    return verb, _eval(name, config, root, model=model, extra_args=extra)


def _skip(name: str, why: str) -> None:
    print(f"babelscope: loop step {name} skipped: {why}", file=sys.stderr, flush=True)
    return None


def _neurons(run_path: Path) -> dict:
    return RunFolder.open(run_path).read_json("neurons.json")["neurons"]


def ablation_mask(root: Path, heads_run: Path) -> Path | None:
    """A head mask file with every loop language's specific heads at 0 (None when there are none)."""
    results = RunFolder.open(heads_run).read_json("results.json")
    heads = sorted({h for ids in results["specific"].values() for h in ids})
    if not heads:
        return None
    path = root / ABLATION_MASK
    if path.is_file() and SoftHeadMask.load(path)[0].heads.tolist() == heads:
        return path  # kept as it is: a resumed loop's ablate_heads step compares the file's hash
    mask = SoftHeadMask(results["n_layers"], results["n_heads"], heads, values=torch.zeros(len(heads)))
    return mask.save(path, {"selection": "specific heads of every language, zeroed"})


def merge_recipe(config, root: Path, done: dict) -> Path:
    """A linear merge (mergekit's ``linear``) of the base and the fine-tuned model, weighted MERGE_WEIGHT for
    the fine-tuned one: only the layers the finetune step trained differ, and their update is scaled by it."""
    recipe = {"name": "loop-merge", "merge_method": "linear", "dtype": "float32",
              "models": [{"model": base_folder(config), "parameters": {"weight": 1.0 - MERGE_WEIGHT}},
                         {"model": str(done["finetune"] / "model"), "parameters": {"weight": MERGE_WEIGHT}}]}
    return atomic_write_text(root / "merge_recipe.yaml", yaml.safe_dump(recipe, sort_keys=False))


def base_folder(config) -> str:
    """The base model as a local folder (an embedded model: its converted safetensors folder)."""
    name = config.model_name
    return str(embedded_folder(name)) if name in EMBEDDED else str(Path(name).expanduser())


def deactivated_eval(config, neurons_run: Path):
    """The eval verb's run with every loop language's specific neurons zeroed (down_proj input) throughout;
    intervention.json in its folder says which."""
    ids = specific_neuron_ids(_neurons(neurons_run))
    per_layer: dict[int, list[int]] = {}
    for layers in ids.values():
        for layer, neurons in layers.items():
            per_layer.setdefault(layer, []).extend(neurons)
    tasks, languages = get_tasks(config.tasks), config.language_list()
    run = start_run(config, "eval")
    run.languages = languages
    seed_everything(config.seed)
    loaded = config.load()
    bind_model(run, loaded, config.model_spec().get("revision"))
    run.write_json("intervention.json", {"kind": "neuron deactivation", "neurons_run": str(neurons_run),
                                         "neurons": {str(k): sorted(v) for k, v in sorted(per_layer.items())}})
    handle = add_hooks(loaded, deactivation_hooks(per_layer))
    try:
        evaluate(loaded, tasks, languages, limit=config.limit, source=config.source, batch_size=config.batch_size,
                 run=run, engine=config.engine, reference=config.reference)
    finally:
        handle.remove()
    if not (run.path / "results.json").is_file():
        raise UsageError(f"the neuron deactivation evaluation wrote no results.json in {run.path}.")
    return finish("eval", run)
