"""Tiny Llama checkpoints on disk for the merge tests (with a tokenizer, as mergekit expects)."""

from __future__ import annotations

import shutil
from pathlib import Path

import torch
from safetensors import safe_open

from babelscope.testing import make_tiny_model, train_tiny_tokenizer

N_LAYERS = 4


def build_models(root: Path) -> dict[str, Path]:
    """base, two experts tuned "from" it (base + noise), a copy of A, and two misfits."""
    tok = train_tiny_tokenizer()
    paths = {}

    def save(name, model):
        path = root / name
        model.save_pretrained(path)
        tok.save_pretrained(path)
        paths[name] = path

    base = make_tiny_model("llama", len(tok), seed=0, num_hidden_layers=N_LAYERS)
    save("base", base)
    for name, seed in (("A", 1), ("B", 2)):
        expert = make_tiny_model("llama", len(tok), seed=0, num_hidden_layers=N_LAYERS)
        gen = torch.Generator().manual_seed(seed)
        with torch.no_grad():
            for p in expert.parameters():
                p.add_(0.02 * torch.randn(p.shape, generator=gen))
        save(name, expert)
    shutil.copytree(paths["A"], root / "A_copy")
    paths["A_copy"] = root / "A_copy"
    save("wide", make_tiny_model("llama", len(tok), seed=3, num_hidden_layers=N_LAYERS, intermediate_size=96))
    save("qwen", make_tiny_model("qwen2", len(tok), seed=4, num_hidden_layers=N_LAYERS))
    return paths


def read_all(path: Path) -> dict[str, torch.Tensor]:
    """Every tensor of a (possibly sharded) safetensors folder."""
    out = {}
    for file in sorted(Path(path).glob("*.safetensors")):
        with safe_open(file, framework="pt") as f:
            out.update({k: f.get_tensor(k) for k in f.keys()})
    return out


def write_recipe(folder: Path, recipe: dict) -> str:
    """``folder/recipe.yaml`` holding ``recipe``; returns its path."""
    import yaml

    path = Path(folder) / "recipe.yaml"
    path.write_text(yaml.safe_dump(recipe))
    return str(path)
