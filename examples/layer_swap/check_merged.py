"""Load the merged model with AutoModelForCausalLM and compare per-domain loss with its inputs.

Usage: python check_merged.py RUN_FOLDER/model
Prints the mean token loss (lower is better) on held-out arithmetic and German text for the base,
the two experts and the merged model.
"""

from __future__ import annotations

import random
import sys
from pathlib import Path

import torch
from make_experts import GERMAN, HERE, math_lines
from transformers import AutoModelForCausalLM, AutoTokenizer

GERMAN_HELD_OUT = [
    "Der Garten ist im Frühling voller Blumen.",
    "Wir trinken am Abend einen warmen Tee.",
    "Die Kinder lesen ein Buch über den Wald.",
    "Der Zug nach Berlin fährt um acht Uhr.",
]


def loss(model, tok, texts: list[str]) -> float:
    batch = tok(texts, return_tensors="pt", padding=True)
    labels = batch.input_ids.masked_fill(batch.attention_mask == 0, -100)
    with torch.no_grad():
        return model(**batch, labels=labels).loss.item()


def main(merged: Path) -> None:
    tok = AutoTokenizer.from_pretrained(merged)
    math_test = math_lines(16, random.Random(99))
    models = {name: HERE / "models" / name for name in ("base", "math_expert", "language_expert")}
    models["merged"] = merged
    print(f"{'model':>16}  math loss  German loss")
    for name, path in models.items():
        model = AutoModelForCausalLM.from_pretrained(path).eval()
        print(f"{name:>16}  {loss(model, tok, math_test):9.3f}  {loss(model, tok, GERMAN_HELD_OUT):11.3f}")
    assert GERMAN  # the training sentences live in make_experts.py


if __name__ == "__main__":
    main(Path(sys.argv[1]))
