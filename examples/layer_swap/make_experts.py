"""Build a tiny base model and two experts fine-tuned from it, for the layer-swap example.

* base: an 8-layer Llama (hidden 64) trained briefly on a mix of German sentences and arithmetic;
* math_expert: the base fine-tuned on arithmetic written in English ("17 plus 25 is 42.");
* language_expert: the base fine-tuned on German sentences.

Everything runs on CPU in well under a minute and is saved (safetensors + tokenizer) to ./models.
"""

from __future__ import annotations

import random
from pathlib import Path

import torch

from babelscope.testing import make_tiny_model, train_tiny_tokenizer

HERE = Path(__file__).resolve().parent
SEED = 0
STEPS = {"base": 60, "math_expert": 40, "language_expert": 40}  # optimiser steps per model
GERMAN = [
    "Der Hund läuft schnell über die grüne Wiese.",
    "Die Kinder spielen am Nachmittag im Garten.",
    "Meine Mutter kocht heute eine warme Suppe.",
    "Im Winter ist es in Berlin oft sehr kalt.",
    "Wir fahren morgen mit dem Zug nach Hamburg.",
    "Das Buch liegt auf dem Tisch neben der Lampe.",
    "Der Lehrer erklärt die Aufgabe noch einmal.",
    "Am Sonntag gehen wir zusammen in den Wald.",
    "Die Katze schläft gern auf dem warmen Sofa.",
    "Er trinkt jeden Morgen eine Tasse Kaffee.",
    "Die Stadt hat einen schönen alten Marktplatz.",
    "Sie schreibt ihrer Freundin einen langen Brief.",
    "Im Sommer schwimmen wir oft im kühlen See.",
    "Der Bäcker verkauft frisches Brot und Kuchen.",
    "Das Wetter ist heute sonnig und warm.",
    "Die Musik im Konzert war wunderbar.",
]


def math_lines(n: int, rng: random.Random) -> list[str]:
    out = []
    for _ in range(n):
        a, b = rng.randint(1, 50), rng.randint(1, 50)
        out.append(f"{a} plus {b} is {a + b}." if rng.random() < 0.5 else f"{a + b} minus {b} is {a}.")
    return out


def train(model, tok, texts: list[str], steps: int, seed: int) -> None:
    torch.manual_seed(seed)
    opt = torch.optim.AdamW(model.parameters(), lr=3e-3)
    model.train()
    rng = random.Random(seed)
    for _ in range(steps):
        batch = tok(rng.sample(texts, 8), return_tensors="pt", padding=True)
        labels = batch.input_ids.masked_fill(batch.attention_mask == 0, -100)
        loss = model(**batch, labels=labels).loss
        loss.backward()
        opt.step()
        opt.zero_grad()
    model.eval()


def main() -> None:
    torch.set_num_threads(1)
    rng = random.Random(SEED)
    math_train = math_lines(400, rng)
    tok = train_tiny_tokenizer(vocab_size=500, texts=GERMAN + math_train[:100])
    out = HERE / "models"
    model = make_tiny_model(
        "llama", len(tok), seed=SEED, num_hidden_layers=8, hidden_size=64, intermediate_size=128, head_dim=16
    )
    train(model, tok, GERMAN + math_train, STEPS["base"], SEED)
    model.save_pretrained(out / "base")
    tok.save_pretrained(out / "base")
    for name, texts in (("math_expert", math_train), ("language_expert", GERMAN)):
        expert = type(model).from_pretrained(out / "base")
        train(expert, tok, texts, STEPS[name], SEED + 1)
        expert.save_pretrained(out / name)
        tok.save_pretrained(out / name)
        print(f"saved {out / name}")


if __name__ == "__main__":
    main()
