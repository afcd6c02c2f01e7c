"""Synthetic run folders of every kind, in the formats the verbs write (for the report tests).

Formats follow the verbs' code: fertility (``measure/fertility.py`` via ``cli/fertility.py``), LAHIS
scores and classification (``interpret/lahis.py``), ternary layer counts and phases and the
deactivation summary (``interpret/ternary.py``, ``interpret/deactivation.py``), merge results
(``cli/merge.py``), cypher per-language metrics (``cli/cypher.py``), and before/after as the finetune
issue states it (``{language: {"before", "after", "delta"}}``).
"""

from __future__ import annotations

import random

import torch

from babelscope.runs import RunFolder

LANGS = ["eng_Latn", "fra_Latn", "deu_Latn", "rus_Cyrl", "zho_Hans"]
N_LAYERS, N_HEADS = 6, 4


def _rng(seed: int) -> random.Random:
    return random.Random(seed)


def eval_run(root, name="eval-a", acc=None, seed=0) -> RunFolder:
    """An eval run: per-language acc/acc_norm with stderr and n, and a consistency matrix."""
    rng = _rng(seed)
    acc = acc or {lang: 0.3 + 0.1 * i for i, lang in enumerate(LANGS)}
    run = RunFolder.create(
        root, "tiny", "eval", {"tasks": "continuation", "languages": LANGS, "limit": 50}, run_name=name, announce=False
    )
    per = {
        lang: {"acc": a, "acc_stderr": 0.02 + 0.01 * i, "acc_norm": a - 0.05, "acc_norm_stderr": 0.03, "n": 40 + 10 * i}
        for i, (lang, a) in enumerate(acc.items())
    }
    cons = {a: {b: 1.0 if a == b else round(0.4 + 0.5 * rng.random(), 3) for b in LANGS} for a in LANGS}
    run.write_results(
        {
            "verb": "eval",
            "results": {"continuation": per},
            "consistency": {"continuation": {"matrix": cons}},
            "macro": {"continuation": 0.5},
        }
    )
    run.write_samples("continuation", "eng_Latn", [{"item_id": "x1", "logprobs": [-1.0, -2.0], "gold": 0}])
    run.write_readme("# eval\n\nSynthetic.\n")
    return run


def fertility_run(root, name="fertility") -> RunFolder:
    run = RunFolder.create(
        root,
        "tokenizers",
        "fertility",
        {"tokenizers": "default,smollm2-135m", "languages": LANGS},
        run_name=name,
        announce=False,
    )
    fert = {}
    for t, scale in (("default", 1.0), ("smollm2-135m", 1.6)):
        fert[t] = {
            lang: {
                "items": 100,
                "tokens": 1000,
                "words": 700,
                "chars": 4000,
                "bytes": 4100,
                "unit": "char" if lang == "zho_Hans" else "word",
                "fertility": scale * (1.2 + 0.3 * i),
                "tokens_per_char": 0.25 * scale,
                "bytes_per_token": 4.0 / scale,
                "parity": 1.0 if lang == "eng_Latn" else scale * (1.1 + 0.2 * i),
            }
            for i, lang in enumerate(LANGS)
        }
    run.write_results({"verb": "fertility", "source": "builtin", "tokenizers": list(fert), "fertility": fert})
    return run


def heads_run(root, name="heads") -> RunFolder:
    """LAHIS scores [layer, head, language] with one planted head per language, and the classification."""
    run = RunFolder.create(root, "tiny", "heads", {"languages": LANGS, "num_items": 8}, run_name=name, announce=False)
    gen = torch.Generator().manual_seed(0)
    scores = torch.rand(N_LAYERS, N_HEADS, len(LANGS), generator=gen) * 0.1
    for k in range(len(LANGS)):
        scores[k % N_LAYERS, k % N_HEADS, k] = 1.0  # language k's own head
    scores[5, 3, :] = 0.9  # a general head
    run.save_tensors(
        "artifacts/lahis_scores.safetensors",
        {"scores": scores},
        {"axes": ["layer", "head", "language"], "languages": LANGS, "method": "lahis"},
    )
    specific = {lang: [(k % N_LAYERS) * N_HEADS + k % N_HEADS] for k, lang in enumerate(LANGS)}
    ablation = [[0.5 if i == j else 0.1 for j in range(len(LANGS))] for i in range(len(LANGS))]
    run.write_results(
        {
            "verb": "heads",
            "classification": {
                "quantile": 0.96,
                "min_languages": 3,
                "n_heads_per_layer": N_HEADS,
                "general": [5 * N_HEADS + 3],
                "specific": specific,
                "candidates": specific,
            },
            "ablation": {"languages": LANGS, "increase": ablation, "random_increase": [[0.01] * 5] * 5},
        }
    )
    return run


def neurons_run(root, name="neurons") -> RunFolder:
    run = RunFolder.create(
        root, "tiny", "neurons", {"method": "ternary", "languages": LANGS}, run_name=name, announce=False
    )
    counts = {"specific": [5, 3, 1, 1, 4, 9], "related": [2, 2, 1, 0, 3, 6], "general": [0, 4, 8, 9, 3, 1]}
    phases = [
        {"phase": "multilingual understanding", "layers": [0, 1]},
        {"phase": "shared semantic reasoning", "layers": [2, 3]},
        {"phase": "multilingual output transformation", "layers": [4, 5]},
    ]
    members = torch.zeros(N_LAYERS, 16, len(LANGS))
    for k in range(len(LANGS)):
        members[k % N_LAYERS, k, k] = 1
        members[5, 10 + k % 6, k] = 1
    run.save_tensors(
        "artifacts/neuron_sets.safetensors",
        {"members": members},
        {"axes": ["layer", "neuron", "language"], "languages": LANGS, "method": "ternary"},
    )
    inc = [[0.8 if i == j else 0.05 * (i + j) for j in range(len(LANGS))] for i in range(len(LANGS))]
    run.write_results(
        {
            "verb": "neurons",
            "layer_counts": counts,
            "phases": phases,
            "deactivation": {
                "languages": LANGS,
                "baseline_loss": {lang: 3.0 for lang in LANGS},
                "increase": inc,
                "random_increase": [[0.02] * 5] * 5,
            },
        }
    )
    return run


def finetune_run(root, name="finetune") -> RunFolder:
    run = RunFolder.create(
        root,
        "tiny",
        "finetune",
        {"method": "full", "layers": "0-1,4-5", "data": "parallel:builtin", "languages": LANGS[:2], "max_steps": 50},
        run_name=name,
        announce=False,
    )
    ba = {
        lang: {"before": 2.0 + 0.1 * i, "after": 1.8 + 0.12 * i, "delta": round(-0.2 + 0.02 * i, 6)}
        for i, lang in enumerate(LANGS)
    }
    run.write_results(
        {"verb": "finetune", "metric": "bpc", "trainable_share": 0.2345, "trainable_params": 12345, "before_after": ba}
    )
    return run


def merge_run(root, name="merge") -> RunFolder:
    run = RunFolder.create(
        root, "swap", "merge", {"recipe": "examples/layer_swap.yaml", "evaluate": True}, run_name=name, announce=False
    )
    recipe = {
        "merge_method": "layer_swap",
        "task_expert": "math",
        "language_expert": "swa",
        "parameters": {"bottom": 2, "top": 1},
    }
    ba = {
        lang: {"task_expert": 0.40 + 0.01 * i, "language_expert": 0.30, "merged": 0.45 + 0.02 * i}
        for i, lang in enumerate(LANGS)
    }
    run.write_results(
        {
            "verb": "merge",
            "recipe": recipe,
            "merge": {
                "tensors": 57,
                "bytes": 1234,
                "files": ["model.safetensors"],
                "layers": 6,
                "seconds": 0.5,
                "output": "model",
            },
            "before_after": ba,
        }
    )
    return run


def cypher_run(root, name="cypher") -> RunFolder:
    langs = ["eng_Latn", "spa_Latn", "tur_Latn"]
    run = RunFolder.create(root, "tiny", "cypher", {"languages": langs, "limit": 30}, run_name=name, announce=False)
    per = {
        lang: {
            "exact_match": 0.1 * (i + 1),
            "google_bleu": 0.3,
            "rouge_l": 0.4 + 0.1 * i,
            "execution_accuracy": 0.2 + 0.05 * i,
            "syntax_error_rate": 0.1,
            "n": 30,
        }
        for i, lang in enumerate(langs)
    }
    run.write_results({"verb": "cypher", "per_language": per, "consistency": {"all_languages": 0.33}})
    return run


def mask_run(root, name="mask") -> RunFolder:
    run = RunFolder.create(root, "tiny", "mask", {"top_rate": 0.1}, run_name=name, announce=False)
    mask = torch.ones(N_LAYERS, N_HEADS)
    mask[2, 1] = 0.4
    run.save_tensors("artifacts/head_mask.safetensors", {"mask": mask}, {"axes": ["layer", "head"]})
    run.write_results(
        {
            "verb": "mask",
            "trainable_params": 3,
            "before_after": {"continuation": {lang: {"before": 0.4, "after": 0.45} for lang in LANGS}},
        }
    )
    return run


def odd_run(root, name="odd") -> RunFolder:
    """A run of a future verb with keys no renderer knows."""
    run = RunFolder.create(root, "tiny", "future-verb", {"x": 1}, run_name=name, announce=False)
    run.write_results(
        {
            "verb": "future-verb",
            "nested": {"list": [[1, "a"], None], "text": "hello"},
            "eng_Latn": "not a dict",
            "weird": {"fra_Latn": {"nan": float("nan"), "s": "x"}},
            "empty": {},
            "matrix_bad": {"languages": ["eng_Latn"], "matrix": [[1, 2, 3]]},
        }
    )
    return run


ALL_KINDS = {
    "eval": eval_run,
    "fertility": fertility_run,
    "heads": heads_run,
    "neurons": neurons_run,
    "finetune": finetune_run,
    "merge": merge_run,
    "cypher": cypher_run,
    "mask": mask_run,
}
