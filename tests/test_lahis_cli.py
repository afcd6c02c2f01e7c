"""``babelscope heads`` end to end on a tiny model, and torchrun (2 gloo processes) = 1 process."""

import json
import os
import subprocess
import sys

import pytest
import torch

from babelscope.interpret.lahis import LahisResult
from babelscope.runs import RunFolder
from babelscope.testing import SAMPLE_TEXTS, run_cli

LANGS = ["eng_Latn", "fra_Latn", "deu_Latn", "spa_Latn"]


@pytest.fixture(scope="module")
def tiny_corpus(tmp_path_factory):
    """An aligned wide JSONL corpus of 30 items in 4 languages (varied lengths)."""
    path = tmp_path_factory.mktemp("corpus") / "corpus.jsonl"
    with open(path, "w", encoding="utf-8") as f:
        for i in range(30):
            row = {"item_id": f"it{i}"}
            for j, lang in enumerate(LANGS):
                words = SAMPLE_TEXTS[j].split()
                row[lang] = " ".join(words[i % 4 :]) + f" {i}"
            f.write(json.dumps(row, ensure_ascii=False) + "\n")
    return path


def _cli(args, nproc=1):
    return run_cli(args, nproc, port=29517, timeout=240)


def _heads_args(model_dir, corpus, out, name, *extra):
    return [
        "heads",
        "--model_args",
        f"pretrained={model_dir}",
        "--languages",
        ",".join(LANGS),
        "--source",
        str(corpus),
        "--num_items",
        "9",
        "--batch_size",
        "4",
        "--output_path",
        str(out),
        "--run_name",
        name,
        *extra,
    ]


def test_heads_verb_writes_scores_lists_heatmaps_and_ablation(tiny_model_dir, tiny_corpus, tmp_path):
    _cli(
        _heads_args(
            tiny_model_dir,
            tiny_corpus,
            tmp_path,
            "one",
            "--validate",
            "--ablation",
            "candidates",
            "--num_eval_items",
            "3",
            "--num_prompts",
            "2",
            "--max_new_tokens",
            "4",
            "--quantile",
            "0.75",
        )
    )
    run = RunFolder(next(tmp_path.glob("*/one")))
    result = LahisResult.load(run.path)
    assert result.scores.shape == (2, 4, 4) and result.languages == LANGS
    assert result.n_items == {lang: 9 for lang in LANGS}
    classes = run.read_json("heads.json")
    assert set(classes["specific"]) == set(LANGS) and classes["min_languages"] == 2
    res = run.read_json("results.json")
    assert set(res["ablation"]["delta"]) == set(LANGS)
    assert set(res["ablation"]["verdict"]) == set(LANGS)
    specific = res["ablation_specific"]  # only languages with specific heads get a row; base losses shared
    assert set(specific["delta"]) == {lang for lang in LANGS if classes["specific"][lang]} != set()
    assert specific["base_loss"] == res["ablation"]["base_loss"]
    for lang in specific["delta"]:
        assert specific["heads"][lang] == classes["specific"][lang]
        assert not set(specific["heads"][lang]) & set(classes["general"])
    assert set(res["off_target"]) == set(LANGS)
    figures = {p.name for p in (run.path / "figures").iterdir()}
    assert {"specific_general.png", "ablation.png", "ablation_specific.png"} <= figures
    assert {f"heatmap_{lang}.png" for lang in LANGS} <= figures
    assert "Ablation" in (run.path / "README.md").read_text()
    assert run.read_samples("off_target", "fra_Latn")


def test_torchrun_two_gloo_processes_give_the_single_process_scores(tiny_model_dir, tiny_corpus, tmp_path):
    _cli(_heads_args(tiny_model_dir, tiny_corpus, tmp_path, "single"))
    _cli(_heads_args(tiny_model_dir, tiny_corpus, tmp_path, "dist"), nproc=2)
    runs = sorted(p.name for p in tmp_path.glob("*/*"))
    assert runs == ["dist", "single"]  # rank 1 writes no run folder
    single = LahisResult.load(next(tmp_path.glob("*/single")))
    dist = LahisResult.load(next(tmp_path.glob("*/dist")))
    assert dist.n_items == single.n_items == {lang: 9 for lang in LANGS}
    assert torch.allclose(dist.scores, single.scores, rtol=1e-5, atol=1e-9)


def test_bad_language_is_a_one_line_error(tiny_model_dir, tiny_corpus, tmp_path):
    env = dict(os.environ, HF_HUB_OFFLINE="1")
    out = subprocess.run(
        [
            sys.executable,
            "-m",
            "babelscope",
            *_heads_args(tiny_model_dir, tiny_corpus, tmp_path, "bad"),
            "--languages",
            "klingon",
        ],
        capture_output=True,
        text=True,
        timeout=120,
        env=env,
    )
    assert out.returncode == 2
    assert "klingon" in out.stderr and "Traceback" not in out.stderr
    assert not list(tmp_path.glob("*/bad"))  # no run folder for a run that could not start
