"""`babelscope merge` end to end: run folder, --emit_mergekit_yaml, --layers auto, --evaluate."""

from __future__ import annotations

import json

import pytest
import torch
import yaml

from babelscope.cli.main import main
from measure_fixtures import small_corpus
from merge_fixtures import build_models, read_all, write_recipe


@pytest.fixture(scope="module")
def models(tmp_path_factory):
    return build_models(tmp_path_factory.mktemp("cli-models"))


def _recipe(tmp_path, models, **params) -> str:
    recipe = {
        "name": "swap",
        "merge_method": "layer_swap",
        "task_expert": str(models["A"]),
        "language_expert": str(models["B"]),
        "parameters": params,
    }
    path = write_recipe(tmp_path, recipe)
    return str(path)


def test_layers_auto_emit_and_evaluate(models, tmp_path):
    corpus = tmp_path / "aligned.jsonl"
    small_corpus().save(str(corpus))
    (tmp_path / "layers.json").write_text(json.dumps({"recommended": {"bottom": 1, "top": 1}, "layers": [0, 3]}))
    argv = ["merge", _recipe(tmp_path, models), "--output_path", str(tmp_path / "runs"), "--run_name", "r"]
    argv += ["--emit_mergekit_yaml", str(tmp_path / "mk.yml"), "--layers", "auto", "--layers_json", str(tmp_path)]
    argv += ["--evaluate", "--tasks", "continuation", "--languages", "eng_Latn,deu_Latn", "--limit", "4"]
    assert main([*argv, "--source", str(corpus)]) == 0
    run = tmp_path / "runs" / "swap" / "r"
    results = json.loads((run / "results.json").read_text())
    assert results["recipe"]["parameters"] == {"bottom": 1, "top": 1}
    assert results["stages"] == ["task_expert", "language_expert", "merged"]
    ba = results["before_after"]["continuation"]  # {task: {language: {stage: value}}}
    assert set(ba) == {"eng_Latn", "deu_Latn"}
    assert set(ba["deu_Latn"]) == {"task_expert", "language_expert", "merged"}
    assert all(isinstance(v, float) for row in ba.values() for v in row.values())
    assert (run / "eval" / "merged" / "results.json").is_file()
    out, a, b = read_all(run / "model"), read_all(models["A"]), read_all(models["B"])
    assert torch.equal(out["model.layers.0.mlp.up_proj.weight"], b["model.layers.0.mlp.up_proj.weight"])
    assert torch.equal(out["model.layers.1.mlp.up_proj.weight"], a["model.layers.1.mlp.up_proj.weight"])
    emitted = yaml.safe_load((tmp_path / "mk.yml").read_text())
    assert emitted["merge_method"] == "linear" and len(emitted["slices"]) == 3
    assert "Before / after" in (run / "README.md").read_text()


def test_dry_run_writes_only_the_mergekit_yaml(models, tmp_path):
    argv = ["merge", _recipe(tmp_path, models, bottom=2), "--dry_run", "--output_path", str(tmp_path / "runs")]
    assert main([*argv, "--emit_mergekit_yaml", str(tmp_path / "mk.yml")]) == 0
    assert (tmp_path / "mk.yml").is_file() and not (tmp_path / "runs").exists()


def test_bad_recipe_exits_2_with_one_line(models, tmp_path, capsys):
    assert main(["merge", _recipe(tmp_path, models, bottom=9), "--output_path", str(tmp_path / "runs")]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert any("must be >= 0 and fit" in line for line in err)


def test_example_recipe_runs_on_local_experts(models, tmp_path):
    # the documented example recipe, pointed at the fixture experts (4 layers fit 2 + 1 + 1)
    from pathlib import Path

    recipe = yaml.safe_load((Path(__file__).parents[1] / "examples/layer_swap/recipe.yaml").read_text())
    recipe.update(task_expert=str(models["A"]), language_expert=str(models["B"]))
    path = write_recipe(tmp_path, recipe)
    assert main(["merge", str(path), "--output_path", str(tmp_path / "runs"), "--run_name", "r"]) == 0
    from transformers import AutoModelForCausalLM

    model = AutoModelForCausalLM.from_pretrained(tmp_path / "runs" / "layer-swap-demo" / "r" / "model")
    assert model.config.num_hidden_layers == 4


def test_bfloat16_output(models, tmp_path):
    recipe = {
        "merge_method": "linear",
        "out_dtype": "bfloat16",
        "models": [
            {"model": str(models["A"]), "parameters": {"weight": 1}},
            {"model": str(models["B"]), "parameters": {"weight": 1}},
        ],
    }
    path = write_recipe(tmp_path, recipe)
    assert main(["merge", str(path), "--output_path", str(tmp_path / "runs"), "--run_name", "r"]) == 0
    out = tmp_path / "runs" / "recipe" / "r" / "model"
    tensors, a, b = read_all(out), read_all(models["A"]), read_all(models["B"])
    name = "model.layers.2.mlp.down_proj.weight"
    assert tensors[name].dtype == torch.bfloat16
    assert torch.equal(tensors[name], ((a[name] + b[name]) / 2).to(torch.bfloat16))
    assert json.loads((out / "config.json").read_text())["dtype"] == "bfloat16"
