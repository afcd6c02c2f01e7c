"""bs.neurons, bs.layers and bs.compare_neurons: the Python API on a tiny model; results.json follows the
shipped schema."""

import json

import pytest
from tests.neurons_fixtures import CLI_LANGS, write_corpus

import babelscope as bs
from babelscope.errors import UsageError
from babelscope.schema import validate

LANGS = CLI_LANGS.split(",")


@pytest.fixture(scope="module")
def corpus(tmp_path_factory):
    return write_corpus(tmp_path_factory.mktemp("corpus") / "aligned.jsonl")


def _neurons(model_dir, corpus, out, name, **extra):
    return bs.neurons(model=str(model_dir), source=corpus, languages=LANGS, output_path=str(out), run_name=name,
                      max_tokens=160, eval_tokens=48, top_rate=0.05, batch_size=4, threads=1, **extra)


def test_neurons_and_compare_neurons_api(tiny_model_dir, corpus, tmp_path):
    a = _neurons(tiny_model_dir, corpus, tmp_path, "a", validate=True)
    validate(a.results)
    assert a.results["verb"] == "neurons" and a.results["languages"] == LANGS
    assert a.results["model"]["source"] == "folder" and a.results["method"] == "ternary"
    assert set(a.results["deactivation"]["per_language"]) == set(LANGS)
    assert json.loads((a.path / "results.json").read_text()) == a.results
    frame = a.to_frame()
    assert set(frame["class"]) == {"specific", "related", "general"} and set(frame["layer"]) == {0, 1}
    b = _neurons(tiny_model_dir, corpus, tmp_path, "b", method="lape")
    validate(b.results)
    cmp = bs.compare_neurons(run_a=str(a.path), run_b=str(b.path), output_path=str(tmp_path / "c"))
    validate(cmp.results)
    assert cmp.results["verb"] == "compare-neurons" and cmp.results["languages"] == LANGS
    assert cmp.results["method_a"] == "ternary" and cmp.results["method_b"] == "lape"
    assert set(cmp.to_frame()["language"]) == set(LANGS)


def test_layers_api(tiny_model_dir, corpus, tmp_path):
    r = bs.layers(model=str(tiny_model_dir), source=corpus, languages="fra_Latn,rus_Cyrl", output_path=str(tmp_path),
                  max_tokens=160, lens_positions=8, budget=0.5, threads=1)
    validate(r.results)
    assert r.results["verb"] == "layers" and r.results["languages"] == ["eng_Latn", "fra_Latn", "rus_Cyrl"]
    assert sorted(r.results["ranking"]) == [0, 1] and r.results["recommended"]["layers"]
    doc = json.loads((r.path / "layers.json").read_text())
    assert doc["recommended"] == r.results["recommended"]
    assert r.to_frame()["recommended"].sum() == len(r.results["recommended"]["layers"])


def test_options_are_checked_before_anything_loads():
    with pytest.raises(UsageError, match="--method"):
        bs.neurons(method="entropy")
    with pytest.raises(UsageError, match="--budget"):
        bs.layers(budget=0)
    with pytest.raises(UsageError, match="missing required option --run_a"):
        bs.compare_neurons()
