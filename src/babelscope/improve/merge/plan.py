"""Merge planning: recipe -> one ``TensorOp`` per output tensor, before any tensor is read.

The planner follows mergekit 0.1.5's layout rules so that the same recipe gives the same
tensors: embeddings ("pre" weights) come from the first slice's sources, the decoder layers from
each slice in turn (renumbered consecutively), the final norm and ``lm_head`` ("post" weights)
from the last slice's sources. Layer tensors are addressed by exact index. ``layer_swap`` and
``revert`` recipes are expanded into ``linear`` slices first (``prepare``).
"""

from __future__ import annotations

import copy
from dataclasses import dataclass
from pathlib import Path

import torch

from babelscope.errors import ModelLoadError, UnsupportedArchitectureError, UsageError
from babelscope.improve.merge import layer_swap
from babelscope.improve.merge.io import LayerLayout, ModelFiles, dtype_from_name, resolve_layers
from babelscope.improve.merge.methods import get_method
from babelscope.improve.merge.recipe import Recipe, Slice, Source, parse_recipe, resolve


@dataclass
class TensorOp:
    """How one output tensor is made."""

    out_name: str
    inputs: list[tuple[str, str]]  # (model path, input tensor name)
    base_index: int | None
    shared: dict
    per_input: list[dict]
    shape: tuple[int, ...]
    dtype: torch.dtype  # output dtype


@dataclass
class MergePlan:
    recipe: Recipe
    ops: list[TensorOp]
    layer_sources: list[list[tuple[str, int, float | None]]]  # out layer -> [(model, layer, weight)]
    config_source: str
    models: dict[str, ModelFiles]


def prepare(raw: dict, base_dir: Path | None = None) -> Recipe:
    """Parse a recipe dict, resolve model paths and expand layer_swap/revert into slices."""
    raw = copy.deepcopy(raw)
    if raw.get("tokenizer_source") not in (None, "base", "union"):
        raw["tokenizer_source"] = _model_path(raw["tokenizer_source"], base_dir)
    for key in ("base_model", "task_expert", "language_expert", "model"):
        if isinstance(raw.get(key), str):
            raw[key] = _model_path(raw[key], base_dir)
    for m in raw.get("models") or []:
        if isinstance(m, dict) and "model" in m:
            m["model"] = _model_path(m["model"], base_dir)
    for sl in raw.get("slices") or []:
        for s in sl.get("sources", []):
            s["model"] = _model_path(s["model"], base_dir)
    recipe = parse_recipe(raw)
    if recipe.merge_method == "layer_swap":
        return layer_swap.expand_layer_swap(recipe, _num_layers)
    if recipe.merge_method == "revert":
        return layer_swap.expand_revert(recipe, _num_layers)
    return recipe


def _model_path(ref: str, base_dir: Path | None) -> str:
    for candidate in (Path(ref), (base_dir or Path.cwd()) / ref):
        if (candidate / "config.json").is_file():
            return str(candidate.resolve())
    raise ModelLoadError(
        f"model {ref!r} is not a local folder with config.json; merge reads local safetensors "
        "checkpoints (download or save_pretrained the model first)"
    )


def _num_layers(path: str) -> int:
    return ModelFiles(path).num_layers()


def plan_merge(recipe: Recipe) -> MergePlan:
    spec = get_method(recipe.merge_method)
    models = {m: ModelFiles(m) for m in recipe.referenced_models()}
    config_source = recipe.config_source or recipe.base_model or recipe.referenced_models()[0]
    layout = resolve_layers(models[config_source])
    _check_same_architecture(models, config_source)
    slices = _normalized_slices(recipe, models)
    in_dtype = dtype_from_name(recipe.dtype)
    out_dtype = dtype_from_name(recipe.out_dtype) or in_dtype
    ops: list[TensorOp] = []

    def add(sl: Slice, out_name: str, in_names: list[str], t: float, optional: bool) -> None:
        present = [models[s.model].has(n) for s, n in zip(sl.sources, in_names)]
        if optional and not any(present):
            return  # e.g. lm_head of tied-embedding models
        for s, n, ok in zip(sl.sources, in_names, present):
            if not ok:
                raise UnsupportedArchitectureError(
                    f"tensor {n} is missing from {s.model}; the models' architectures differ"
                )
        shapes = [models[s.model].shape(n) for s, n in zip(sl.sources, in_names)]
        for s, n, shape in zip(sl.sources, in_names, shapes):
            if shape != shapes[0]:
                raise UnsupportedArchitectureError(
                    f"tensor {n} differs in shape: {shape} in {s.model} vs {shapes[0]} in "
                    f"{sl.sources[0].model}; merged models must share an architecture"
                )
        base_index = _base_index(spec, recipe, sl)
        shared, per_input = resolve(spec, recipe, sl, out_name, in_names, base_index, t)
        first = sl.sources[base_index or 0]
        dtype = out_dtype or in_dtype or models[first.model].dtype(in_names[base_index or 0])
        inputs = [(s.model, n) for s, n in zip(sl.sources, in_names)]
        ops.append(TensorOp(out_name, inputs, base_index, shared, per_input, shapes[0], dtype))

    for name in layout.pre:
        add(slices[0], name, [name] * len(slices[0].sources), 0.0, optional=True)
    layer_sources: list[list[tuple[str, int, float | None]]] = []
    for sl in slices:
        n = _slice_length(sl)
        for k in range(n):
            t = k / (n - 1) if n > 1 else 1.0
            src_layers = [s.layer_range[0] + k for s in sl.sources]
            suffixes = _layer_suffixes(models, layout, sl, src_layers)
            out_index = len(layer_sources)
            for suffix in suffixes:
                in_names = [layout.layer_name(i, suffix) for i in src_layers]
                add(sl, layout.layer_name(out_index, suffix), in_names, t, optional=False)
            weights = [p.get("weight") for p in ops[-1].per_input] if suffixes else [None] * len(src_layers)
            layer_sources.append([(s.model, i, w) for s, i, w in zip(sl.sources, src_layers, weights)])
    for name in layout.post:
        add(slices[-1], name, [name] * len(slices[-1].sources), 0.0, optional=True)
    return MergePlan(recipe, ops, layer_sources, config_source, models)


def _normalized_slices(recipe: Recipe, models: dict[str, ModelFiles]) -> list[Slice]:
    if recipe.slices is not None:
        slices = recipe.slices
    else:
        sources = [Source(s.model, (0, models[s.model].num_layers()), s.parameters) for s in recipe.models]
        if recipe.base_model and recipe.base_model not in [s.model for s in sources]:
            sources.append(Source(recipe.base_model, (0, models[recipe.base_model].num_layers())))
        slices = [Slice(sources)]
    for i, sl in enumerate(slices):
        if len({s.model for s in sl.sources}) != len(sl.sources):
            raise UsageError(f"slices[{i}] names the same model twice; give each model once")
        for s in sl.sources:
            if s.layer_range[1] > models[s.model].num_layers():
                raise UsageError(
                    f"slices[{i}]: layer_range {list(s.layer_range)} exceeds the "
                    f"{models[s.model].num_layers()} layers of {s.model}"
                )
        spec = get_method(recipe.merge_method)
        if spec.max_inputs is not None and len(sl.sources) > spec.max_inputs:
            raise UsageError(f"{spec.name} takes one source per slice; slices[{i}] has {len(sl.sources)}")
    return slices


def _slice_length(sl: Slice) -> int:
    lengths = {s.layer_range[1] - s.layer_range[0] for s in sl.sources}
    if len(lengths) != 1:
        raise UsageError(f"all sources of a slice must span the same number of layers, got {sorted(lengths)}")
    return lengths.pop()


def _base_index(spec, recipe: Recipe, sl: Slice) -> int | None:
    base = sl.base_model or recipe.base_model
    names = [s.model for s in sl.sources]
    if spec.needs_base:
        if base is None:
            raise UsageError(f"{spec.name} needs base_model: (the model the experts were tuned from)")
        if base not in names:
            raise UsageError(f"{spec.name}: base_model {base} must be one of the sources of every slice")
    return names.index(base) if base in names else None


def _layer_suffixes(models, layout: LayerLayout, sl: Slice, src_layers: list[int]) -> list[str]:
    """Tensor suffixes of one layer, checked to agree across the slice's sources."""
    per_source = []
    for s, i in zip(sl.sources, src_layers):
        prefix = f"{layout.prefix}.{i}."
        per_source.append([n[len(prefix) :] for n in models[s.model].names if n.startswith(prefix)])
    first = per_source[0]
    for s, i, suffixes in zip(sl.sources, src_layers, per_source):
        missing = [x for x in first if x not in suffixes] + [x for x in suffixes if x not in first]
        if missing:
            raise UnsupportedArchitectureError(
                f"tensor {layout.layer_name(i, missing[0])} is in one model of the slice but not "
                f"the other ({s.model}); the models' architectures differ"
            )
    return first


def _check_same_architecture(models: dict[str, ModelFiles], reference: str) -> None:
    ref = models[reference]
    ref_type = ref.config.get("model_type")
    for path, m in models.items():
        if m.config.get("model_type") != ref_type:
            names = sorted(set(ref.names) | set(m.names))
            differs = (n for n in names if not (ref.has(n) and m.has(n)) or ref.shape(n) != m.shape(n))
            first = next(differs, None)
            raise UnsupportedArchitectureError(
                f"{path} is model_type {m.config.get('model_type')!r} but {reference} is "
                f"{ref_type!r}; first differing tensor: {first or '(none; the configs differ)'}"
            )
