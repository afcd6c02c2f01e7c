"""bs.fertility, bs.ls and bs.demo's pieces through the Python API (the verbs' ``run``)."""

from __future__ import annotations

import json

import pytest

import babelscope as bs
from babelscope.errors import BabelscopeError, UsageError
from babelscope.schema import validate
from measure_fixtures import small_corpus


def test_fertility_verb_on_a_tiny_tokenizer(tiny_model_dir, tmp_path):
    corpus = tmp_path / "aligned.jsonl"
    small_corpus(20).save(str(corpus))
    r = bs.fertility(model=str(tiny_model_dir), languages=["eng_Latn", "zho_Hans"], source=str(corpus), limit=10,
                     output_path=str(tmp_path / "runs"), run_name="f")
    results = json.loads((r.path / "results.json").read_text())
    validate(results)
    assert results["verb"] == "fertility" and results["languages"] == ["eng_Latn", "zho_Hans"]
    assert results["model"]["name"] == str(tiny_model_dir) and results["model"]["source"] == "folder"
    assert results["tokenizers"] == [str(tiny_model_dir)]
    table = results["fertility"][str(tiny_model_dir)]
    assert table["eng_Latn"]["parity"] == 1.0 and table["eng_Latn"]["items"] == 10
    assert table["zho_Hans"]["unit"] == "char"
    frame = r.to_frame()
    assert set(frame.columns) == {"tokenizer", "language", "metric", "value"}
    assert "parity" in set(frame["metric"]) and len(frame) > 10
    assert "eng_Latn" in r.summary


def test_fertility_side_by_side_has_no_model(tiny_model_dir, tmp_path):
    corpus = tmp_path / "aligned.jsonl"
    small_corpus(8).save(str(corpus))
    r = bs.fertility(tokenizers=[str(tiny_model_dir), "tekken"], languages="eng_Latn,deu_Latn",
                     source=str(corpus), output_path=str(tmp_path / "runs"))
    validate(r.results)
    assert r.results["model"] is None and r.results["tokenizers"] == [str(tiny_model_dir), "tekken"]
    assert r.path.parent.name == "tokenizers"


def test_fertility_bad_language_and_limit_are_one_line(tmp_path):
    with pytest.raises(BabelscopeError, match="Did you mean deu_Latn"):
        bs.fertility(languages="eng_Latn,Germn", output_path=str(tmp_path / "runs"))
    with pytest.raises(UsageError, match="--limit must be at least 1"):
        bs.fertility(limit=0)
    assert not (tmp_path / "runs").exists()


@pytest.mark.parametrize("what,column", [("architectures", "model_type"), ("models", "name"),
                                         ("tasks", "task"), ("sources", "source")])
def test_ls_returns_its_rows(what, column):
    r = bs.ls(what=what)
    frame = r.to_frame()
    assert column in frame.columns and len(frame) >= 2
    assert r.path is None and what.rstrip("s")[:4] in r.summary.lower()
    if what == "architectures":
        assert "llama" in set(frame["model_type"])
    if what == "tasks":
        assert {"continuation", "translation"} <= set(frame["task"])
