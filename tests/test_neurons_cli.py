"""The neurons / compare-neurons verbs end to end on a tiny model, and torchrun with 2 gloo processes."""

import json

import pytest
import torch
from tests.neurons_fixtures import CLI_LANGS, write_corpus

from babelscope.cli.main import main
from babelscope.runs import RunFolder
from babelscope.testing import run_cli

SMALL = ["--max_tokens", "160", "--eval_tokens", "48", "--top_rate", "0.05", "--batch_size", "4"]


@pytest.fixture(scope="module")
def corpus(tmp_path_factory):
    return write_corpus(tmp_path_factory.mktemp("corpus") / "aligned.jsonl")


def _neurons(model_dir, corpus, out, name, *extra):
    argv = [
        "neurons",
        "--model_args",
        f"pretrained={model_dir}",
        "--source",
        corpus,
        "--languages",
        CLI_LANGS,
        "--output_path",
        str(out),
        "--run_name",
        name,
        "--threads",
        "1",
        *SMALL,
        *extra,
    ]
    assert main(argv) == 0
    return next(p for p in out.rglob(name) if p.is_dir())


def test_neurons_verb_writes_everything(tiny_model_dir, corpus, tmp_path):
    run = _neurons(tiny_model_dir, corpus, tmp_path, "a", "--validate")
    for f in (
        "neurons.json",
        "layer_counts.json",
        "neurons_per_layer.png",
        "deactivation.json",
        "results.json",
        "README.md",
        "config.yaml",
        "artifacts/neurons.safetensors",
        "artifacts/neuron_stats.safetensors",
    ):
        assert (run / f).is_file(), f
    doc = json.loads((run / "neurons.json").read_text())
    assert doc["languages"] == CLI_LANGS.split(",") and set(doc["neurons"]) == set(doc["languages"])
    counts = json.loads((run / "layer_counts.json").read_text())["classes"]
    assert set(counts) == {"specific", "related", "general"} and all(len(v) == 2 for v in counts.values())
    check = json.loads((run / "deactivation.json").read_text())
    assert len(check["increase"]) == 3 and len(check["random_increase"][0]) == 3
    res = json.loads((run / "results.json").read_text())
    assert set(res["deactivation"]["per_language"]) == set(doc["languages"])
    assert (run / "neurons_per_layer.png").read_bytes()[:4] == b"\x89PNG"


def test_compare_neurons(tiny_model_dir, corpus, tmp_path):
    a = _neurons(tiny_model_dir, corpus, tmp_path, "a")
    b = _neurons(tiny_model_dir, corpus, tmp_path, "b", "--method", "lape")
    assert main(["compare-neurons", str(a), str(a), "--output_path", str(tmp_path / "c"), "--run_name", "same"]) == 0
    same = json.loads(next((tmp_path / "c").rglob("same/results.json")).read_text())
    assert all(v["jaccard"] in (1.0, None) for v in same["jaccard"].values()) and same["transitions"] == {}
    assert main(["compare-neurons", str(a), str(b), "--output_path", str(tmp_path / "c"), "--run_name", "ab"]) == 0
    ab = json.loads(next((tmp_path / "c").rglob("ab/results.json")).read_text())
    assert ab["method_a"] == "ternary" and ab["method_b"] == "lape"
    assert set(ab["per_layer"]) == {"specific", "related", "general"}


def test_resume_reuses_statistics(tiny_model_dir, corpus, tmp_path):
    run = _neurons(tiny_model_dir, corpus, tmp_path, "r")
    stats = run / "artifacts/neuron_stats.safetensors"
    before = stats.stat().st_mtime_ns
    _neurons(tiny_model_dir, corpus, tmp_path, "r", "--method", "lape")
    assert stats.stat().st_mtime_ns == before
    assert json.loads((run / "neurons.json").read_text())["method"] == "lape"


def test_torchrun_two_gloo_processes_equal_one(tiny_model_dir, corpus, tmp_path):
    one = _neurons(tiny_model_dir, corpus, tmp_path, "one")
    args = ["neurons", "--model_args", f"pretrained={tiny_model_dir}", "--source", corpus, "--languages", CLI_LANGS]
    run_cli([*args, "--output_path", str(tmp_path), "--run_name", "two", "--validate", *SMALL], nproc=2, port=29533)
    two = next(p for p in tmp_path.rglob("two") if p.is_dir())
    t1, _ = RunFolder(one).load_tensors("artifacts/neuron_stats.safetensors")
    t2, _ = RunFolder(two).load_tensors("artifacts/neuron_stats.safetensors")
    assert torch.equal(t1["over_zero"], t2["over_zero"]) and torch.equal(t1["tokens"], t2["tokens"])
    assert torch.allclose(t1["act_sum"], t2["act_sum"], rtol=1e-9, atol=1e-9)
    assert (
        json.loads((one / "neurons.json").read_text())["neurons"]
        == json.loads((two / "neurons.json").read_text())["neurons"]
    )
    assert (two / "deactivation.json").is_file()


def test_compare_flag_runs_a_second_model(tiny_model_dir, tiny_tokenizer, corpus, tmp_path):
    from babelscope.testing import make_tiny_model

    other = tmp_path / "models" / "other-model"
    make_tiny_model("llama", len(tiny_tokenizer), seed=1).save_pretrained(other)
    tiny_tokenizer.save_pretrained(other)
    out = tmp_path / "out"
    run = _neurons(tiny_model_dir, corpus, out, "cmp", "--compare", f"pretrained={other}")
    assert (out / "other-model" / "cmp" / "neurons.json").is_file()
    run = out / tiny_model_dir.name / "cmp"
    cmp = json.loads((run / "compare.json").read_text())
    assert cmp["model_b"] == str(other) and set(cmp["jaccard"]) == set(CLI_LANGS.split(","))
    assert sum(cmp["transition_matrix"]["counts"][0]) <= 2 * 64  # counts cover every neuron exactly once
    assert sum(map(sum, cmp["transition_matrix"]["counts"])) == 2 * 64
    b_selection = json.loads((out / "other-model" / "cmp" / "neurons.json").read_text())["selection"]
    assert cmp["lambda_from"] == "model_a" and b_selection["lambda"] == cmp["lambda"]  # one lambda for both


def test_count_answer_uses_only_generated_tokens_and_is_not_mixed_with_all(tiny_model_dir, corpus, tmp_path):
    from babelscope.models.reducers import NeuronReducer

    run = _neurons(tiny_model_dir, corpus, tmp_path, "ans", "--count", "answer")
    stats_file = run / "artifacts/neuron_stats.safetensors"
    answer = NeuronReducer.load(stats_file)
    assert answer.token_selection == "answer" and (answer.tokens > 0).all()
    _neurons(tiny_model_dir, corpus, tmp_path, "ans", "--count", "all")  # same run folder: must not reuse
    every = NeuronReducer.load(stats_file)
    assert every.token_selection == "all" and not torch.equal(every.tokens, answer.tokens)


def test_count_answer_on_question_translation_and_jsonl_prompts(tiny_model_dir, corpus, tmp_path):
    from babelscope.models.reducers import NeuronReducer

    run = _neurons(tiny_model_dir, corpus, tmp_path, "qt", "--count", "answer", "--prompts", "qt")
    assert NeuronReducer.load(run / "artifacts/neuron_stats.safetensors").token_selection == "answer:qt"
    assert json.loads((run / "results.json").read_text())["token_selection"] == "answer:qt"
    questions = tmp_path / "questions.jsonl"
    langs = CLI_LANGS.split(",")
    questions.write_text("".join(json.dumps({"language": lang, "question": f"Question {i} in {lang}?"}) + "\n"
                                 for lang in langs for i in range(6)))
    run = _neurons(tiny_model_dir, corpus, tmp_path, "q", "--count", "answer", "--prompts", str(questions))
    stats = NeuronReducer.load(run / "artifacts/neuron_stats.safetensors")
    assert stats.token_selection == f"answer:{questions}" and (stats.tokens > 0).all()
    bad = ["neurons", "--model_args", f"pretrained={tiny_model_dir}", "--source", corpus, "--prompts", "qt"]
    assert main([*bad, "--output_path", str(tmp_path)]) == 2  # --prompts without --count answer: a usage error
    assert main([*bad, "--count", "answer", "--prompts", "nope.jsonl", "--output_path", str(tmp_path)]) == 2


def test_lape_run_says_multi_language(tiny_model_dir, corpus, tmp_path):
    run = _neurons(tiny_model_dir, corpus, tmp_path, "l", "--method", "lape")
    counts = json.loads((run / "layer_counts.json").read_text())["classes"]
    assert set(counts) == {"specific", "multi-language", "general"}
    assert "related" not in json.dumps(json.loads((run / "results.json").read_text())["class_totals"])


def test_compare_neurons_uses_one_lambda(tiny_model_dir, corpus, tmp_path):
    a = _neurons(tiny_model_dir, corpus, tmp_path, "a", "--lambda", "0.05")
    b = _neurons(tiny_model_dir, corpus, tmp_path, "b", "--lambda", "0.15")
    out = str(tmp_path / "c")
    assert main(["compare-neurons", str(a), str(b), "--output_path", out, "--run_name", "ab"]) == 0
    ab = json.loads(next((tmp_path / "c").rglob("ab/results.json")).read_text())
    assert ab["lambda"] == 0.05 and ab["lambda_from"] == "run_a" and ab["own_lambda"] == {"a": 0.05, "b": 0.15}
    assert ab["reselected"] == ["b"]
    assert ab["transitions"] == {}  # same model and statistics at one lambda: nothing moves
    assert main(["compare-neurons", str(a), str(b), "--lambda", "0.1", "--output_path", out, "--run_name", "l"]) == 0
    fixed = json.loads(next((tmp_path / "c").rglob("l/results.json")).read_text())
    assert fixed["lambda"] == 0.1 and fixed["lambda_from"] == "option" and fixed["reselected"] == ["a", "b"]
    assert fixed["transitions"] == {}


def test_lna_paper_preset_counts_answers_to_question_translation_prompts(tiny_model_dir, corpus, tmp_path):
    run = _neurons(tiny_model_dir, corpus, tmp_path, "lna", "--protocol", "lna-paper")
    res = json.loads((run / "results.json").read_text())
    assert res["token_selection"] == "answer:qt" and res["selection"]["lambda_search"]["search"] == "official"
