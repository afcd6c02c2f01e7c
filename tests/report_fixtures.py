"""Synthetic run folders of every kind with planted numbers, for the report tests. ``eval_run`` and
``cypher_run`` are written in the current layout by the real writer and checked against the schema; the
others keep the PREVIOUS layout (results.json without the envelope and ``schema_version``), which the
report must still read through ``report.legacy``. ``tests/test_verbs_report.py`` builds current run
folders of every verb with the real verbs on tiny models.

The old formats follow what the verbs wrote before the results envelope: fertility, LAHIS scores and
classification, ternary layer counts and phases and the deactivation summary, merge results, and
before/after as finetune wrote it (``{language: {"before", "after", "delta"}}``) and mask (separate
``before`` and ``after`` dicts).
"""

from __future__ import annotations

import random

import torch

from babelscope.runs import RunFolder
from babelscope.schema import validate

LANGS = ["eng_Latn", "fra_Latn", "deu_Latn", "rus_Cyrl", "zho_Hans"]
N_LAYERS, N_HEADS = 6, 4


def write_old_results(run: RunFolder, payload: dict) -> None:
    """results.json as babelscope wrote it before the results envelope (no schema_version)."""
    run.write_json("results.json", payload)


def _rng(seed: int) -> random.Random:
    return random.Random(seed)


def eval_run(root, name="eval-a", acc=None, seed=0) -> RunFolder:
    """An eval run in the CURRENT layout, written by ``RunFolder.write_results`` (the writer every verb uses)
    and checked against the shipped schema: per-task per-language metrics with stderr and n, macro/micro
    means, consistency matrices, the headline per task, fertility and its correlation (planted numbers)."""
    rng = _rng(seed)
    acc = acc or {lang: 0.3 + 0.1 * i for i, lang in enumerate(LANGS)}
    run = RunFolder.create(
        root,
        "tiny",
        "eval",
        {"tasks": "continuation,bpc", "languages": LANGS, "limit": 50},
        run_name=name,
        announce=False,
    )
    per = {
        lang: {"acc": a, "acc_stderr": 0.02 + 0.01 * i, "acc_norm": a - 0.05, "acc_norm_stderr": 0.03, "n": 40 + 10 * i}
        for i, (lang, a) in enumerate(acc.items())
    }
    bpc = {lang: {"bits_per_char": 1.5 + 0.1 * i, "bits_per_byte": 1.2, "n": 40} for i, lang in enumerate(LANGS)}
    matrix = {a: {b: 1.0 if a == b else round(0.4 + 0.5 * rng.random(), 3) for b in LANGS} for a in LANGS}
    cons = {
        "prediction": "pred",
        "languages": LANGS,
        "matrix": matrix,
        "relative_matrix": {a: {b: v / 0.5 for b, v in row.items()} for a, row in matrix.items()},
        "kappa_matrix": matrix,
        "mean_pairwise": 0.6,
        "reference": "eng_Latn",
        "vs_reference": {
            lang: {"n": 40, "consistency": matrix[lang]["eng_Latn"], "relative": 1.2, "both_correct": 0.2, "kappa": 0.3}
            for lang in LANGS[1:]
        },
        "mean_vs_reference": 0.6,
    }
    fert = {lang: {"fertility": 1.2 + 0.3 * i, "tokens_per_char": 0.3 + 0.05 * i, "unit": "word"}
            for i, lang in enumerate(LANGS)}
    run.languages = LANGS
    run.write_results(
        {
            "languages": LANGS,
            "tasks": {"continuation": per, "bpc": bpc},
            "macro": {"continuation": {"acc": 0.5}},
            "micro": {"continuation": {"acc": 0.53}},
            "consistency": {"continuation": cons},
            "task_info": {
                "continuation": {"kind": "mc", "headline": "acc"},
                "bpc": {"kind": "bpc", "headline": "bits_per_char"},
            },
            "headline": {
                "continuation": {"metric": "acc", "macro": 0.5, "micro": 0.53},
                "bpc": {"metric": "bits_per_char", "macro": 1.7, "micro": 1.7},
            },
            "fertility": fert,
            "fertility_correlation": {"continuation": {"metric": "acc", "fertility": {"n": 5, "pearson": 1.0}}},
        }
    )
    validate(run.read_json("results.json"))
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
                "tokens_per_char": scale * (0.25 + 0.05 * i),
                "bytes_per_token": 4.0 / scale,
                "parity": 1.0 if lang == "eng_Latn" else scale * (1.1 + 0.2 * i),
            }
            for i, lang in enumerate(LANGS)
        }
    write_old_results(run, {"verb": "fertility", "source": "builtin", "tokenizers": list(fert), "fertility": fert})
    return run


def heads_run(root, name="heads") -> RunFolder:
    """LAHIS scores [layer, head, language] with one planted head per language, the classification
    (flat head ids, as ``cli/heads.py`` writes them), the ablation check and off-target rates."""
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
    own = {lang: (k % N_LAYERS) * N_HEADS + k % N_HEADS for k, lang in enumerate(LANGS)}
    specific = {lang: [own[lang]] for lang in LANGS}
    candidates = {lang: [own[lang], 5 * N_HEADS + 3] for lang in LANGS}
    base = {lang: 3.0 for lang in LANGS}
    loss = {a: {b: 3.5 if a == b else 3.1 for b in LANGS} for a in LANGS}
    ablation = {
        "base_loss": base,
        "ablated_loss": loss,
        "delta": {a: {b: loss[a][b] - base[b] for b in LANGS} for a in LANGS},
        "random_heads": {lang: [1, 2] for lang in LANGS},
        "random_loss": {lang: 3.02 for lang in LANGS},
        "random_delta": {lang: 0.02 for lang in LANGS},
        "heads": candidates,
        "verdict": {
            lang: {
                "own_heads_hurt_most": True,
                "most_hurt_by": lang,
                "own_delta": 0.5,
                "random_delta": 0.02,
                "own_beats_random": True,
            }
            for lang in LANGS
        },
        "n_eval_items": {lang: 16 for lang in LANGS},
    }
    off = {
        lang: {"before": {"off_target_rate": 0.1, "n": 8}, "after": {"off_target_rate": 0.1 + 0.1 * k, "n": 8}}
        for k, lang in enumerate(LANGS)
    }
    write_old_results(run,
        {
            "method": "lahis",
            "model": "tiny",
            "languages": LANGS,
            "n_items": {lang: 8 for lang in LANGS},
            "n_layers": N_LAYERS,
            "n_heads": N_HEADS,
            "general": [5 * N_HEADS + 3],
            "specific": specific,
            "candidates": candidates,
            "min_languages": 3,
            "quantile": 0.96,
            "ablation": ablation,
            "off_target": off,
            "seconds": {"score": 1.0},
        }
    )
    return run


def neurons_run(root, name="neurons") -> RunFolder:
    """As ``interpret/neurons.py`` saves it: summary in results.json, side files, tensors with axes."""
    run = RunFolder.create(
        root, "tiny", "neurons", {"method": "ternary", "languages": LANGS}, run_name=name, announce=False
    )
    counts = {"specific": [5, 3, 1, 1, 4, 9], "related": [2, 2, 1, 0, 3, 6], "general": [0, 4, 8, 9, 3, 1]}
    phases = [
        {"phase": "multilingual understanding", "layers": [0, 1]},
        {"phase": "shared semantic reasoning", "layers": [2, 3]},
        {"phase": "multilingual output transformation", "layers": [4, 5]},
    ]
    members = torch.zeros(len(LANGS), N_LAYERS, 16, dtype=torch.uint8)
    for k in range(len(LANGS)):
        members[k, k % N_LAYERS, k] = 1
        members[k, 5, 10 + k % 6] = 1
    run.save_tensors(
        "artifacts/neurons.safetensors",
        {
            "members": members,
            "classes": torch.zeros(N_LAYERS, 16, dtype=torch.int8),
            "probabilities": torch.rand(N_LAYERS, 16, len(LANGS)),
        },
        {
            "languages": LANGS,
            "method": "ternary",
            "classes": ["none", "specific", "related", "general"],
            "axes": {
                "classes": ["layer", "neuron"],
                "members": ["language", "layer", "neuron"],
                "probabilities": ["layer", "neuron", "language"],
            },
        },
    )
    inc = [[0.8 if i == j else 0.05 * (i + j) for j in range(len(LANGS))] for i in range(len(LANGS))]
    per_lang = {
        lang: {
            "neurons": 2,
            "own_increase": 0.8,
            "random_own_increase": 0.02,
            "own_vs_other_languages": 4.0,
            "own_is_largest_in_row": True,
        }
        for lang in LANGS
    }
    run.write_json("layer_counts.json", {"classes": counts, "phases": phases})
    run.write_json(
        "deactivation.json",
        {
            "languages": LANGS,
            "baseline_loss": {lang: 3.0 for lang in LANGS},
            "increase": inc,
            "random_increase": [[0.02] * 5] * 5,
            "per_language": per_lang,
        },
    )
    write_old_results(run,
        {
            "verb": "neurons",
            "model": "tiny",
            "method": "ternary",
            "languages": LANGS,
            "neurons_per_language": {lang: 2 for lang in LANGS},
            "tokens_per_language": {lang: 1000 for lang in LANGS},
            "class_totals": {k: sum(v) for k, v in counts.items()},
            "per_layer": counts,
            "phases": phases,
            "deactivation": {"per_language": per_lang, "all_own_largest_in_row": True},
        }
    )
    return run


def layers_run(root, name="layers") -> RunFolder:
    run = RunFolder.create(root, "tiny", "layers", {"languages": LANGS}, run_name=name, announce=False)
    rec = {"layers": [0, 1, 5], "bottom": 2, "top": 1, "budget": 0.25, "max_depth": 0.5}
    score = [0.9, 0.7, 0.2, 0.1, 0.3, 0.8]
    lens = {
        "target_share": {lang: [0.0, 0.0, 0.1, 0.3, 0.6, 0.9] for lang in LANGS[1:]},
        "positions": 8,
        "onset_layer": {lang: 4 for lang in LANGS[1:]},
    }
    run.write_json(
        "layers.json",
        {
            "model": "tiny",
            "languages": LANGS,
            "recommended": rec,
            "ranking": [0, 5, 1, 4, 2, 3],
            "evidence": {
                "score": score,
                "language_neuron_share": score,
                "specific_share": [x / 2 for x in score],
                "logit_lens": lens,
            },
        },
    )
    write_old_results(run,
        {"verb": "layers", "recommended": rec, "ranking": [0, 5, 1, 4, 2, 3], "onset_layer": lens["onset_layer"]}
    )
    return run


def finetune_run(root, name="finetune") -> RunFolder:
    """As ``improve/finetune_run.py`` writes it (bpc headline and every task)."""
    run = RunFolder.create(
        root,
        "tiny",
        "finetune",
        {"method": "full", "layers": "0-1,4-5", "data": ["parallel:builtin"], "languages": LANGS[:2], "max_steps": 50},
        run_name=name,
        announce=False,
    )
    ba = {
        lang: {"before": 2.0 + 0.1 * i, "after": 1.8 + 0.12 * i, "delta": round(-0.2 + 0.02 * i, 6)}
        for i, lang in enumerate(LANGS)
    }
    cont = {lang: {"before": 0.4, "after": 0.45, "delta": 0.05} for lang in LANGS}
    write_old_results(run,
        {
            "before_after": ba,
            "before_after_tasks": {"bpc": ba, "continuation": cont},
            "layers": [0, 1, 4, 5],
            "layer_source": "0-1,4-5",
            "method": "full",
            "trainable_parameters": {"trainable": 12345, "total": 52640, "share": 0.2345},
            "trainable_share": 0.2345,
            "revert_layers": [],
            "reverted_tensors": 0,
            "training": {"losses": [5.0 - 0.05 * s for s in range(50)], "steps": 50, "tokens": 6400},
            "data": {"specs": ["parallel:builtin"], "documents": 40},
            "languages": {"training": LANGS[:2], "pivot": "eng_Latn", "evaluated": LANGS},
        }
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
    write_old_results(run,
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
            "before_after_metric": "continuation/acc",
            "before_after_by_task": {"continuation": ba},
        }
    )
    sub = RunFolder(run.path / "eval" / "merged")  # merge --evaluate keeps each model's eval, without config
    sub.path.mkdir(parents=True)
    write_old_results(sub,
        {
            "tasks": {"continuation": {lang: {"acc": v["merged"], "n": 10} for lang, v in ba.items()}},
            "task_info": {"continuation": {"kind": "mc", "headline": "acc"}},
        }
    )
    return run


def compare_neurons_run(root, name="compare-neurons") -> RunFolder:
    run = RunFolder.create(root, "a-vs-b", "compare-neurons", {}, run_name=name, announce=False)
    per_layer = {
        c: {"a": [k, 2, 3, 4, 5, 6], "b": [2, 2, 2, 5, 5, 5 + k], "shift": [2 - k, 0, -1, 1, 0, k - 1]}
        for k, c in enumerate(("specific", "related", "general"))
    }
    write_old_results(run,
        {
            "verb": "compare-neurons",
            "model_a": "a",
            "model_b": "b",
            "languages": LANGS,
            "jaccard": {lang: {"jaccard": 0.5, "a": 4, "b": 4, "both": 2} for lang in LANGS},
            "mean_jaccard": 0.5,
            "transitions": {"specific->general": 3},
            "transition_matrix": {
                "classes": ["none", "specific", "related", "general"],
                "counts": [[10, 1, 0, 0], [0, 5, 1, 3], [0, 0, 4, 1], [0, 0, 0, 9]],
            },
            "per_layer": per_layer,
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
    kinds = {
        lang: {"lookup": {"n": 10, "execution_accuracy": 0.5}, "aggregation": {"n": 20, "execution_accuracy": 0.1}}
        for lang in langs
    }
    cons = {"all_languages": 0.33, "matrix": {a: {b: 1.0 if a == b else 0.4 for b in langs} for a in langs}}
    run.languages = langs  # the current layout, as `babelscope cypher` writes it
    run.write_results({"per_language": per, "per_kind": kinds, "consistency": cons, "macro_mean": {},
                       "item_weighted_mean": {}, "source": "builtin", "items": 30, "fewshot": 0,
                       "generation": "greedy", "database": "builtin ladybug",
                       "sandbox": "local worker, landlock ABI 7", "gold_failures": [],
                       "gold_failures_excluded": 0})
    validate(run.read_json("results.json"))
    return run


def mask_run(root, name="mask") -> RunFolder:
    """As ``improve/head_mask_run.py`` writes it: separate before/after per task, the trained heads."""
    from safetensors.torch import save_file

    run = RunFolder.create(root, "tiny", "mask", {"top_rate": 0.1}, run_name=name, announce=False)
    heads, values = ["L2.H1", "L4.H0", "L0.H3"], [0.4, 1.3, 0.9]
    save_file(
        {"heads": torch.tensor([9, 16, 3]), "values": torch.tensor(values)},
        str(run.path / "head_mask.safetensors"),
        metadata={"method": "lahis_soft_head_mask", "n_layers": str(N_LAYERS), "n_heads": str(N_HEADS)},
    )
    run.save_tensors(
        "artifacts/combined_scores.safetensors",
        {"scores": torch.rand(N_LAYERS, N_HEADS)},
        {"axes": ["layer", "head"], "languages": LANGS},
    )
    before = {"continuation": {lang: 0.4 for lang in LANGS}}
    after = {"continuation": {lang: 0.4 + 0.01 * k for k, lang in enumerate(LANGS)}}
    write_old_results(run,
        {
            "method": "lahis_soft_head_mask",
            "model": "tiny",
            "languages": LANGS,
            "n_trainable_parameters": 3,
            "heads": heads,
            "values": values,
            "before": before,
            "after": after,
            "before_macro": {"continuation": 0.4},
            "after_macro": {"continuation": 0.42},
            "losses": [2.0, 1.8, 1.7, 1.65],
            "selection": "top_rate",
        }
    )
    return run


def odd_run(root, name="odd") -> RunFolder:
    """A run of a future verb with keys no renderer knows."""
    run = RunFolder.create(root, "tiny", "future-verb", {"x": 1}, run_name=name, announce=False)
    write_old_results(run,
        {
            "verb": "future-verb",
            "nested": {"list": [[1, "a"], None], "text": "hello"},
            "eng_Latn": "not a dict",
            "weird": {"fra_Latn": {"nan": float("nan"), "s": "x", "<script>alert(1)</script>": 1.0}},
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
    "layers": layers_run,
    "compare-neurons": compare_neurons_run,
    "finetune": finetune_run,
    "merge": merge_run,
    "cypher": cypher_run,
    "mask": mask_run,
}
