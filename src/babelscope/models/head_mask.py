"""Head masks at run time: multiply each attention head's slice of the o_proj input by a scalar.

A mask is ``[n_layers, n_heads]`` (or ``[B, n_layers, n_heads]`` per sample), indexed by query
head (GQA-aware, on the ``blocks.{i}.attn.hook_z`` site). Three ways to apply one, all through
the hooks of ``babelscope.models.hooks``::

    with hooks(model, head_mask_hooks(mask, adapter)): ...     # scoped, composable with other hooks
    with masked_heads(loaded, mask): ...                        # the same, shorter
    handle = apply_head_mask(loaded, "head_mask.safetensors")   # persistent until handle.remove()

``SoftHeadMask`` is the trained mask of the LAHIS paper (``babelscope mask`` trains it with
``improve.head_mask.train_mask``): a handful of values for selected heads, every other head at 1.
Its file is a tiny safetensors with ``heads`` (flat ids, layer * H + head) and ``values``; the
metadata holds the model geometry, languages and training settings. ``load_model(...,
head_mask=path)`` applies one persistently; the handle is kept in ``loaded.extras`` and
``remove_head_mask(loaded)`` (or ``handle.remove()``) takes it off.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import torch
from safetensors import safe_open
from safetensors.torch import save_file

from babelscope.errors import UsageError
from babelscope.models.adapters import Adapter, get_adapter
from babelscope.models.hooks import HookFn, HookHandle, add_hooks, get_act_name, hooks

METHOD = "lahis_soft_head_mask"  # the ``method`` metadata of a soft head mask file


def head_mask_hooks(mask, adapter: Adapter, layers=None) -> dict[str, HookFn]:
    """Hooks that multiply query head h of layer l by ``mask[l, h]`` on the o_proj input.

    ``mask``: [n_layers, n_heads] or [B, n_layers, n_heads] (a per-sample mask, e.g. for
    per-sample gradients). Gradients flow to ``mask`` when it requires grad. ``layers``: only
    these layers get a hook (default: all).
    """

    def make(layer: int):
        def fn(z, site):  # z: [B, T, H * d]
            b, t, _ = z.shape
            m = mask[layer] if mask.dim() == 2 else mask[:, layer]  # [H] or [B, H]
            m = m.to(z.dtype).reshape(1 if mask.dim() == 2 else b, 1, adapter.n_heads, 1)
            return (z.view(b, t, adapter.n_heads, adapter.head_dim) * m).view(b, t, -1)

        return fn

    chosen = range(adapter.n_layers) if layers is None else layers
    return {get_act_name("z", i): make(i) for i in chosen}


@contextmanager
def masked_heads(model, mask, adapter: Adapter | None = None) -> Iterator[None]:
    """Heads multiplied by ``mask`` for the body of the ``with`` block (``model``: a model or LoadedModel)."""
    adapter = adapter or getattr(model, "adapter", None) or get_adapter(model)
    with hooks(model, head_mask_hooks(mask, adapter), adapter=adapter):
        yield


class SoftHeadMask(torch.nn.Module):
    """``n`` trainable scalars for the flat head ids ``heads``; every other head stays at 1."""

    def __init__(self, n_layers: int, n_heads: int, heads: list[int], values: torch.Tensor | None = None):
        super().__init__()
        self.n_layers, self.n_heads = n_layers, n_heads
        if len(set(heads)) != len(heads) or any(not 0 <= h < n_layers * n_heads for h in heads):
            raise UsageError(f"head ids must be distinct and within 0..{n_layers * n_heads - 1}, got {heads}.")
        self.register_buffer("heads", torch.tensor(heads, dtype=torch.long))  # [n]
        init = torch.ones(len(heads)) if values is None else values.float().clone()  # [n]
        self.values = torch.nn.Parameter(init)

    def full(self) -> torch.Tensor:
        """The [L, H] mask: ones with the trainable values scattered in (differentiable)."""
        ones = torch.ones(self.n_layers * self.n_heads, device=self.values.device)  # [L*H]
        return ones.scatter(0, self.heads, self.values).view(self.n_layers, self.n_heads)  # [L, H]

    def layers(self) -> list[int]:
        """The layers that hold a selected head (the others are all ones)."""
        return sorted({int(h) // self.n_heads for h in self.heads})

    def save(self, path, metadata: dict | None = None) -> Path:
        path = Path(path)
        path.parent.mkdir(parents=True, exist_ok=True)
        meta = {"method": METHOD, "n_layers": str(self.n_layers), "n_heads": str(self.n_heads)}
        meta.update({k: v if isinstance(v, str) else json.dumps(v) for k, v in (metadata or {}).items()})
        tmp = path.with_name(f".{path.name}.tmp")
        save_file({"heads": self.heads.cpu(), "values": self.values.detach().float().cpu()}, str(tmp), metadata=meta)
        tmp.replace(path)
        return path

    @classmethod
    def load(cls, path) -> tuple[SoftHeadMask, dict]:
        path = Path(path)
        if not path.is_file():
            raise UsageError(f"head mask file {path} does not exist; `babelscope mask` writes head_mask.safetensors.")
        wrong = UsageError(f"{path} is not a babelscope soft head mask (written by `babelscope mask`).")
        try:
            with safe_open(str(path), framework="pt") as f:
                meta = dict(f.metadata() or {})
                if meta.get("method") != METHOD:
                    raise wrong
                heads, values = f.get_tensor("heads"), f.get_tensor("values")
        except UsageError:
            raise
        except Exception:  # safetensors raises its own error type on a file that is not safetensors
            raise wrong from None
        mask = cls(int(meta["n_layers"]), int(meta["n_heads"]), heads.tolist(), values)
        return mask, meta


# --------------------------------------------------------------------------- persistent application


def apply_head_mask(loaded, path_or_mask) -> HookHandle:
    """Multiply the model's heads by a saved soft mask from now on; returns the hooks' handle.

    Any mask applied before is removed first (masks never stack). The handle is also kept in
    ``loaded.extras["head_mask_handle"]`` (and the [L, H] mask in ``loaded.extras["head_mask"]``);
    ``handle.remove()`` or ``remove_head_mask(loaded)`` takes the mask off. Raises if the mask
    was made for another geometry.
    """
    mask = path_or_mask if isinstance(path_or_mask, SoftHeadMask) else SoftHeadMask.load(path_or_mask)[0]
    a = loaded.adapter
    if (mask.n_layers, mask.n_heads) != (a.n_layers, a.n_heads):
        raise UsageError(
            f"head mask is for {mask.n_layers} layers x {mask.n_heads} heads, but the model has "
            f"{a.n_layers} x {a.n_heads}; train a mask for this model with `babelscope mask`."
        )
    remove_head_mask(loaded)
    full = mask.full().detach().to(loaded.device)  # [L, H]
    handle = add_hooks(loaded.model, head_mask_hooks(full, a, mask.layers()), adapter=a)
    loaded.extras["head_mask_handle"] = handle
    loaded.extras["head_mask"] = full
    return handle


def remove_head_mask(loaded) -> None:
    """Remove the mask ``apply_head_mask`` put on (no-op when none)."""
    handle = loaded.extras.pop("head_mask_handle", None)
    if handle is not None:
        handle.remove()
    loaded.extras.pop("head_mask", None)
