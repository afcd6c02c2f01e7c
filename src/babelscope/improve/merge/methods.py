"""Tensor-level merge methods: one output tensor from k input tensors.

Each function takes the already-loaded input tensors of one output tensor (all the same shape)
and the parameters resolved for that tensor (see ``recipe.resolve``), and returns the merged
tensor. Arithmetic runs in float32 (float64 stays float64) and the result is cast back to the
input dtype, so fp32 merges agree with mergekit 0.1.5 to rounding.

Formulas (θ_i inputs, θ_b base, δ_i = θ_i − θ_b, w_i weights, λ = ``lambda``):

* ``passthrough``: θ = scale · θ_1 (exactly one input; no scale = the tensor unchanged).
* ``linear``: θ = Σ w_i θ_i / Σ w_i (``normalize: true``, the default) or Σ w_i θ_i.
* ``task_arithmetic``: θ = θ_b + λ Σ w_i δ_i (divided by Σ w_i when ``normalize: true``).
* ``ties`` (Yadav et al. 2023): trim each δ_i to its top ``density`` fraction by magnitude
  (ties at the threshold all kept),
  weight it, elect the sign of Σ_i w_i δ_i per entry (zero counts as +), keep only the weighted
  deltas that agree with the elected sign, and add their sum divided by the weights that agreed
  (``normalize: true``, the default) times λ to θ_b.

``layer_swap`` and ``revert`` are layer/module selections, not tensor arithmetic: they are
expanded into ``linear`` slices by ``babelscope.improve.merge.layer_swap``.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field

import torch

from babelscope.errors import UsageError


@dataclass(frozen=True, kw_only=True)
class MethodSpec:
    """What a method needs: its per-input and shared parameters with their defaults (built by keyword)."""

    name: str
    fn: Callable  # fn(tensors, base_index, per-input params, shared params) -> merged tensor
    input_params: dict = field(default_factory=dict)  # name -> default (REQUIRED: none); per input tensor
    shared_params: dict = field(default_factory=dict)  # name -> default; per output tensor
    needs_base: bool = False  # the base model must be one of the inputs of every slice
    max_inputs: int | None = None  # passthrough takes exactly one
    base_gets_input_params: bool = True  # linear weights the base like any input; task methods do not


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


def trim_threshold(delta: torch.Tensor, density: float) -> float | None:
    """The smallest |delta| kept when keeping the ``max(1, int(density * numel))`` largest.

    Entries equal to the threshold are all kept, so exact ties there may keep a few more than k
    (mergekit keeps an arbitrary subset of the ties). None: keep everything; inf: keep nothing.
    """
    if density >= 1:
        return None
    if density <= 0 or delta.numel() == 0:
        return float("inf")
    k = max(1, int(density * delta.numel()))
    magnitude = delta.abs().reshape(-1)  # [numel]
    return magnitude.kthvalue(magnitude.numel() - k + 1).values.item()


def _non_base(tensors, base_index, inputs):
    return [(t, p) for i, (t, p) in enumerate(zip(tensors, inputs)) if i != base_index]


def task_arithmetic(tensors, base_index, inputs, shared) -> torch.Tensor:
    base = tensors[base_index]
    others = _non_base(tensors, base_index, inputs)
    if not others:
        return base
    dtype = _compute_dtype(base)
    mixed = torch.zeros_like(base, dtype=dtype)  # [*shape]
    for tensor, params in others:
        mixed.add_(tensor.to(dtype) - base.to(dtype), alpha=float(params["weight"]))
    total = sum(float(p["weight"]) for _, p in others)
    if shared["normalize"] and abs(total) >= 1e-8:
        mixed.div_(total)
    return (base.to(dtype) + float(shared["lambda"]) * mixed).to(base.dtype)


TIES_CHUNK = 1 << 20  # entries per step: TIES is elementwise once the trim thresholds are known


def ties(tensors, base_index, inputs, shared) -> torch.Tensor:
    base = tensors[base_index]
    others = _non_base(tensors, base_index, inputs)
    if not others:
        return base
    dtype = _compute_dtype(base)
    flat_base = base.reshape(-1)  # [numel]
    flats = [t.reshape(-1) for t, _ in others]  # k x [numel]
    weights = torch.tensor([float(p["weight"]) for _, p in others], dtype=dtype)  # [k]
    thresholds = [trim_threshold(t.to(dtype) - base.to(dtype), float(p["density"])) for t, p in others]
    out = torch.empty(flat_base.shape, dtype=dtype)  # [numel]
    for start in range(0, flat_base.numel(), TIES_CHUNK):
        b = flat_base[start : start + TIES_CHUNK].to(dtype)  # [c]
        deltas = []
        for flat, w, thr in zip(flats, weights, thresholds):
            d = flat[start : start + TIES_CHUNK].to(dtype) - b  # [c]
            if thr is not None:
                d = d * (d.abs() >= thr).to(dtype)
            deltas.append(d * w)
        stacked = torch.stack(deltas)  # [k, c] weighted, trimmed deltas
        elected = torch.where(stacked.sum(0) >= 0, 1.0, -1.0).to(dtype)  # [c]
        agree = (stacked.sign() == elected).to(dtype)  # [k, c]
        mixed = (stacked * agree).sum(0)  # [c]
        if shared["normalize"]:
            divisor = (weights[:, None] * agree).sum(0)  # [c]
            divisor[divisor == 0] = 1
            mixed = mixed / divisor
        out[start : start + TIES_CHUNK] = b + float(shared["lambda"]) * mixed
    return out.reshape(base.shape).to(base.dtype)


METHODS = {
    spec.name: spec
    for spec in (
        MethodSpec(name="passthrough", fn=passthrough, input_params={"scale": None}, max_inputs=1),
        MethodSpec(name="linear", fn=linear, input_params={"weight": REQUIRED}, shared_params={"normalize": True}),
        MethodSpec(
            name="task_arithmetic",
            fn=task_arithmetic,
            input_params={"weight": REQUIRED},
            shared_params={"normalize": False, "lambda": 1.0},
            needs_base=True,
            base_gets_input_params=False,
        ),
        MethodSpec(
            name="ties",
            fn=ties,
            input_params={"weight": REQUIRED, "density": 1.0},
            shared_params={"normalize": True, "lambda": 1.0},
            needs_base=True,
            base_gets_input_params=False,
        ),
    )
}
RECIPE_METHODS = ("layer_swap", "revert")  # expanded into linear slices before execution


def get_method(name: str) -> MethodSpec:
    if name in METHODS:
        return METHODS[name]
    known = ", ".join([*METHODS, *RECIPE_METHODS])
    raise UsageError(f"unknown merge_method {name!r}; babelscope merges with one of: {known}")
