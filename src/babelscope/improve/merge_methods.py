"""Tensor-level merge methods: one output tensor from k input tensors.

Each function takes the already-loaded input tensors of one output tensor (all the same shape)
and the parameters resolved for that tensor (see ``merge_recipe.resolve``), and returns the merged
tensor. Arithmetic runs in float32 (float64 stays float64) and the result is cast back to the
input dtype, so fp32 merges agree with mergekit 0.1.5 to rounding.

Formulas (θ_i inputs, θ_b base, δ_i = θ_i − θ_b, w_i weights, λ = ``lambda``):

* ``passthrough``: θ = scale · θ_1 (exactly one input; no scale = the tensor unchanged).
* ``linear``: θ = Σ w_i θ_i / Σ w_i (``normalize: true``, the default) or Σ w_i θ_i.
* ``task_arithmetic``: θ = θ_b + λ Σ w_i δ_i (divided by Σ w_i when ``normalize: true``).
* ``ties`` (Yadav et al. 2023): trim each δ_i to its top ``density`` fraction by magnitude,
  weight it, elect the sign of Σ_i w_i δ_i per entry (zero counts as +), keep only the weighted
  deltas that agree with the elected sign, and add their sum divided by the weights that agreed
  (``normalize: true``, the default) times λ to θ_b.

``layer_swap`` and ``revert`` are layer/module selections, not tensor arithmetic: they are
expanded into ``linear`` slices by ``babelscope.improve.layer_swap``.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import torch

from babelscope.errors import UsageError


@dataclass(frozen=True)
class MethodSpec:
    """What a method needs: its per-input and shared parameters with their defaults."""

    name: str
    fn: Callable
    needs_base: bool  # the base model must be one of the inputs of every slice
    max_inputs: int | None  # passthrough takes exactly one
    input_params: dict  # name -> default (REQUIRED: no default); resolved per input tensor
    shared_params: dict  # name -> default; resolved per output tensor
    base_gets_input_params: bool  # linear weights the base like any input; task methods do not


REQUIRED = object()  # marks a per-input parameter without a default (mergekit raises too)


def _compute_dtype(t: torch.Tensor) -> torch.dtype:
    return torch.float64 if t.dtype == torch.float64 else torch.float32


def passthrough(tensors: list[torch.Tensor], base_index, inputs, shared) -> torch.Tensor:
    scale = inputs[0].get("scale")
    return tensors[0] if scale is None else (tensors[0] * scale).to(tensors[0].dtype)


def linear(tensors: list[torch.Tensor], base_index, inputs, shared) -> torch.Tensor:
    dtype = _compute_dtype(tensors[0])
    out = torch.zeros_like(tensors[0], dtype=dtype)  # [*shape]
    for tensor, params in zip(tensors, inputs):
        out.add_(tensor.to(dtype), alpha=float(params["weight"]))
    if shared["normalize"]:
        out.div_(sum(float(p["weight"]) for p in inputs))
    return out.to(tensors[0].dtype)


def magnitude_trim(delta: torch.Tensor, density: float) -> torch.Tensor:
    """Keep the ``max(1, int(density * numel))`` largest-magnitude entries of ``delta``."""
    if density >= 1:
        return delta
    if density <= 0 or delta.numel() == 0:
        return torch.zeros_like(delta)
    k = max(1, int(density * delta.numel()))
    keep = delta.abs().reshape(-1).topk(k).indices  # [k]
    mask = torch.zeros(delta.numel(), dtype=delta.dtype)
    mask[keep] = 1
    return delta * mask.reshape(delta.shape)


def _task_vectors(tensors, base_index, inputs, trim: bool):
    """Weighted deltas [k, *shape] and weights [k] of the non-base inputs."""
    base = tensors[base_index]
    dtype = _compute_dtype(base)
    deltas, weights = [], []
    for i, (tensor, params) in enumerate(zip(tensors, inputs)):
        if i == base_index:
            continue
        delta = tensor.to(dtype) - base.to(dtype)  # [*shape]
        if trim:
            delta = magnitude_trim(delta, float(params["density"]))
        w = float(params["weight"])
        deltas.append(delta * w)
        weights.append(w)
    return base, dtype, deltas, weights


def task_arithmetic(tensors, base_index, inputs, shared) -> torch.Tensor:
    base, dtype, deltas, weights = _task_vectors(tensors, base_index, inputs, trim=False)
    if not deltas:
        return base
    mixed = torch.stack(deltas).sum(0)  # [*shape]
    total = sum(weights)
    if shared["normalize"] and abs(total) >= 1e-8:
        mixed = mixed / total
    return (base.to(dtype) + float(shared["lambda"]) * mixed).to(base.dtype)


def ties(tensors, base_index, inputs, shared) -> torch.Tensor:
    base, dtype, deltas, weights = _task_vectors(tensors, base_index, inputs, trim=True)
    if not deltas:
        return base
    stacked = torch.stack(deltas)  # [k, *shape] weighted, trimmed deltas
    elected = torch.where(stacked.sum(0) >= 0, 1.0, -1.0).to(dtype)  # [*shape]
    agree = (stacked.sign() == elected).to(dtype)  # [k, *shape]
    mixed = (stacked * agree).sum(0)  # [*shape]
    if shared["normalize"]:
        w = torch.tensor(weights, dtype=dtype).reshape(-1, *([1] * base.dim()))  # [k, 1...]
        divisor = (w * agree).sum(0)  # [*shape]
        divisor[divisor == 0] = 1
        mixed = mixed / divisor
    return (base.to(dtype) + float(shared["lambda"]) * mixed).to(base.dtype)


METHODS = {
    "passthrough": MethodSpec("passthrough", passthrough, False, 1, {"scale": None}, {}, True),
    "linear": MethodSpec("linear", linear, False, None, {"weight": REQUIRED}, {"normalize": True}, True),
    "task_arithmetic": MethodSpec(
        "task_arithmetic",
        task_arithmetic,
        True,
        None,
        {"weight": REQUIRED},
        {"normalize": False, "lambda": 1.0},
        False,
    ),
    "ties": MethodSpec(
        "ties",
        ties,
        True,
        None,
        {"weight": REQUIRED, "density": 1.0},
        {"normalize": True, "lambda": 1.0},
        False,
    ),
}
RECIPE_METHODS = ("layer_swap", "revert")  # expanded into linear slices before execution


def get_method(name: str) -> MethodSpec:
    if name in METHODS:
        return METHODS[name]
    known = ", ".join([*METHODS, *RECIPE_METHODS])
    raise UsageError(f"unknown merge_method {name!r}; babelscope merges with one of: {known}")
