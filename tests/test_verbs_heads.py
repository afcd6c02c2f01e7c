"""bs.heads and bs.mask on a tiny model: the Python API runs the verbs and results.json follows the schema."""

import json

import pytest

import babelscope as bs
from babelscope.errors import UsageError
from babelscope.interpret.lahis import LahisResult
from babelscope.models.head_mask import SoftHeadMask
from babelscope.schema import validate
from measure_fixtures import small_corpus

LANGS = ["eng_Latn", "fra_Latn", "deu_Latn"]


@pytest.fixture(scope="module")
def corpus_file(tmp_path_factory):
    path = tmp_path_factory.mktemp("corpus") / "aligned.jsonl"
    small_corpus(40).save(str(path))
    return str(path)


@pytest.fixture(scope="module")
def heads_run(tiny_model_dir, corpus_file, tmp_path_factory):
    out = tmp_path_factory.mktemp("heads")
    return bs.heads(model=str(tiny_model_dir), languages=LANGS, source=corpus_file, num_items=6, batch_size=4,
                    max_length=32, quantile=0.75, validate=True, num_eval_items=2, num_prompts=1,
                    max_new_tokens=2, output_path=str(out), run_name="h")


def test_heads_api_writes_scores_classes_and_a_valid_results_json(heads_run):
    res = json.loads((heads_run.path / "results.json").read_text())
    assert res == heads_run.results
    validate(res)
    assert res["verb"] == "heads" and res["languages"] == LANGS and res["model"]["source"] == "folder"
    assert res["n_items"] == {lang: 6 for lang in LANGS} and (res["n_layers"], res["n_heads"]) == (2, 4)
    assert set(res["specific"]) == set(res["candidates"]) == set(LANGS) and res["min_languages"] == 2
    assert set(res["ablation"]["delta"]) <= set(LANGS) and set(res["off_target"]) == set(LANGS)
    assert res["config"]["check"] is True and res["timings"]["total"] >= res["timings"]["score"]
    assert LahisResult.load(heads_run.path).scores.shape == (2, 4, 3)
    frame = heads_run.to_frame()
    assert set(frame["kind"]) <= {"specific", "candidates", "general"} and len(frame) > 0


def test_mask_api_trains_on_the_heads_run_and_reports_before_after(heads_run, tiny_model_dir, tmp_path):
    r = bs.mask(model=str(tiny_model_dir), languages="eng_Latn,fra_Latn", scores=str(heads_run.path),
                tasks="continuation", train_limit=2, eval_limit=2, epochs=1, num_heads=2,
                batch_size=4, output_path=str(tmp_path), run_name="m")
    res = json.loads((r.path / "results.json").read_text())
    validate(res)
    assert res["verb"] == "mask" and res["languages"] == ["eng_Latn", "fra_Latn"]
    assert res["stages"] == ["before", "after"] and res["selection"] == "lahis"
    assert set(res["before_after"]["continuation"]) == {"eng_Latn", "fra_Latn"}
    for lang, cell in res["before_after"]["continuation"].items():
        assert cell == {"before": res["before"]["continuation"][lang], "after": res["after"]["continuation"][lang]}
    assert res["n_trainable_parameters"] == 2 and len(res["heads"]) == len(res["values"]) == 2
    assert res["train_pairs"] == 4 and len(res["losses"]) == 4
    back, _ = SoftHeadMask.load(r.path / "head_mask.safetensors")
    assert back.values.numel() == 2
    frame = r.to_frame()
    assert set(frame["stage"]) == {"before", "after"} and set(frame["task"]) == {"continuation"}


def test_mask_options_are_checked_before_anything_runs(tmp_path):
    with pytest.raises(UsageError, match="missing required option --languages"):
        bs.mask(output_path=str(tmp_path))
    with pytest.raises(UsageError, match="--tasks xnli"):
        bs.mask(languages="eng_Latn", tasks="xnli", output_path=str(tmp_path))
    with pytest.raises(UsageError, match="--top_rate"):
        bs.mask(languages="eng_Latn", top_rate=0, output_path=str(tmp_path))
    with pytest.raises(UsageError, match="--quantile"):
        bs.heads(quantile=1.0)
    assert not list(tmp_path.iterdir())
