"""What identifies a loaded model in results.json: name, kind of source, revision, file hash.

The hash is SHA-256 over the weight and config files of a local model (folder, GGUF file or
converted embedded model), cached by (path, size, mtime) so a model is hashed once per change.
"""

from __future__ import annotations

import hashlib
import json
import os
from pathlib import Path

from babelscope.models.load import EMBEDDED
from babelscope.runs import atomic_write_json, cache_dir

_HASHED = ("*.safetensors", "*.gguf", "*.bin", "*.json", "*.model")  # weights, configs, tokenizers
_CHUNK = 1 << 22


def _files(source: Path) -> list[Path]:
    if source.is_file():
        return [source]
    return sorted({p for pattern in _HASHED for p in source.glob(pattern) if p.is_file()})


def _stamp(files: list[Path]) -> str:
    return json.dumps([[str(p.resolve()), p.stat().st_size, p.stat().st_mtime_ns] for p in files])


def file_hash(source: str | os.PathLike) -> str | None:
    """sha256 of a local model's files (None when ``source`` is not a local path)."""
    path = Path(source).expanduser()
    if not path.exists():
        return None
    files = _files(path)
    stamp = _stamp(files)
    key = hashlib.sha256(stamp.encode()).hexdigest()[:32]
    memo = cache_dir() / "hashes" / f"{key}.json"
    if memo.is_file():
        return json.loads(memo.read_text(encoding="utf-8"))["sha256"]
    digest = hashlib.sha256()
    for p in files:
        digest.update(f"{p.name}\0{p.stat().st_size}\0".encode())
        with open(p, "rb") as f:
            while block := f.read(_CHUNK):
                digest.update(block)
    value = digest.hexdigest()
    atomic_write_json(memo, {"sha256": value, "files": len(files)})
    return value


def source_kind(name: str, source: str) -> str:
    """embedded | gguf | peft | folder | hub | object."""
    if name in EMBEDDED:
        return "embedded"
    if source == "object":
        return "object"
    if name.endswith(".gguf"):
        return "gguf"
    path = Path(source).expanduser()
    if (path / "adapter_config.json").is_file():
        return "peft"
    return "folder" if path.exists() else "hub"


def identity(loaded, revision: str | None = None) -> dict:
    """{name, source, revision, file_hash} of a LoadedModel."""
    kind = source_kind(loaded.name, loaded.source or "")
    local = loaded.name if kind == "gguf" else loaded.source
    return {"name": loaded.name, "source": kind, "revision": revision,
            "file_hash": file_hash(local) if kind in ("embedded", "gguf", "folder", "peft") else None}
