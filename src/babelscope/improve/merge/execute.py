"""Merge execution: one tensor at a time from a ``MergePlan`` into sharded safetensors.

Memory: the executor holds the inputs of one output tensor and its result, nothing else; the
writer appends each result to a shard whose header it wrote in advance. Peak memory is about
(k + 1) x the largest tensor for k input models.

    from babelscope.improve.merge import merge
    merge({"merge_method": "linear", "models": [...]}, "out/merged")
"""

from __future__ import annotations

import json
import shutil
import time
from pathlib import Path

import yaml
from tqdm.auto import tqdm

from babelscope.errors import UsageError
from babelscope.improve.merge import layer_swap
from babelscope.improve.merge.io import DEFAULT_SHARD_BYTES, StreamingShardWriter, dtype_from_name
from babelscope.improve.merge.methods import get_method
from babelscope.improve.merge.plan import MergePlan, TensorOp, plan_merge, prepare
from babelscope.improve.merge.recipe import Recipe

TOKENIZER_FILES = (
    "tokenizer.json",
    "tokenizer_config.json",
    "special_tokens_map.json",
    "tokenizer.model",
    "vocab.json",
    "merges.txt",
    "added_tokens.json",
    "chat_template.jinja",
    "chat_template.json",
    "generation_config.json",
)



def execute(plan: MergePlan, out_dir: Path, shard_bytes: int = DEFAULT_SHARD_BYTES) -> dict:
    """Compute and write every tensor of the plan; returns byte and tensor counts."""
    spec = get_method(plan.recipe.merge_method)
    in_dtype = dtype_from_name(plan.recipe.dtype)
    writer = StreamingShardWriter(out_dir, [(o.out_name, o.shape, o.dtype) for o in plan.ops], shard_bytes)
    for op in tqdm(plan.ops, desc="merge", unit="tensor", mininterval=1.0):
        keep = _needed_inputs(spec.name, op)
        tensors = [plan.models[m].read(n, in_dtype) for j, (m, n) in enumerate(op.inputs) if j in keep]
        per_input = [p for j, p in enumerate(op.per_input) if j in keep]
        base_index = keep.index(op.base_index) if op.base_index is not None else None
        if not tensors[0].is_floating_point():
            result = tensors[0]  # integer buffers are copied from the first source
        else:
            result = spec.fn(tensors, base_index, per_input, op.shared)
        writer.write(op.out_name, result.to(op.dtype))
        del tensors, result
    files = writer.finish()
    return {"tensors": len(plan.ops), "bytes": writer.total_bytes, "files": [f.name for f in files]}


def _needed_inputs(method: str, op: TensorOp) -> list[int]:
    """Inputs that change the result: linear skips zero-weight sources (exactly the same sum)."""
    everything = list(range(len(op.inputs)))
    if method != "linear":
        return everything
    nonzero = [j for j in everything if float(op.per_input[j]["weight"]) != 0.0]
    return nonzero or everything


def write_config_and_tokenizer(plan: MergePlan, out_dir: Path) -> None:
    """config.json from the config source with the new layer count/dtype; tokenizer files copied."""
    src = plan.models[plan.config_source]
    config = json.loads(json.dumps(src.config))
    target = config.get("text_config", config) if "text_config" in config else config
    target["num_hidden_layers"] = len(plan.layer_sources)
    types = target.get("layer_types")
    if isinstance(types, list):
        target["layer_types"] = [
            plan.models[m].config.get("text_config", plan.models[m].config)["layer_types"][i]
            for m, i, _ in (layer[0] for layer in plan.layer_sources)
        ]
    dtype = plan.recipe.out_dtype or plan.recipe.dtype
    if dtype:
        name = str(dtype_from_name(dtype)).removeprefix("torch.")
        config["dtype"] = name
        if "torch_dtype" in config:
            config["torch_dtype"] = name
    (out_dir / "config.json").write_text(json.dumps(config, indent=2) + "\n")
    tok_src = plan.recipe.tokenizer_source
    if tok_src == "base" and not plan.recipe.base_model:
        raise UsageError("tokenizer_source: base needs base_model: in the recipe")
    tok_dir = Path(plan.recipe.base_model if tok_src == "base" else tok_src or plan.config_source)
    copied = [f for f in TOKENIZER_FILES if (tok_dir / f).is_file()]
    for f in copied:
        shutil.copyfile(tok_dir / f, out_dir / f)
    if not any(f.startswith("tokenizer") for f in copied):
        plan.recipe.notes.append(f"no tokenizer found in {tok_dir}; none was copied")


def merge(
    recipe: dict | Recipe,
    out_dir: str | Path,
    shard_bytes: int = DEFAULT_SHARD_BYTES,
    base_dir: Path | None = None,
) -> dict:
    """Merge as the recipe says into ``out_dir`` (a model folder); returns a summary dict."""
    started = time.perf_counter()
    if isinstance(recipe, dict):
        recipe = prepare(recipe, base_dir)
    out_dir = Path(out_dir)
    plan = plan_merge(recipe)
    out_dir.mkdir(parents=True, exist_ok=True)
    stats = execute(plan, out_dir, shard_bytes)
    write_config_and_tokenizer(plan, out_dir)
    (out_dir / "merge_recipe.yaml").write_text(yaml.safe_dump(recipe.raw, sort_keys=False))
    (out_dir / "mergekit_config.yml").write_text(layer_swap.to_mergekit_yaml(recipe))
    (out_dir / "README.md").write_text(model_card(plan))
    stats.update(
        method=recipe.raw.get("merge_method"),
        executed_as=recipe.merge_method,
        layers=len(plan.layer_sources),
        seconds=round(time.perf_counter() - started, 3),
        output=str(out_dir),
    )
    return stats


def model_card(plan: MergePlan) -> str:
    r = plan.recipe
    lines = [f"# {r.name or 'merged model'}", "", "Made with `babelscope merge`.", ""]
    lines.append(f"- method: `{r.raw.get('merge_method')}` (executed as `{r.merge_method}` slices)")
    lines += [f"- source: `{m}`" for m in r.referenced_models()]
    lines.append(f"- config from: `{plan.config_source}`")
    lines += [f"- {note}" for note in r.notes]
    lines += ["", "## Layers", "", "| output layer | from (model: layer x weight) |", "|---|---|"]
    for i, srcs in enumerate(plan.layer_sources):
        used = [(m, j, w) for m, j, w in srcs if w != 0]  # zero-weight sources are not read
        cells = [f"{Path(m).name}: {j}" + ("" if w in (None, 1) else f" x {w:g}") for m, j, w in used]
        lines.append(f"| {i} | " + ", ".join(cells) + " |")
    lines += ["", "## Recipe", "", "```yaml", yaml.safe_dump(r.raw, sort_keys=False).rstrip(), "```", ""]
    return "\n".join(lines)
