"""Streaming safetensors I/O for merges: lazy reads, one-tensor-at-a-time sharded writes.

* ``ModelFiles`` maps every tensor name of a (possibly sharded) safetensors checkpoint to its
  file, reads shapes and dtypes from the headers only, and reads one tensor at a time with
  ``safetensors.safe_open`` (the file is opened for that read and closed after it, so no mapping
  of a whole checkpoint stays resident).
* ``StreamingShardWriter`` knows every output tensor's name, shape and dtype before the merge
  starts, so it writes each shard's header first and then appends each tensor's bytes as soon as
  it is computed: the merged model never sits in memory, whatever the shard size.
* ``resolve_layers`` finds the decoder-layer prefix of an architecture and parses layer indices
  exactly (``model.layers.1.`` never matches ``model.layers.10.``).
"""

from __future__ import annotations

import json
import os
import re
import struct
from dataclasses import dataclass
from pathlib import Path

import torch
from safetensors import safe_open

from babelscope.errors import ModelLoadError, UnsupportedArchitectureError

DEFAULT_SHARD_BYTES = 2 * 1000**3  # output shard size; streaming makes it irrelevant to memory

# decoder-layer prefix per config.model_type; others are detected from the tensor names
LAYER_PREFIX = {
    "llama": "model.layers",
    "mistral": "model.layers",
    "qwen2": "model.layers",
    "qwen3": "model.layers",
    "gemma": "model.layers",
    "gemma2": "model.layers",
    "gemma3_text": "model.layers",
    "phi3": "model.layers",
    "olmo2": "model.layers",
    "smollm3": "model.layers",
    "granite": "model.layers",
    "gpt2": "transformer.h",
    "gpt_neox": "gpt_neox.layers",
    "falcon": "transformer.h",
}
PRE_LAYER_MARKERS = ("embed", "wte", "wpe")  # non-layer tensors that come before the layers

ST_DTYPES = {
    torch.float64: "F64",
    torch.float32: "F32",
    torch.float16: "F16",
    torch.bfloat16: "BF16",
    torch.int64: "I64",
    torch.int32: "I32",
    torch.int16: "I16",
    torch.int8: "I8",
    torch.uint8: "U8",
    torch.bool: "BOOL",
}
TORCH_DTYPES = {v: k for k, v in ST_DTYPES.items()}
NAMED_DTYPES = {"float32": torch.float32, "float16": torch.float16, "bfloat16": torch.bfloat16}
NAMED_DTYPES.update({"float64": torch.float64, "fp32": torch.float32, "bf16": torch.bfloat16})
NAMED_DTYPES.update({"fp16": torch.float16})


def dtype_from_name(name: str | None) -> torch.dtype | None:
    if name is None:
        return None
    if name not in NAMED_DTYPES:
        raise ModelLoadError(f"unknown dtype {name!r}; use one of {', '.join(NAMED_DTYPES)}")
    return NAMED_DTYPES[name]


class ModelFiles:
    """A local model folder: config.json plus model.safetensors or a sharded index."""

    def __init__(self, path: str | os.PathLike):
        self.path = Path(path)
        config_file = self.path / "config.json"
        if not config_file.is_file():
            raise ModelLoadError(
                f"{self.path} has no config.json; merge takes local model folders saved with "
                "save_pretrained (safetensors)"
            )
        self.config = json.loads(config_file.read_text())
        self.file_of = self._index()  # tensor name -> shard file
        self._meta: dict[str, tuple[tuple[int, ...], torch.dtype]] = {}
        for file in sorted(set(self.file_of.values())):
            with safe_open(file, framework="pt") as f:
                for name in f.keys():
                    sl = f.get_slice(name)
                    self._meta[name] = (tuple(sl.get_shape()), TORCH_DTYPES[sl.get_dtype()])

    def _index(self) -> dict[str, Path]:
        index = self.path / "model.safetensors.index.json"
        if index.is_file():
            weight_map = json.loads(index.read_text())["weight_map"]
            return {name: self.path / file for name, file in weight_map.items()}
        single = self.path / "model.safetensors"
        if single.is_file():
            with safe_open(single, framework="pt") as f:
                return {name: single for name in f.keys()}
        if any(self.path.glob("*.bin")):
            raise ModelLoadError(
                f"{self.path} holds only pickled .bin weights; merge reads safetensors only. "
                "Convert with AutoModelForCausalLM.from_pretrained(...).save_pretrained(...)"
            )
        raise ModelLoadError(f"{self.path} has no model.safetensors(.index.json)")

    @property
    def names(self) -> list[str]:
        return list(self._meta)

    def has(self, name: str) -> bool:
        return name in self._meta

    def shape(self, name: str) -> tuple[int, ...]:
        return self._meta[name][0]

    def dtype(self, name: str) -> torch.dtype:
        return self._meta[name][1]

    def read(self, name: str, dtype: torch.dtype | None = None) -> torch.Tensor:
        with safe_open(self.file_of[name], framework="pt") as f:
            tensor = f.get_tensor(name)
        if dtype is not None and tensor.is_floating_point() and tensor.dtype != dtype:
            tensor = tensor.to(dtype)
        return tensor

    def num_layers(self) -> int:
        cfg = self.config.get("text_config", self.config)
        return int(cfg["num_hidden_layers"])


@dataclass
class LayerLayout:
    """Where the decoder layers of a checkpoint live and what each layer holds."""

    prefix: str  # e.g. "model.layers"
    pre: list[str]  # non-layer tensors before the layers (embeddings)
    post: list[str]  # non-layer tensors after the layers (final norm, lm_head)

    def layer_name(self, index: int, suffix: str) -> str:
        return f"{self.prefix}.{index}.{suffix}"

    def split(self, name: str) -> tuple[int, str] | None:
        """(layer index, suffix) for a layer tensor, None otherwise; exact index parsing."""
        m = re.fullmatch(rf"{re.escape(self.prefix)}\.(\d+)\.(.+)", name)
        return (int(m.group(1)), m.group(2)) if m else None


def resolve_layers(model: ModelFiles) -> LayerLayout:
    n = model.num_layers()
    prefix = LAYER_PREFIX.get(model.config.get("model_type", ""))
    if prefix is None:  # detect: the prefix whose indices are exactly 0..n-1
        found: dict[str, set[int]] = {}
        for name in model.names:
            for m in re.finditer(r"\.(\d+)\.", name):
                found.setdefault(name[: m.start()], set()).add(int(m.group(1)))
        prefix = next((p for p, ix in found.items() if ix == set(range(n))), None)
    if prefix is None:
        raise UnsupportedArchitectureError(
            f"cannot find the decoder layers of {model.path} (model_type "
            f"{model.config.get('model_type')!r}); add its prefix to LAYER_PREFIX in "
            "babelscope/improve/merge/io.py"
        )
    layout = LayerLayout(prefix, [], [])
    indices = set()
    for name in model.names:
        parts = layout.split(name)
        if parts is not None:
            indices.add(parts[0])
        elif any(marker in name for marker in PRE_LAYER_MARKERS):
            layout.pre.append(name)
        else:
            layout.post.append(name)
    if indices != set(range(n)):
        raise UnsupportedArchitectureError(
            f"{model.path}: config says {n} layers but tensors under {prefix!r} have indices "
            f"{sorted(indices)[:5]}...; the checkpoint and its config disagree"
        )
    return layout


class StreamingShardWriter:
    """Write tensors in a fixed, announced order straight into sharded safetensors files."""

    def __init__(self, out_dir: Path, plan: list[tuple[str, tuple, torch.dtype]], shard_bytes):
        self.out_dir = Path(out_dir)
        self.out_dir.mkdir(parents=True, exist_ok=True)
        self.shards: list[list[tuple[str, tuple, torch.dtype, int]]] = [[]]
        size = 0
        for name, shape, dtype in plan:
            nbytes = _numel(shape) * torch.empty((), dtype=dtype).element_size()
            if self.shards[-1] and size + nbytes > shard_bytes:
                self.shards.append([])
                size = 0
            self.shards[-1].append((name, tuple(shape), dtype, nbytes))
            size += nbytes
        n = len(self.shards)
        self.files = ["model.safetensors" if n == 1 else f"model-{i + 1:05d}-of-{n:05d}.safetensors" for i in range(n)]
        self._order = [(i, e) for i, shard in enumerate(self.shards) for e in shard]
        self._next = 0
        self._handle = None
        self._open_shard = -1
        self.total_bytes = sum(e[3] for _, e in self._order)

    def _start_shard(self, i: int) -> None:
        if self._handle is not None:
            self._handle.close()
        header, offset = {}, 0
        for name, shape, dtype, nbytes in self.shards[i]:
            header[name] = {
                "dtype": ST_DTYPES[dtype],
                "shape": list(shape),
                "data_offsets": [offset, offset + nbytes],
            }
            offset += nbytes
        header["__metadata__"] = {"format": "pt"}
        raw = json.dumps(header, separators=(",", ":")).encode()
        raw += b" " * (-len(raw) % 8)  # the format pads the header to 8 bytes
        self._handle = open(self.out_dir / (self.files[i] + ".partial"), "wb")
        self._handle.write(struct.pack("<Q", len(raw)) + raw)
        self._open_shard = i

    def write(self, name: str, tensor: torch.Tensor) -> None:
        shard, (want, shape, dtype, nbytes) = self._order[self._next]
        if name != want or tuple(tensor.shape) != shape or tensor.dtype != dtype:
            raise RuntimeError(f"writer expected {want} {shape} {dtype}, got {name}")
        if shard != self._open_shard:
            self._start_shard(shard)
        data = tensor.detach().contiguous().reshape(-1).view(torch.uint8)  # [nbytes]
        self._handle.write(memoryview(data.numpy()))
        self._next += 1

    def finish(self) -> list[Path]:
        """Close the last shard, rename the partial files and write the index if sharded."""
        if self._next != len(self._order):
            raise RuntimeError(f"writer got {self._next} of {len(self._order)} tensors")
        if self._handle is not None:
            self._handle.close()
        paths = []
        for file in self.files:
            os.replace(self.out_dir / (file + ".partial"), self.out_dir / file)
            paths.append(self.out_dir / file)
        if len(self.files) > 1:
            weight_map = {e[0]: self.files[i] for i, e in self._order}
            index = {"metadata": {"total_size": self.total_bytes}, "weight_map": weight_map}
            (self.out_dir / "model.safetensors.index.json").write_text(json.dumps(index, indent=2))
        return paths


def _numel(shape) -> int:
    n = 1
    for d in shape:
        n *= int(d)
    return n
