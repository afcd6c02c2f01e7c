"""A tiny llama whose layer-0 MLP neurons are built to fire for chosen synthetic languages.

Three synthetic languages own disjoint token ranges. Each token embedding has a one-hot language
indicator (dims 0..2) plus small fixed noise. Attention outputs are zeroed, so the MLP of layer 0
sees the embedding. Gate rows of layer 0:

* SPECIFIC[lang]: +w on the language's indicator, -w on the others -> fire only for that language;
* RELATED: +w on languages 0 and 1, -w on 2 -> fire for two of three;
* GENERAL: +w on every indicator -> fire for all;
* every other neuron (and layer 1): random weights on the noise dims and a negative bias through
  the indicators -> fire on ~10-20% of tokens, similarly in every language.
"""

from __future__ import annotations

import torch

LANGS = ["aaa_Latn", "bbb_Latn", "ccc_Latn"]  # synthetic language names (never resolved)
RANGES = {lang: range(10 + 100 * k, 110 + 100 * k) for k, lang in enumerate(LANGS)}
D_MLP = 128
SPECIFIC = {LANGS[0]: [3, 17, 40, 77], LANGS[1]: [5, 21, 64, 90], LANGS[2]: [8, 33, 99, 120]}
RELATED = [11, 50]  # languages 0 and 1
GENERAL = [2, 60, 101, 111]


def planted_model():
    from babelscope.testing import make_tiny_model

    model = make_tiny_model("llama", vocab_size=400, seed=0, intermediate_size=D_MLP)
    g = torch.Generator().manual_seed(0)
    with torch.no_grad():
        emb = model.get_input_embeddings().weight  # [V, D]
        emb.copy_(torch.randn(emb.shape, generator=g) * 0.05)
        emb[:, :3] = 0
        for k, lang in enumerate(LANGS):
            emb[list(RANGES[lang]), k] = 1.0
        for layer in model.model.layers:
            layer.self_attn.o_proj.weight.zero_()
            gate = layer.mlp.gate_proj.weight  # [F, D]
            gate.copy_(torch.randn(gate.shape, generator=g))
            gate[:, :3] = -0.3
        gate0 = model.model.layers[0].mlp.gate_proj.weight
        for k, lang in enumerate(LANGS):
            for j in SPECIFIC[lang]:
                gate0[j] = 0
                gate0[j, :3] = -5.0
                gate0[j, k] = 5.0
        for j in RELATED:
            gate0[j] = 0
            gate0[j, :3] = torch.tensor([5.0, 5.0, -5.0])
        for j in GENERAL:
            gate0[j] = 0
            gate0[j, :3] = 5.0
        model.model.layers[0].mlp.down_proj.weight.zero_()  # layer 1 sees the embedding only
    return model


def planted_batches(rows: int = 24, length: int = 16, batch_size: int = 8, seed: int = 0):
    """Batches of random tokens per language (no BOS), with some right padding."""
    from babelscope.interpret.activations import make_batches

    g = torch.Generator().manual_seed(seed)
    out = []
    for lang in LANGS:
        r = RANGES[lang]
        ids = [torch.randint(r.start, r.stop, (length - (i % 3),), generator=g).tolist() for i in range(rows)]
        out += make_batches(lang, ids, batch_size, pad_id=0, has_bos=False)
    return out


CLI_LANGS = "eng_Latn,fra_Latn,rus_Cyrl"


def write_corpus(path, n_items: int = 40) -> str:
    """A wide JSONL corpus of ``n_items`` aligned items in English, French and Russian."""
    import json
    import random

    from babelscope.testing import SAMPLE_TEXTS

    rng = random.Random(0)
    base = {"eng_Latn": SAMPLE_TEXTS[0], "fra_Latn": SAMPLE_TEXTS[1], "rus_Cyrl": SAMPLE_TEXTS[4]}
    with open(path, "w", encoding="utf-8") as f:
        for i in range(n_items):
            row = {"item_id": f"it{i}"}
            for lang, text in base.items():
                words = text.split()
                rng.shuffle(words)
                row[lang] = " ".join(words) + f" {i}"
            f.write(json.dumps(row, ensure_ascii=False) + "\n")
    return str(path)
