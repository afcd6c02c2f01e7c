"""bs.loop on a tiny model: killed during its finetune step and run again with the same settings, it finds its
folder and resumes there without redoing the finished steps; its effect matrix agrees with the eval runs it
compares; the agree verb reads its runs; a different configuration is refused."""

import json

import pytest

import babelscope as bs
from babelscope.errors import UsageError
from babelscope.schema import validate
from finetune_fixtures import write_corpus

LANGUAGES = "eng_Latn,fra_Latn,rus_Cyrl"
EARLIER = ("baseline", "heads", "neurons", "layers", "ablate_heads")


@pytest.fixture(scope="module")
def corpus(tmp_path_factory):
    return str(write_corpus(tmp_path_factory.mktemp("corpus")))


def _options(model, corpus, out, **extra):
    return {"model": str(model), "source": corpus, "languages": LANGUAGES, "tasks": "translation,bpc", "limit": 4,
            "output_path": str(out), "n_boot": 200, "steps": {"heads": {"num_items": 8}, "neurons": {"max_tokens": 200},
                                                              "finetune": {"max_steps": 2, "checkpoint_every": 1},
                                                              "eval": {"batch_size": 4}},
            **extra}


def _stamp(path):
    return {p.name: p.stat().st_mtime_ns for p in path.iterdir() if p.is_file()}


def test_killed_in_finetune_resumes_without_redoing_steps(tiny_model_dir, corpus, tmp_path, monkeypatch):
    from babelscope.verbs import finetune

    real_train = finetune.train

    def killed(*args, **kwargs):
        raise KeyboardInterrupt("killed during finetune")

    monkeypatch.setattr(finetune, "train", killed)
    with pytest.raises(KeyboardInterrupt):
        bs.loop(**_options(tiny_model_dir, corpus, tmp_path, reinterpret=True))
    (loop_dir,) = (tmp_path / tiny_model_dir.name).glob("loop-*")
    state = json.loads((loop_dir / "loop.json").read_text())
    assert [s["status"] for s in state["steps"]][-1] == "running" and state["steps"][-1]["step"] == "finetune"
    first = {s["step"]: loop_dir / s["run"] for s in state["steps"] if s["run"]}
    stamps = {name: _stamp(first[name]) for name in EARLIER}
    ft = next(loop_dir.glob("*/finetune"))
    before_json = (ft / "before.json").stat().st_mtime_ns  # measured before the kill

    monkeypatch.setattr(finetune, "train", real_train)
    r = bs.loop(**_options(tiny_model_dir, corpus, tmp_path, reinterpret=True))
    assert r.path == loop_dir  # the same command found the unfinished loop folder
    validate(r.results)
    steps = {s["step"]: s for s in r.results["steps"]}
    for name in EARLIER:
        assert steps[name]["status"] == "reused" and loop_dir / steps[name]["run"] == first[name]
        assert _stamp(first[name]) == stamps[name]  # nothing in a finished step's folder was written again
    assert steps["finetune"]["status"] == "done" and loop_dir / steps["finetune"]["run"] == ft
    assert (ft / "before.json").stat().st_mtime_ns == before_json  # finetune resumed in its own folder
    assert json.loads((loop_dir / "loop.json").read_text())["status"] == "finished"
    _check_effects(r, loop_dir)
    _check_agreement(r, loop_dir)
    html = (loop_dir / "report.html").read_text()
    assert "Effect matrix" in html and "Agreement of heads, neurons and layers" in html and "Agreement before" in html


def _check_effects(r, loop_dir):
    """The effect matrix's before/after equal what the baseline and after eval runs report."""
    steps = {s["step"]: loop_dir / s["run"] for s in r.results["steps"] if s["run"]}
    base = json.loads((steps["baseline"] / "results.json").read_text())["tasks"]
    after = json.loads((steps["after"] / "results.json").read_text())["tasks"]
    rows = {(e["intervention"], e["task"], e["language"], e["metric"]): e for e in r.results["effects"]}
    for lang in LANGUAGES.split(","):
        bpc = rows["finetune", "bpc", lang, "bits_per_char"]
        assert bpc["before"] == pytest.approx(base["bpc"][lang]["bits_per_char"])
        assert bpc["after"] == pytest.approx(after["bpc"][lang]["bits_per_char"])
        assert bpc["low"] <= bpc["delta"] <= bpc["high"] and bpc["n"] == 4
        acc = rows["finetune", "translation", lang, "acc"]
        assert acc["before"] == pytest.approx(base["translation"][lang]["acc"])
        assert acc["after"] == pytest.approx(after["translation"][lang]["acc"])
    assert ("finetune", "translation", "all", "consistency") in rows
    assert ("finetune", "translation", "eng_Latn", "consistency") not in rows  # the reference agrees with itself
    assert {e["intervention"] for e in r.results["effects"]} == {"head ablation", "finetune"}
    assert set(r.results["effects_summary"]) == {"head ablation", "finetune"}
    frame = r.to_frame()
    assert {"intervention", "task", "language", "metric", "delta", "low", "high"} <= set(frame.columns)


def _check_agreement(r, loop_dir):
    doc = r.results["agreement"]
    assert [row["layer"] for row in doc["before"]["layers"]] == [0, 1] and "top_heads" in doc["before"]["layers"][0]
    assert doc["across"]["comparable"] and "after" in doc
    a = bs.agree(runs=str(loop_dir), output_path=str(loop_dir.parent.parent / "agree"), n_boot=100)
    validate(a.results)
    models = a.results["agreement"]["models"]
    assert len(models) == 2 and a.results["agreement"]["before_after"]["comparable"]  # base and fine-tuned
    base = models[str(r.results["model"]["name"])]
    assert base["layers"] == doc["before"]["layers"] and base["correlations"] == doc["before"]["correlations"]
    assert (a.path / "report.html").is_file()


def test_a_different_configuration_is_not_resumed(tiny_model_dir, corpus, tmp_path, monkeypatch):
    from babelscope.verbs import eval as eval_verb

    def killed(*args, **kwargs):
        raise KeyboardInterrupt("killed during the baseline")

    monkeypatch.setattr(eval_verb, "evaluate", killed)
    options = _options(tiny_model_dir, corpus, tmp_path, run_name="mine")
    with pytest.raises(KeyboardInterrupt):
        bs.loop(**options)
    with pytest.raises(UsageError, match="not the same run: --limit was 4 and is now 5"):
        bs.loop(**{**options, "limit": 5})
    fresh = _options(tiny_model_dir, corpus, tmp_path / "fresh")
    with pytest.raises(UsageError, match="steps: unknown step"):
        bs.loop(**{**fresh, "steps": {"finetuning": {}}})
    with pytest.raises(UsageError, match="steps.heads: unknown option.* num_itemz"):
        bs.loop(**{**fresh, "steps": {"heads": {"num_itemz": 3}}})
    assert not (tmp_path / "fresh").exists()  # bad input leaves no folder behind


def test_merge_halves_the_finetune_and_mask_improves_on_heads(tiny_model_dir, corpus, tmp_path):
    """--improve merge: a 0.5/0.5 linear merge of base and fine-tuned weights moves bits per character about
    half as far as the fine-tuned model (a small update is nearly linear); --improve mask evaluates the base
    model with the trained mask file."""
    options = _options(tiny_model_dir, corpus, tmp_path, ablate=False)
    r = bs.loop(**options, improve="merge")
    validate(r.results)
    assert [s["step"] for s in r.results["steps"]][-4:] == ["finetune", "merge", "after_finetune", "after"]
    rows = {(e["intervention"], e["language"]): e for e in r.results["effects"] if e["metric"] == "bits_per_char"}
    for lang in LANGUAGES.split(","):
        full, half = rows["finetune", lang]["delta"], rows["merge", lang]["delta"]
        assert full < 0 and 0.3 < half / full < 0.7
    m = bs.loop(**{**options, "steps": {**options["steps"], "mask": {"tasks": "translation", "train_limit": 4}}},
                improve="mask")
    validate(m.results)
    after = next(s for s in m.results["steps"] if s["step"] == "after")
    config = (m.path / after["run"] / "config.yaml").read_text()
    assert "head_mask=" in config and "mask/head_mask.safetensors" in config
    assert {e["intervention"] for e in m.results["effects"]} == {"mask"}
