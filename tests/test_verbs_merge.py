"""bs.merge on tiny checkpoints: the results envelope, the one before/after shape, one-line errors."""

from __future__ import annotations

import pytest
import torch

import babelscope as bs
from babelscope.errors import UsageError
from babelscope.schema import validate
from measure_fixtures import small_corpus
from merge_fixtures import build_models, read_all, write_recipe


@pytest.fixture(scope="module")
def models(tmp_path_factory):
    return build_models(tmp_path_factory.mktemp("verb-models"))


def _linear(tmp_path, models, weight_b=1) -> str:
    recipe = {"name": "lin", "merge_method": "linear",
              "models": [{"model": str(models["A"]), "parameters": {"weight": 1}},
                         {"model": str(models["B"]), "parameters": {"weight": weight_b}}]}
    path = write_recipe(tmp_path, recipe)
    return str(path)


def test_merge_evaluate_writes_the_envelope_and_before_after(models, tmp_path):
    corpus = tmp_path / "aligned.jsonl"
    small_corpus().save(str(corpus))
    r = bs.merge(recipe=_linear(tmp_path, models, weight_b=3), evaluate=True, tasks="continuation",
                 languages=["eng_Latn", "fra_Latn"], limit=3, source=str(corpus),
                 output_path=str(tmp_path / "runs"), run_name="r")
    validate(r.results)
    res = r.results
    assert res["verb"] == "merge" and res["languages"] == ["eng_Latn", "fra_Latn"]
    model_dir = tmp_path / "runs" / "lin" / "r" / "model"
    assert r.path == model_dir.parent and res["model"]["name"] == str(model_dir)
    assert res["model"]["source"] == "folder" and len(res["model"]["file_hash"]) == 64
    assert res["stages"] == ["A", "B", "merged"] and res["before_after_metric"] == {"continuation": "acc"}
    table = res["before_after"]["continuation"]
    assert set(table) == {"eng_Latn", "fra_Latn"}
    assert all(set(row) == {"A", "B", "merged"} and all(isinstance(v, float) for v in row.values())
               for row in table.values())
    assert res["merge"]["tensors"] > 0 and res["merge"]["method"] == "linear"
    name = "model.layers.1.mlp.up_proj.weight"
    out, a, b = read_all(model_dir), read_all(models["A"]), read_all(models["B"])
    assert torch.allclose(out[name], (a[name] + 3 * b[name]) / 4, atol=1e-6)
    sub = bs.verbs.result.Result.load(r.path / "eval" / "merged")
    validate(sub.results)  # each model's own evaluation is an eval run of the merged folder
    assert sub.results["model"]["name"] == str(model_dir)
    frame = r.to_frame()
    assert list(frame.columns) == ["task", "language", "stage", "value"] and len(frame) == 6
    assert "Before / after: continuation (acc)" in (r.path / "README.md").read_text()


def test_merge_without_evaluate_has_no_before_after(models, tmp_path):
    r = bs.merge(recipe=_linear(tmp_path, models), output_path=str(tmp_path / "runs"), shard_size="20KB")
    validate(r.results)
    assert r.results["languages"] == [] and "before_after" not in r.results
    assert len(list((r.path / "model").glob("*.safetensors"))) > 1  # small shards


@pytest.mark.parametrize("dry_run", [False, True])
def test_a_word_for_a_weight_is_one_line(models, tmp_path, dry_run):
    with pytest.raises(UsageError, match="weight.*must be a number.*'heavy'"):
        bs.merge(recipe=_linear(tmp_path, models, weight_b="heavy"), dry_run=dry_run,
                 output_path=str(tmp_path / "runs"))
    assert not (tmp_path / "runs").exists()


def test_option_errors_before_anything_runs(models, tmp_path):
    recipe = _linear(tmp_path, models)
    with pytest.raises(UsageError, match="--evaluate needs --tasks and --languages"):
        bs.merge(recipe=recipe, evaluate=True, tasks="continuation")
    with pytest.raises(UsageError, match="--shard_size 'big' is not a size"):
        bs.merge(recipe=recipe, shard_size="big")
    with pytest.raises(UsageError, match="missing required option --recipe"):
        bs.merge(dry_run=True)
    r = bs.merge(recipe=recipe, dry_run=True, output_path=str(tmp_path / "runs"))
    assert r.path is None and "plan OK" in r.summary and not (tmp_path / "runs").exists()


@pytest.mark.parametrize("params,why", [({"bottom": "two"}, "parameters.bottom must be an integer, not 'two'"),
                                        ({"bottom": 1, "transition_weight": "heavy"},
                                         "parameters.transition_weight must be a number, not 'heavy'")])
def test_a_word_for_a_layer_swap_parameter_is_one_line(models, tmp_path, params, why):
    recipe = {"merge_method": "layer_swap", "task_expert": str(models["A"]), "language_expert": str(models["B"]),
              "parameters": params}
    path = write_recipe(tmp_path, recipe)
    with pytest.raises(UsageError, match=why):
        bs.merge(recipe=str(path), dry_run=True)
