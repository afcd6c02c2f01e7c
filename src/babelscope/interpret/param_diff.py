"""Where fine-tuning changed a model: per-layer parameter change of an expert against its base, and how
much two experts' most-changed parameters overlap.

Layer swapping (Bandarkar et al., ICLR 2025) takes the language expert's bottom and top layers because
language fine-tuning changes those most, while the math expert changes the middle; the follow-up finds
the two experts' most-changed parameters barely overlap. This measures both from the weight files,
tensor by tensor (never two whole models in memory)::

    change[i]  = ||W_expert - W_base||_F / ||W_base||_F   over all tensors of decoder layer i
    top(T)     = the top_rate share of entries of T with the largest |W_expert - W_base|
    overlap[i] = |top_a ∩ top_b| / |top_a|                 over the tensors of layer i (two experts)

The recommendation for layer swapping (babelscope's rule, the paper picked by hand): the bottom and
top runs of layers whose change is at least the median change.
"""

from __future__ import annotations

import json
import math
import re
from pathlib import Path

import torch
from safetensors import safe_open

from babelscope.errors import UsageError
from babelscope.models.adapters import ARCHITECTURES

TOP_RATE = 0.05  # share of each tensor's entries counted as "most changed"


def weight_files(folder) -> dict[str, Path]:
    """{tensor name: safetensors file} of a model folder (sharded or not)."""
    folder = Path(folder).expanduser()
    files = sorted(folder.glob("*.safetensors"))
    if not files:
        raise UsageError(f"{folder} holds no *.safetensors weights; --diff compares local safetensors models.")
    out = {}
    for path in files:
        with safe_open(str(path), framework="pt") as f:
            out.update({name: path for name in f.keys()})
    return out


def layer_prefix(folder) -> str:
    """The decoder-layer list's state-dict prefix (``model.layers``) from the folder's config.json."""
    config = Path(folder).expanduser() / "config.json"
    try:
        model_type = json.loads(config.read_text(encoding="utf-8"))["model_type"]
    except (OSError, ValueError, KeyError):
        raise UsageError(f"{config} is missing or names no model_type; pass a Hugging Face model folder.") from None
    if model_type not in ARCHITECTURES:
        raise UsageError(f"{folder}: model_type {model_type!r} has no adapter entry (babelscope ls architectures).")
    return ARCHITECTURES[model_type].layers


def _tensor(files: dict[str, Path], name: str) -> torch.Tensor:
    with safe_open(str(files[name]), framework="pt") as f:
        return f.get_tensor(name).double()


def _top(delta: torch.Tensor, rate: float) -> torch.Tensor:
    """Flat indices of the ``rate`` share of entries with the largest |delta| (at least one)."""
    k = max(1, round(rate * delta.numel()))
    return delta.abs().flatten().topk(k).indices


def layer_change(base, expert, other=None, top_rate: float = TOP_RATE) -> dict:
    """Per-layer relative change of ``expert`` (and of ``other``) against ``base``; with ``other``, the
    overlap of the two experts' most-changed entries per layer."""
    prefix = re.compile(re.escape(layer_prefix(base)) + r"\.(\d+)\.")
    names = {"base": weight_files(base), "expert": weight_files(expert), **({"other": weight_files(other)} if other
                                                                            else {})}
    shared = sorted(set(names["base"]).intersection(*map(set, names.values())))
    if not shared:
        raise UsageError(f"{base} and {expert} share no tensor names; are they the same architecture?")
    sums: dict = {}
    for name in shared:
        m = prefix.match(name)
        layer = int(m.group(1)) if m else "other"
        w = _tensor(names["base"], name)
        deltas = {who: _tensor(names[who], name) - w for who in names if who != "base"}
        if any(d.shape != w.shape for d in deltas.values()):
            raise UsageError(f"tensor {name} differs in shape between {base} and an expert.")
        s = sums.setdefault(layer, {"base": 0.0, "expert": 0.0, "other": 0.0, "shared": 0, "counted": 0})
        s["base"] += float(w.pow(2).sum())
        for who, d in deltas.items():
            s[who] += float(d.pow(2).sum())
        if "other" in deltas:
            a, b = _top(deltas["expert"], top_rate), _top(deltas["other"], top_rate)
            s["shared"] += int(torch.isin(a, b).sum())
            s["counted"] += a.numel()
    return _summary(sums, other is not None, top_rate)


def _summary(sums: dict, two: bool, top_rate: float) -> dict:
    layers = sorted(k for k in sums if k != "other")

    def rel(s, who):
        return math.sqrt(s[who]) / math.sqrt(s["base"]) if s["base"] > 0 else None

    out = {"layers": layers, "top_rate": top_rate, "change": [rel(sums[i], "expert") for i in layers],
           "outside_layers": rel(sums["other"], "expert") if "other" in sums else None}
    if two:
        out["change_other"] = [rel(sums[i], "other") for i in layers]
        out["overlap"] = [sums[i]["shared"] / sums[i]["counted"] if sums[i]["counted"] else None for i in layers]
    return out


def recommend_swap(change: list[float]) -> dict:
    """Bottom and top counts for layer swapping: the leading and trailing runs of layers changed at
    least as much as the median layer."""
    ordered = sorted(change)
    median = ordered[len(ordered) // 2]
    high = [c >= median for c in change]
    bottom = next((i for i, h in enumerate(high) if not h), len(high))
    top = next((i for i, h in enumerate(reversed(high)) if not h), len(high))
    return {"bottom": bottom, "top": top if bottom < len(high) else 0, "median_change": median}
