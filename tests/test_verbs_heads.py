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
                    max_length=32, quantile=0.75, validate=True, ablation="candidates", num_eval_items=2,
                    num_prompts=1, max_new_tokens=2, output_path=str(out), run_name="h")


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


def test_mask_per_language_trains_one_mask_per_language_on_its_own_raw_top_heads(heads_run, tiny_model_dir,
                                                                                   tmp_path):
    """The lahis-paper protocol's shape, shrunk: a QA file with the paper's template and pool split, one mask
    per language on that language's own top-n raw LAHIS heads, each language evaluated with its own mask."""
    from babelscope import protocols
    from babelscope.interpret.lahis import head_name, top_heads
    from babelscope.testing import SAMPLE_TEXTS

    data = tmp_path / "qa.jsonl"
    with open(data, "w", encoding="utf-8") as f:
        for i in range(16):
            lang = ["eng_Latn", "fra_Latn"][i % 2]
            f.write(json.dumps({"language": lang, "context": SAMPLE_TEXTS[i % 4], "question": f"What {i}?",
                                "answer": SAMPLE_TEXTS[i % 4].split()[1] + "."}) + "\n")
    preset = protocols.load("lahis-paper")
    assert preset.verb == "mask" and preset.values["per_language"] is True
    assert (preset.values["train_limit"], preset.values["train_pool"], preset.values["epochs"]) == (200, 390, 2)
    shrunk = {"train_limit": 3, "train_pool": 4, "epochs": 1}  # the paper's sizes, shrunk (the flags win)
    r = bs.mask(protocol="lahis-paper", model=str(tiny_model_dir), languages="eng_Latn,fra_Latn",
                scores=str(heads_run.path), train_data=str(data), batch_size=4, output_path=str(tmp_path / "out"),
                run_name="pl", **shrunk)
    res = r.results
    validate(res)
    assert res["config"]["qa_template"] == "lahis" and res["config"]["protocol"] == "lahis-paper"
    assert res["mode"] == "per_language" and set(res["heads"]) == {"eng_Latn", "fra_Latn"}
    scores = LahisResult.load(heads_run.path)
    for lang in ("eng_Latn", "fra_Latn"):  # n = max(2, int(0.02 * 8)) = 2 on the 2 x 4 tiny model
        assert res["heads"][lang] == [head_name(h, 4) for h in top_heads(scores.of(lang), 2)]
        assert res["train_pairs"][lang] == 3 and len(res["losses"][lang]) == 3
        back, meta = SoftHeadMask.load(r.path / res["mask_files"][lang])
        assert back.values.tolist() == pytest.approx(res["values"][lang])
        assert json.loads(meta["languages"]) == [lang]
    cells = res["before_after"]["qa_substring"]
    assert set(cells) == {"eng_Latn", "fra_Latn"} and all(set(c) == {"before", "after"} for c in cells.values())
    assert res["n_trainable_parameters"] == 4 and set(r.extras["masks"]) == {"eng_Latn", "fra_Latn"}
    assert "one per language" in (r.path / "README.md").read_text()


def test_heads_reproduce_official_with_the_official_ablation(tiny_model_dir, corpus_file, tmp_path):
    r = bs.heads(model=str(tiny_model_dir), languages=LANGS, source=corpus_file, num_items=3, max_length=16,
                 quantile=0.5, reproduce_official=True, validate=True, ablation="official", num_eval_items=2,
                 num_prompts=0, output_path=str(tmp_path), run_name="ho")
    res = r.results
    validate(res)
    assert res["settings"]["accumulation"] == "bfloat16 (official)" and res["min_languages"] == 4
    assert res["general"] == []  # 3 languages can never reach the official k = 4
    abl = res["ablation"]
    assert abl["metric"] == "mean_exp_loss" and abl["style"] == "official" and abl["n_heads_zeroed"] == 1
    assert "ablation_specific" not in res and all(len(h) <= 1 for h in abl["heads"].values())
    assert all(v > 1.0 for v in abl["base_loss"].values())  # exp(loss) of a random tiny model
    assert "mean exp(loss)" in (r.path / "README.md").read_text()
