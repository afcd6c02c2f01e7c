"""Layer-targeted finetuning (PLAST, Fan et al. 2025) and reverting (modular finetuning,
Bandarkar & Peng 2025): choose decoder layers, make only them trainable (``full``) or put LoRA
adapters only on them (``lora``, PEFT ``layers_to_transform``), and after training set chosen
layers back to the base weights.

Layer selection is by exact index: layer ``i`` owns the parameters whose name starts with
``adapter.layer_prefix(i)`` (``model.layers.3.``), so layer 1 never matches layer 10. A range
outside the model or a selection that matches nothing raises a one-line error naming the
valid range (the PEFT lesson: silent "matched nothing" selections waste whole runs).

    loaded = load_model("default")
    layers = parse_layers("0-3,16-17", loaded.adapter.n_layers)
    share = freeze_except(loaded, layers)          # {"trainable": ..., "total": ..., "share": ...}
    base = snapshot_layers(loaded.model, loaded.adapter, [16, 17])
    ...train...
    revert_layers(loaded.model, loaded.adapter, [16, 17], base)
"""

from __future__ import annotations

import json
import re
from pathlib import Path

from babelscope.errors import UsageError
from babelscope.runs import sanitize

METHODS = ("full", "lora")  # full: selected layers trainable; lora: PEFT adapters on selected layers
DEFAULT_LORA_R = 16  # LoRA rank
DEFAULT_LORA_ALPHA = 32  # LoRA scaling numerator (scale = alpha / r)
LORA_TARGETS = (
    "q_proj",
    "k_proj",
    "v_proj",
    "o_proj",
    "gate_proj",
    "up_proj",
    "down_proj",
    "c_attn",
    "c_proj",
    "c_fc",
    "qkv_proj",
    "gate_up_proj",
)  # projection names across families


# ----------------------------------------------------------------------------- selection


def parse_layers(spec, n_layers: int) -> list[int]:
    """``"0-3,16,17"`` / ``"all"`` / a list -> sorted unique indices; out of range -> UsageError."""
    valid = f"valid layers are 0-{n_layers - 1}"
    if isinstance(spec, (list, tuple)):
        parts = [str(x) for x in spec]
    elif str(spec).strip().lower() == "all":
        return list(range(n_layers))
    else:
        parts = [p for p in re.split(r"[,\s]+", str(spec).strip()) if p]
    out: set[int] = set()
    for part in parts:
        m = re.fullmatch(r"(-?\d+)(?:-(\d+))?", part)
        if not m:
            raise UsageError(f"layer selection {part!r} is not an index or a range like 0-3; {valid}.")
        lo = int(m.group(1))
        hi = int(m.group(2)) if m.group(2) is not None else lo
        if lo > hi:
            raise UsageError(f"layer range {part!r} runs backwards; write it low-high; {valid}.")
        if lo < 0 or hi >= n_layers:
            raise UsageError(f"layer selection {part!r} is outside this model ({n_layers} layers); {valid}.")
        out.update(range(lo, hi + 1))
    if not out:
        raise UsageError(f"layer selection {spec!r} names no layer; {valid}.")
    return sorted(out)


def read_layers_json(path) -> list[int]:
    """``recommended.layers`` from a ``babelscope layers`` run folder or its layers.json file."""
    path = Path(path)
    if path.is_dir():
        path = path / "layers.json"
    if not path.is_file():
        raise UsageError(f"{path} does not exist; pass a `babelscope layers` run folder or its layers.json.")
    try:
        layers = json.loads(path.read_text(encoding="utf-8"))["recommended"]["layers"]
    except (ValueError, KeyError, TypeError):
        raise UsageError(f"{path} has no recommended.layers list; re-run `babelscope layers`.") from None
    if not isinstance(layers, list) or not all(isinstance(i, int) for i in layers):
        raise UsageError(f"{path}: recommended.layers must be a list of layer indices, got {layers!r}.")
    return layers


def find_layers_run(output_path, model_name: str) -> Path | None:
    """The newest ``layers-*`` run folder of this model under ``output_path`` with a layers.json."""
    root = Path(output_path) / sanitize(model_name)
    found = sorted(p for p in root.glob("layers-*/layers.json")) if root.is_dir() else []
    return found[-1].parent if found else None


def layer_param_names(model, adapter, layers) -> list[str]:
    """Names of the parameters that belong to ``layers`` (exact prefix; raises when none match)."""
    prefixes = tuple(adapter.layer_prefix(i) for i in layers)
    names = [n for n, _ in model.named_parameters() if _strip_peft(n).startswith(prefixes)]
    if not names:
        raise UsageError(
            f"layers {layers} match no parameter of this model (prefix {prefixes[0]!r}); "
            f"valid layers are 0-{adapter.n_layers - 1}."
        )
    return names


def _strip_peft(name: str) -> str:
    """PEFT's ``base_model.model.`` wrapper prefix removed, so layer prefixes still apply."""
    return name.removeprefix("base_model.model.")


# ----------------------------------------------------------------------------- trainable parameters


def trainable_share(model) -> dict:
    """Trainable and total parameter counts, and the trainable share (0..1)."""
    trainable = sum(p.numel() for p in model.parameters() if p.requires_grad)
    total = sum(p.numel() for p in model.parameters())
    return {"trainable": trainable, "total": total, "share": trainable / total}


def freeze_except(loaded, layers, everything: bool = False) -> dict:
    """``full`` method: only the parameters of ``layers`` keep ``requires_grad`` (all, if ``everything``)."""
    keep = set(layer_param_names(loaded.model, loaded.adapter, layers))
    for name, p in loaded.model.named_parameters():
        p.requires_grad_(everything or name in keep)
    return trainable_share(loaded.model)


def add_lora(loaded, layers, r: int = DEFAULT_LORA_R, alpha: int = DEFAULT_LORA_ALPHA, seed: int = 0):
    """``lora`` method: PEFT LoRA on the projections of ``layers`` only; returns the PeftModel.

    Base weights are frozen by PEFT; ``layers_to_transform`` with ``layers_pattern`` (the name of
    the decoder ModuleList) restricts the adapters to exactly those indices.
    """
    import torch
    from peft import LoraConfig, get_peft_model

    names = {n.rsplit(".", 1)[-1] for n, m in loaded.model.named_modules() if isinstance(m, torch.nn.Linear)}
    targets = sorted(names & set(LORA_TARGETS))
    if not targets:
        raise UsageError(
            f"no LoRA target projection found in {type(loaded.model).__name__}; "
            f"looked for {', '.join(LORA_TARGETS)}. Use --method full."
        )
    config = LoraConfig(
        r=r,
        lora_alpha=alpha,
        lora_dropout=0.0,
        target_modules=targets,
        layers_to_transform=list(layers),
        layers_pattern=loaded.adapter.arch.layers.split(".")[-1],
        task_type="CAUSAL_LM",
    )
    torch.manual_seed(seed)
    peft_model = get_peft_model(loaded.model, config)
    lora_names = [n for n, p in peft_model.named_parameters() if p.requires_grad]
    if not lora_names:
        raise UsageError(
            f"LoRA on layers {list(layers)} added no weights; valid layers are 0-{loaded.adapter.n_layers - 1}."
        )
    return peft_model


# ----------------------------------------------------------------------------- reverting


def snapshot_layers(model, adapter, layers) -> dict:
    """Copies of the base weights of ``layers`` (keyed by unwrapped name), for ``revert_layers``."""
    names = layer_param_names(model, adapter, layers)
    params = dict(model.named_parameters())
    return {_strip_peft(n): params[n].detach().clone() for n in names}


def revert_layers(model, adapter, layers, base: dict) -> int:
    """Set ``layers`` back to their base weights; returns how many tensors were reset.

    On a plain model this copies the snapshot in; on a PEFT model the LoRA ``B`` matrices of those
    layers are zeroed, so their update is exactly zero and merging leaves the base weights.
    """
    import torch

    names = layer_param_names(model, adapter, layers)
    params = dict(model.named_parameters())
    done = 0
    with torch.no_grad():
        for name in names:
            plain = _strip_peft(name)
            if ".lora_B." in name:
                params[name].zero_()
                done += 1
            elif ".lora_A." in name:
                continue
            elif plain.replace(".base_layer.", ".") in base:
                params[name].copy_(base[plain.replace(".base_layer.", ".")])
                done += 1
    return done


# ----------------------------------------------------------------------------- saving


def save_full(loaded, folder) -> Path:
    """The whole trained model as a safetensors folder with its tokenizer, or an LVLM's processor
    (``load_model(folder)``)."""
    folder = Path(folder)
    loaded.model.save_pretrained(str(folder), safe_serialization=True)
    (loaded.extras.get("processor") or loaded.tokenizer).save_pretrained(str(folder))
    return folder


def save_lora(peft_model, tokenizer, folder, base_spec: str) -> Path:
    """The PEFT adapter folder; ``base_model_name_or_path`` is the babelscope model spec of the base."""
    folder = Path(folder)
    peft_model.peft_config["default"].base_model_name_or_path = str(base_spec)
    peft_model.save_pretrained(str(folder), safe_serialization=True)
    tokenizer.save_pretrained(str(folder))
    return folder
