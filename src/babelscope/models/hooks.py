"""Hook sites with TransformerLens names, and a ``with hooks(model, {...})`` context.

Sites (per decoder layer ``i``):

==============================  ===========================================================
``blocks.{i}.attn.hook_z``       input of the attention output projection, [B, T, H * d];
                                 query head h owns the slice [h*d, (h+1)*d)
``blocks.{i}.hook_attn_out``     output of the attention output projection, [B, T, D]
``blocks.{i}.mlp.hook_pre``      gate output before the activation (gated), first half of a
                                 fused gate_up output, or fc1 output (ungated), [B, T, F]
``blocks.{i}.mlp.hook_pre_linear``  up-projection output (gated) or second half of gate_up
``blocks.{i}.mlp.hook_post``     input of the MLP down projection (activated width), [B, T, F]
``blocks.{i}.hook_mlp_out``      output of the MLP down projection, [B, T, D]
``blocks.{i}.hook_resid_post``   output hidden states of decoder layer i, [B, T, D]
==============================  ===========================================================

A hook function is ``fn(tensor, site) -> tensor | None``; returning a tensor replaces the
activation. Hooks are plain PyTorch hooks registered on entry and always removed on exit.
``add_hooks`` registers the same hooks until its handle's ``.remove()`` (an explicit, persistent
intervention such as a trained head mask; ``models.head_mask`` builds head masks on it).
"""

from __future__ import annotations

import re
from collections.abc import Callable, Iterator
from contextlib import contextmanager

import torch

from babelscope.errors import UsageError
from babelscope.models.adapters import Adapter, get_adapter

HookFn = Callable[..., object]
_SITE = re.compile(r"blocks\.(\d+)\.(attn\.hook_z|hook_attn_out|mlp\.hook_pre|mlp\.hook_pre_linear|"
                   r"mlp\.hook_post|hook_mlp_out|hook_resid_post)")
SITE_KINDS = ("attn.hook_z", "hook_attn_out", "mlp.hook_pre", "mlp.hook_pre_linear", "mlp.hook_post",
              "hook_mlp_out", "hook_resid_post")


def get_act_name(kind: str, layer: int) -> str:
    """``get_act_name("z", 3) -> "blocks.3.attn.hook_z"`` (TransformerLens shorthand accepted)."""
    short = {"z": "attn.hook_z", "attn_out": "hook_attn_out", "pre": "mlp.hook_pre",
             "pre_linear": "mlp.hook_pre_linear", "post": "mlp.hook_post", "mlp_out": "hook_mlp_out",
             "resid_post": "hook_resid_post"}
    return f"blocks.{layer}.{short.get(kind, kind)}"


def _replace_first_arg(fn, site):
    def pre_hook(module, args, kwargs):
        out = fn(args[0], site)
        if out is None:
            return None
        return (out, *args[1:]), kwargs

    return pre_hook


def _replace_output(fn, site, part=None):
    """Forward hook on a module output; ``part`` = 0/1 selects a half of a fused output."""

    def hook(module, args, output):
        tensor = output[0] if isinstance(output, tuple) else output
        if part is None:
            new = fn(tensor, site)
        else:
            half = tensor.shape[-1] // 2
            piece = tensor[..., :half] if part == 0 else tensor[..., half:]
            new = fn(piece, site)
            if new is not None:
                new = torch.cat([new, tensor[..., half:]] if part == 0 else [tensor[..., :half], new], -1)
        if new is None:
            return None
        return (new, *output[1:]) if isinstance(output, tuple) else new

    return hook


def parse_site(site: str, adapter: Adapter) -> tuple[int, str]:
    """``"blocks.3.attn.hook_z"`` -> ``(3, "attn.hook_z")``; raises on a name that does not resolve."""
    m = _SITE.fullmatch(site)
    if not m:
        raise UsageError(f"unknown hook site {site!r}; sites look like blocks.3.attn.hook_z "
                         f"(kinds: {', '.join(SITE_KINDS)}).")
    i, kind = int(m.group(1)), m.group(2)
    if not 0 <= i < adapter.n_layers:
        raise UsageError(f"hook site {site!r}: layer {i} is outside 0..{adapter.n_layers - 1}.")
    if kind == "mlp.hook_pre_linear" and adapter.mlp_kind == "ungated":
        raise UsageError(f"hook site {site!r}: {adapter.model_type} has no up projection.")
    return i, kind


def _register(adapter: Adapter, model, site: str, fn: HookFn):
    i, kind = parse_site(site, adapter)
    layer = adapter.layer(model, i)
    fused = adapter.mlp_kind == "fused"
    if kind == "attn.hook_z":
        return adapter.o_proj(layer).register_forward_pre_hook(_replace_first_arg(fn, site), with_kwargs=True)
    if kind == "hook_attn_out":
        return adapter.o_proj(layer).register_forward_hook(_replace_output(fn, site))
    if kind == "mlp.hook_pre":
        return adapter.gate(layer).register_forward_hook(_replace_output(fn, site, 0 if fused else None))
    if kind == "mlp.hook_pre_linear":
        module = adapter.gate(layer) if fused else adapter.up(layer)
        return module.register_forward_hook(_replace_output(fn, site, 1 if fused else None))
    if kind == "mlp.hook_post":
        return adapter.down(layer).register_forward_pre_hook(_replace_first_arg(fn, site), with_kwargs=True)
    if kind == "hook_mlp_out":
        return adapter.down(layer).register_forward_hook(_replace_output(fn, site))
    return layer.register_forward_hook(_replace_output(fn, site))  # hook_resid_post


class HookHandle:
    """Hooks registered by ``add_hooks``; ``.remove()`` takes them all off (calling it again is a no-op)."""

    def __init__(self, handles: list):
        self._handles = list(handles)

    @property
    def active(self) -> bool:
        return bool(self._handles)

    def remove(self) -> None:
        while self._handles:
            self._handles.pop().remove()


def add_hooks(model, fns: dict[str, HookFn | list[HookFn]], adapter: Adapter | None = None) -> HookHandle:
    """Register ``{site: fn or [fns]}`` until the returned handle's ``.remove()``.

    Every site is resolved before any hook is registered, so a bad name leaves the model clean.
    Prefer ``with hooks(...)`` for anything scoped; this is for explicit, persistent interventions.
    """
    model = getattr(model, "model", model) if hasattr(model, "adapter") else model  # LoadedModel
    adapter = adapter or get_adapter(model)
    for site in fns:
        parse_site(site, adapter)
    handle = HookHandle([])
    try:
        for site, fn in fns.items():
            for f in fn if isinstance(fn, (list, tuple)) else [fn]:
                handle._handles.append(_register(adapter, model, site, f))
    except BaseException:
        handle.remove()
        raise
    return handle


@contextmanager
def hooks(model, fns: dict[str, HookFn | list[HookFn]], adapter: Adapter | None = None) -> Iterator[None]:
    """Register ``{site: fn or [fns]}`` for the body of the ``with`` block; always removed.

    Every site is resolved before any hook is registered, so a bad name leaves the model clean.
    """
    handle = add_hooks(model, fns, adapter)
    try:
        yield
    finally:
        handle.remove()
