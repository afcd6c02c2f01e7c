"""The Python API is the CLI: bs.<verb>(**options) runs the same code and returns a Result whose
results.json follows the shipped schema."""

import json

import pytest

import babelscope as bs
from babelscope.errors import UsageError
from babelscope.schema import validate
from measure_fixtures import small_corpus


@pytest.fixture(scope="module")
def corpus_file(tmp_path_factory):
    path = tmp_path_factory.mktemp("corpus") / "aligned.jsonl"
    small_corpus().save(str(path))
    return str(path)


def test_eval_api_returns_a_result_with_a_frame(tiny_model_dir, corpus_file, tmp_path):
    r = bs.eval(model=str(tiny_model_dir), tasks="continuation", languages=["eng_Latn", "fra_Latn"], limit=3,
                source=corpus_file, output_path=str(tmp_path))
    frame = r.to_frame()
    assert set(frame["language"]) == {"eng_Latn", "fra_Latn"} and "acc" in set(frame["metric"])
    on_disk = json.loads((r.path / "results.json").read_text())
    assert on_disk == r.results
    validate(on_disk)
    assert on_disk["verb"] == "eval" and on_disk["languages"] == ["eng_Latn", "fra_Latn"]
    assert on_disk["model"]["source"] == "folder" and len(on_disk["model"]["file_hash"]) == 64
    assert on_disk["environment"]["device"] == "cpu" and on_disk["environment"]["dtype"] == "float32"
    copy = tmp_path / "copy"
    r.save(copy)
    assert json.loads((copy / "results.json").read_text()) == r.results
    rescored = bs.rescore(run_folder=str(r.path))
    assert rescored.exit_code == 0
    validate(rescored.results)


def test_api_options_are_checked_like_flags():
    with pytest.raises(UsageError, match="unknown option"):
        bs.eval(modle="default")
    with pytest.raises(UsageError, match="--limit must be at least 1"):
        bs.eval(limit=0)
    with pytest.raises(UsageError, match="--batch_size must be a number"):
        bs.eval(batch_size="lots")


def test_a_config_object_is_accepted(tmp_path):
    from babelscope.verbs.eval import EvalConfig

    with pytest.raises(UsageError, match="--engine"):
        bs.eval(EvalConfig(engine="vllm"))


def test_every_registered_verb_has_a_schema_and_a_typed_config():
    """Every verb that writes results.json has a schema (report, compare and ls write none)."""
    from babelscope import verbs
    from babelscope.schema import verbs_with_schema

    for name in verbs.MODULES:
        spec = verbs.spec(name)
        if spec.writes_results:
            assert name in verbs_with_schema(), f"{name} has no schema/verbs/{name}.schema.json"
        for f in spec.config.fields():
            assert f.metadata.get("help"), f"{name}.{f.name} has no help text"
