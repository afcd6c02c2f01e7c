"""Per-architecture table: where the decoder layers, attention output and MLP projections live.

One declarative entry per model family. Paths are attribute paths from the ``*ForCausalLM``
object (layers) or from one decoder layer (projections). Register a new family at run time::

    from babelscope.models.adapters import Architecture, register_architecture
    register_architecture("my_arch", Architecture(layers="model.layers", o_proj="self_attn.o_proj",
                                                  gate="mlp.gate_proj", up="mlp.up_proj",
                                                  down="mlp.down_proj", norm="model.norm"))
"""

from __future__ import annotations

from dataclasses import dataclass

from babelscope.errors import UnsupportedArchitectureError


@dataclass(frozen=True)
class Architecture:
    layers: str  # decoder-layer ModuleList, from the causal-LM object
    o_proj: str  # attention output projection; its input is [B, T, n_heads * head_dim]
    down: str  # MLP output projection; its input is the activated MLP width
    norm: str  # final norm before the unembedding (logit lens)
    gate: str | None = None  # gated MLP: gate projection; fused: gate_up; ungated: fc1
    up: str | None = None  # gated MLP: up projection (None for fused and ungated)
    mlp_kind: str = "gated"  # "gated" | "fused" (first half of gate_up is the gate) | "ungated"


_LLAMA_LIKE = Architecture(layers="model.layers", o_proj="self_attn.o_proj", gate="mlp.gate_proj",
                           up="mlp.up_proj", down="mlp.down_proj", norm="model.norm")

ARCHITECTURES: dict[str, Architecture] = {
    "llama": _LLAMA_LIKE,
    "mistral": _LLAMA_LIKE,
    "qwen2": _LLAMA_LIKE,
    "qwen3": _LLAMA_LIKE,
    "gemma": _LLAMA_LIKE,
    "gemma2": _LLAMA_LIKE,
    "gemma3_text": _LLAMA_LIKE,
    "cohere": _LLAMA_LIKE,
    "phi3": Architecture(layers="model.layers", o_proj="self_attn.o_proj", gate="mlp.gate_up_proj",
                         down="mlp.down_proj", norm="model.norm", mlp_kind="fused"),
    "gpt2": Architecture(layers="transformer.h", o_proj="attn.c_proj", gate="mlp.c_fc",
                         down="mlp.c_proj", norm="transformer.ln_f", mlp_kind="ungated"),
}


def register_architecture(model_type: str, arch: Architecture) -> None:
    """Add or replace the entry for ``config.model_type`` (run-time registration)."""
    ARCHITECTURES[model_type] = arch


def get_path(root, path: str):
    """``get_path(model, "model.layers")``; raises AttributeError naming the missing part."""
    obj = root
    for part in path.split("."):
        obj = obj[int(part)] if part.isdigit() else getattr(obj, part)
    return obj


@dataclass(frozen=True)
class Adapter:
    """An architecture entry bound to one model's config numbers."""

    model_type: str
    arch: Architecture
    n_layers: int
    n_heads: int  # query heads
    n_kv_heads: int
    head_dim: int
    d_model: int
    d_mlp: int

    @property
    def mlp_kind(self) -> str:
        return self.arch.mlp_kind

    def layers(self, model):
        return get_path(model, self.arch.layers)

    def layer(self, model, i: int):
        return self.layers(model)[i]

    def layer_prefix(self, i: int) -> str:
        """State-dict prefix of layer ``i`` (``model.layers.3.``), for exact-index selection."""
        return f"{self.arch.layers}.{i}."

    def o_proj(self, layer):
        return get_path(layer, self.arch.o_proj)

    def gate(self, layer):
        return get_path(layer, self.arch.gate) if self.arch.gate else None

    def up(self, layer):
        return get_path(layer, self.arch.up) if self.arch.up else None

    def down(self, layer):
        return get_path(layer, self.arch.down)

    def final_norm(self, model):
        return get_path(model, self.arch.norm)

    def body(self, model):
        """The decoder without the unembedding: call it for hidden states only."""
        return get_path(model, self.arch.layers.split(".")[0])

    @property
    def n_head_total(self) -> int:
        return self.n_layers * self.n_heads


def supported() -> list[str]:
    return sorted(ARCHITECTURES)


def _cfg(config, *names, default=None):
    for name in names:
        value = getattr(config, name, None)
        if value is not None:
            return value
    return default


def get_adapter(model_or_config) -> Adapter:
    """The adapter for a model (or its config); a clear error for unknown families."""
    from babelscope.models.vision import LAYOUTS, language_architecture  # here: vision imports this module

    config = getattr(model_or_config, "config", model_or_config)
    outer = getattr(config, "model_type", None)
    if hasattr(config, "text_config") and (outer in LAYOUTS or not hasattr(config, "num_hidden_layers")):
        config = config.text_config  # multimodal wrappers keep the decoder's numbers here
    arch = language_architecture(outer, ARCHITECTURES.get(getattr(config, "model_type", None), _LLAMA_LIKE))  # LVLM
    model_type = outer if arch else getattr(config, "model_type", None)
    if arch is None and model_type not in ARCHITECTURES:
        raise UnsupportedArchitectureError(
            f"architecture {model_type!r} is not supported; supported: {', '.join(supported())}. "
            "Register it at run time with babelscope.models.adapters.register_architecture(model_type, "
            "Architecture(layers=..., o_proj=..., gate=..., up=..., down=..., norm=...)).")
    n_heads = _cfg(config, "num_attention_heads", "n_head")
    d_model = _cfg(config, "hidden_size", "n_embd")
    return Adapter(
        model_type=model_type,
        arch=arch or ARCHITECTURES[model_type],
        n_layers=_cfg(config, "num_hidden_layers", "n_layer"),
        n_heads=n_heads,
        n_kv_heads=_cfg(config, "num_key_value_heads", default=n_heads),
        head_dim=_cfg(config, "head_dim", default=d_model // n_heads),
        d_model=d_model,
        d_mlp=_cfg(config, "intermediate_size", "n_inner", default=4 * d_model),
    )
