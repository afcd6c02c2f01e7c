"""Language-specific layers: ranking, recommendation, logit lens, and the layers.json schema."""

import json

import pytest
import torch
from tests.neurons_fixtures import CLI_LANGS, write_corpus

from babelscope.cli.main import main
from babelscope.interpret import layers


def test_recommend_picks_shallow_top_scoring_layers():
    score = [0.9, 0.8, 0.2, 0.1, 0.1, 0.3, 0.1, 0.2, 0.7, 1.0]
    rec = layers.recommend(score, budget=0.2, max_depth=0.5)
    assert rec["layers"] == [0, 1]
    assert rec["bottom"] == 2 and rec["top"] == 2
    assert layers.recommend(score, budget=0.2, max_depth=1.0)["layers"] == [0, 9]
    with pytest.raises(Exception, match="budget"):
        layers.recommend(score, budget=0.0)


def test_onset_and_activation_difference():
    assert layers.onset([0.0, 0.1, 0.5, 0.45, 0.8]) == 2 and layers.onset([0.0, 0.1, 0.5, 0.3, 0.8]) == 4
    assert layers.onset([0.0, 0.0]) is None
    p = torch.zeros(3, 4, 2, dtype=torch.float64)
    p[1, :, 1] = 0.5  # layer 1 differs between English (index 0) and the other language
    diff = layers.activation_difference(p, ["eng_Latn", "fra_Latn"])
    assert diff["per_language"]["fra_Latn"] == [0.0, 0.5, 0.0] and diff["mean"] == [0.0, 0.5, 0.0]


def test_token_languages(tiny_tokenizer):
    texts = {"eng_Latn": ["the cat the cat the window"], "rus_Cyrl": ["Кошка сидела на коврике"]}
    table = layers.token_languages(tiny_tokenizer, texts)
    ids = tiny_tokenizer("Кошка", add_special_tokens=False)["input_ids"]
    assert all(table[i] == "rus_Cyrl" for i in ids)
    assert set(table.values()) == {"eng_Latn", "rus_Cyrl"}


def test_layers_verb_writes_layers_json(tiny_model_dir, tmp_path):
    corpus = write_corpus(tmp_path / "aligned.jsonl")
    argv = [
        "layers",
        "--model_args",
        f"pretrained={tiny_model_dir}",
        "--source",
        corpus,
        "--languages",
        CLI_LANGS,
        "--output_path",
        str(tmp_path / "out"),
        "--run_name",
        "L",
        "--max_tokens",
        "160",
        "--lens_positions",
        "8",
        "--budget",
        "0.5",
        "--threads",
        "1",
    ]
    assert main(argv) == 0
    doc = json.loads(next((tmp_path / "out").rglob("L/layers.json")).read_text())
    n = 2  # tiny model layers
    assert doc["languages"] == CLI_LANGS.split(",") and doc["model"]
    rec = doc["recommended"]
    assert rec["layers"] and all(isinstance(i, int) and 0 <= i < n for i in rec["layers"])
    assert isinstance(rec["bottom"], int) and isinstance(rec["top"], int) and rec["bottom"] + rec["top"] <= n
    ev = doc["evidence"]
    assert len(ev["score"]) == n and len(ev["language_neuron_share"]) == n
    assert set(ev["activation_difference"]["per_language"]) == {"fra_Latn", "rus_Cyrl"}
    lens = ev["logit_lens"]
    assert set(lens["target_share"]) == set(doc["languages"])
    assert all(len(v) == n and all(0 <= x <= 1 for x in v) for v in lens["target_share"].values())
    assert sorted(doc["ranking"]) == list(range(n))
    from babelscope.improve.layer_finetune import read_layers_json  # the finetune verb reads it
    from babelscope.improve.merge.layer_swap import layers_from_json  # the merge verb reads bottom / top

    folder = next((tmp_path / "out").rglob("L"))
    assert read_layers_json(folder) == rec["layers"]
    assert layers_from_json(folder) == (rec["bottom"], rec["top"])
