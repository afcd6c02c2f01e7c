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
    pytest.importorskip("mistral_common")  # the tekken tokenizer: babelscope[tekken]
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


def test_demo_runs_the_fertility_and_eval_verbs(tiny_model_dir, tmp_path):
    model = str(tiny_model_dir)
    r = bs.demo(model=model, tokenizers=model, languages="eng_Latn,fra_Latn", limit=2,
                output_path=str(tmp_path / "runs"), run_name="d")
    validate(r.results)
    assert r.results["verb"] == "demo" and r.results["languages"] == ["eng_Latn", "fra_Latn"]
    assert r.results["card"]["layers"] == 2 and r.results["model"]["name"] == model
    fert, ev = (bs.verbs.result.Result.load(p) for p in r.results["runs"])
    assert fert.results["verb"] == "fertility" and ev.results["verb"] == "eval"
    validate(fert.results)
    validate(ev.results)
    assert set(ev.results["tasks"]) == {"continuation", "translation"}
    assert fert.path.parent.parent == r.path == ev.path.parent.parent
    assert (r.path / "report.html").stat().st_size > 1000 and "demo finished" in r.summary


def test_fertility_pool_runs_reads_eval_runs(tmp_path):
    from test_fertility import _eval_payload

    folders = []
    for name, acc, tpc in (("m1", {"eng_Latn": 0.9, "deu_Latn": 0.7, "zho_Hans": 0.4}, (0.2, 0.3, 0.8)),
                           ("m2", {"eng_Latn": 0.8, "deu_Latn": 0.5, "zho_Hans": 0.3}, (0.25, 0.45, 1.0))):
        tpcs = dict(zip(["eng_Latn", "deu_Latn", "zho_Hans"], tpc, strict=True))
        payload = _eval_payload(acc, tpcs, {lang: int(t * 1000) for lang, t in tpcs.items()})
        for figures in payload["fertility"].values():
            figures.update(bytes_per_token=3.0, parity=1.0)
        folder = tmp_path / name
        folder.mkdir()
        (folder / "results.json").write_text(json.dumps({"verb": "eval", **payload}))
        folders.append(str(folder))
    r = bs.fertility(pool_runs=",".join(folders), output_path=str(tmp_path / "runs"), run_name="pooled")
    validate(r.results)
    pooled = r.results["pooled_correlation"]["acc"]
    assert pooled["runs"] == ["m1", "m2"] and pooled["points"] == 6 and pooled["tokens_per_char"]["n"] == 6
    assert pooled["tokens_per_char"]["pearson"] < -0.9 and pooled["nsl"]["n"] == 6
    assert r.results["tokenizers"] == ["m1", "m2"] and r.results["model"] is None
    assert "acc: 6 points" in r.summary
    with pytest.raises(UsageError, match="not an eval run"):
        (tmp_path / "bad.json").write_text(json.dumps({"verb": "fertility"}))
        bs.fertility(pool_runs=str(tmp_path / "bad.json"), output_path=str(tmp_path / "runs"))
