"""bs.finetune with a few steps on a tiny model: before/after in the shared shape, results.json follows the
shipped schema, and --layers auto runs the layers verb when no layers run exists."""

import json

import pytest

import babelscope as bs
from babelscope.errors import UsageError
from babelscope.schema import validate
from finetune_fixtures import write_corpus


@pytest.fixture(scope="module")
def corpus(tmp_path_factory):
    return str(write_corpus(tmp_path_factory.mktemp("corpus")))


def test_finetune_api_before_after_and_quick_layers(tiny_model_dir, corpus, tmp_path, monkeypatch):
    from babelscope.verbs import finetune

    monkeypatch.setattr(finetune, "QUICK_LAYER_TOKENS", 96)
    r = bs.finetune(model=str(tiny_model_dir), languages=["eng_Latn", "fra_Latn"], data=f"parallel:{corpus}",
                    eval_source=corpus, max_steps=2, train_batch_size=2, max_length=32, eval_limit=3,
                    output_path=str(tmp_path), no_save=True)
    validate(r.results)
    res = r.results
    assert res["verb"] == "finetune" and res["stages"] == ["before", "after"]
    assert res["languages"][:2] == ["eng_Latn", "fra_Latn"] and len(res["languages"]) >= 4
    assert res["language_roles"] == {"training": ["eng_Latn", "fra_Latn"], "pivot": "eng_Latn",
                                     "evaluated": res["languages"]}
    bpc = res["before_after"]["bpc"]
    assert set(bpc) == set(res["languages"])
    for lang, row in bpc.items():
        assert row["before"] > 0 and row["after"] > 0
        assert abs(res["delta"]["bpc"][lang] - (row["after"] - row["before"])) < 1e-5
    assert "quick `babelscope layers` run" in res["layer_source"] and res["saved"] is None
    layers_run = next(tmp_path.rglob("layers-*/layers.json")).parent  # the layers verb's own run folder
    validate(json.loads((layers_run / "results.json").read_text()))
    assert res["layers"] == json.loads((layers_run / "layers.json").read_text())["recommended"]["layers"]
    frame = r.to_frame()
    assert set(frame["stage"]) == {"before", "after"} and set(frame["task"]) == {"bpc"}


def test_finetune_options_are_checked():
    with pytest.raises(UsageError, match="missing required option --languages"):
        bs.finetune(max_steps=1)
    with pytest.raises(UsageError, match="--method"):
        bs.finetune(languages="eng_Latn,fra_Latn", method="dora")
    with pytest.raises(UsageError, match="--epochs must be above 0"):
        bs.finetune(languages="eng_Latn,fra_Latn", epochs=0)
