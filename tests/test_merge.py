"""Merge invariants, layer selection, errors, sharded round trips (tiny Llama checkpoints)."""

from __future__ import annotations

import json

import pytest
import torch

from babelscope.errors import BabelscopeError, UnsupportedArchitectureError
from babelscope.improve.merge import merge
from babelscope.improve.merge.layer_swap import language_shares, layers_from_json
from merge_fixtures import N_LAYERS, build_models, read_all


@pytest.fixture(scope="module")
def models(tmp_path_factory):
    return build_models(tmp_path_factory.mktemp("merge-models"))


def _equal(a: dict, b: dict, atol: float = 0.0) -> None:
    assert sorted(a) == sorted(b)
    for name in a:
        assert a[name].shape == b[name].shape, name
        assert torch.allclose(a[name], b[name], atol=atol, rtol=0), name


def test_linear_with_itself_is_unchanged(models, tmp_path):
    recipe = {
        "merge_method": "linear",
        "models": [
            {"model": str(models["A"]), "parameters": {"weight": 0.3}},
            {"model": str(models["A_copy"]), "parameters": {"weight": 0.7}},
        ],
    }
    merge(recipe, tmp_path / "out")
    _equal(read_all(tmp_path / "out"), read_all(models["A"]), atol=1e-7)


@pytest.mark.parametrize("method", ["task_arithmetic", "ties"])
def test_task_methods_with_itself_are_unchanged(models, tmp_path, method):
    # two identical experts over a different base: the merged delta is the expert's own delta
    recipe = {
        "merge_method": method,
        "base_model": str(models["base"]),
        "models": [
            {"model": str(models["A"]), "parameters": {"weight": 0.5}},
            {"model": str(models["A_copy"]), "parameters": {"weight": 0.5}},
        ],
    }
    if method == "task_arithmetic":
        recipe["parameters"] = {"normalize": True}
    merge(recipe, tmp_path / "out")
    _equal(read_all(tmp_path / "out"), read_all(models["A"]), atol=1e-6)


def test_layer_swap_zero_layers_is_the_task_expert(models, tmp_path):
    recipe = {
        "merge_method": "layer_swap",
        "task_expert": str(models["A"]),
        "language_expert": str(models["B"]),
        "parameters": {"bottom": 0, "top": 0},
    }
    merge(recipe, tmp_path / "out")
    _equal(read_all(tmp_path / "out"), read_all(models["A"]))


def test_layer_swap_takes_outer_layers_from_language_expert(models, tmp_path):
    recipe = {
        "merge_method": "layer_swap",
        "task_expert": str(models["A"]),
        "language_expert": str(models["B"]),
        "parameters": {"bottom": 1, "top": 1, "transition_bottom": 1, "embeddings": "language"},
    }
    merge(recipe, tmp_path / "out")
    out, a, b = read_all(tmp_path / "out"), read_all(models["A"]), read_all(models["B"])
    q = "model.layers.{}.self_attn.q_proj.weight"
    assert torch.equal(out[q.format(0)], b[q.format(0)])
    assert torch.allclose(out[q.format(1)], 0.5 * a[q.format(1)] + 0.5 * b[q.format(1)], atol=1e-7)
    assert torch.equal(out[q.format(2)], a[q.format(2)])
    assert torch.equal(out[q.format(3)], b[q.format(3)])
    assert torch.equal(out["model.embed_tokens.weight"], b["model.embed_tokens.weight"])
    assert torch.equal(out["lm_head.weight"], a["lm_head.weight"])  # head: task (default)
    assert torch.equal(out["model.norm.weight"], a["model.norm.weight"])


def test_language_shares_ramp_across_transitions():
    p = {"bottom": 2, "top": 1, "transition_bottom": 3, "transition_top": 1}
    assert language_shares(10, p) == [1, 1, 0.75, 0.5, 0.25, 0, 0, 0, 0.5, 1]
    with pytest.raises(BabelscopeError, match="fit"):
        language_shares(4, {"bottom": 3, "top": 2})


def test_passthrough_of_all_layers_is_the_model(models, tmp_path):
    recipe = {
        "merge_method": "passthrough",
        "slices": [
            {"sources": [{"model": str(models["A"]), "layer_range": [0, 2]}]},
            {"sources": [{"model": str(models["A"]), "layer_range": [2, N_LAYERS]}]},
        ],
    }
    merge(recipe, tmp_path / "out")
    _equal(read_all(tmp_path / "out"), read_all(models["A"]))


def test_layer_index_is_exact(tmp_path):
    # 12 layers: a slice of layer 1 must never pick up layer 10 or 11
    from babelscope.testing import make_tiny_model

    path = tmp_path / "deep"
    make_tiny_model("llama", 64, seed=5, num_hidden_layers=12).save_pretrained(path)
    recipe = {"merge_method": "passthrough", "slices": [{"sources": [{"model": str(path), "layer_range": [1, 2]}]}]}
    merge(recipe, tmp_path / "out")
    out, src = read_all(tmp_path / "out"), read_all(path)
    layer_keys = [k for k in out if k.startswith("model.layers.")]
    assert {k.split(".")[2] for k in layer_keys} == {"0"}
    for k in layer_keys:
        assert torch.equal(out[k], src[k.replace("model.layers.0.", "model.layers.1.")]), k
    assert json.loads((tmp_path / "out" / "config.json").read_text())["num_hidden_layers"] == 1


def test_revert_resets_chosen_modules(models, tmp_path):
    recipe = {
        "merge_method": "revert",
        "model": str(models["A"]),
        "base_model": str(models["base"]),
        "parameters": {"layers": [0, 3], "modules": ["mlp"]},
    }
    merge(recipe, tmp_path / "out")
    out, a, base = read_all(tmp_path / "out"), read_all(models["A"]), read_all(models["base"])
    for name in out:
        reverted = ".mlp." in name and name.split(".")[2] in ("0", "3")
        assert torch.equal(out[name], (base if reverted else a)[name]), name


def test_shape_mismatch_names_first_tensor(models, tmp_path):
    recipe = {
        "merge_method": "linear",
        "models": [
            {"model": str(models["A"]), "parameters": {"weight": 1.0}},
            {"model": str(models["wide"]), "parameters": {"weight": 1.0}},
        ],
    }
    with pytest.raises(UnsupportedArchitectureError, match=r"model\.layers\.0\.mlp\.down_proj\.weight"):
        merge(recipe, tmp_path / "out")


def test_architecture_mismatch_names_first_tensor(models, tmp_path):
    recipe = {
        "merge_method": "linear",
        "models": [
            {"model": str(models["A"]), "parameters": {"weight": 1.0}},
            {"model": str(models["qwen"]), "parameters": {"weight": 1.0}},
        ],
    }
    with pytest.raises(UnsupportedArchitectureError, match=r"model\.layers\.0\.self_attn\.k_proj\.bias"):
        merge(recipe, tmp_path / "out")


def test_sharded_round_trip_loads_with_transformers(models, tmp_path):
    from transformers import AutoModelForCausalLM

    from babelscope.testing import make_tiny_model

    sharded_in = tmp_path / "sharded_in"
    make_tiny_model("llama", 400, seed=7, num_hidden_layers=N_LAYERS).save_pretrained(sharded_in, max_shard_size="60KB")
    assert (sharded_in / "model.safetensors.index.json").is_file()
    recipe = {
        "merge_method": "passthrough",
        "slices": [{"sources": [{"model": str(sharded_in), "layer_range": [0, N_LAYERS]}]}],
    }
    stats = merge(recipe, tmp_path / "out", shard_bytes=50_000)
    assert len(stats["files"]) > 2
    index = json.loads((tmp_path / "out" / "model.safetensors.index.json").read_text())
    assert set(index["weight_map"].values()) == set(stats["files"])
    _equal(read_all(tmp_path / "out"), read_all(sharded_in))
    merged = AutoModelForCausalLM.from_pretrained(tmp_path / "out").eval()
    original = AutoModelForCausalLM.from_pretrained(sharded_in).eval()
    ids = torch.tensor([[1, 5, 9, 17, 33]])
    with torch.no_grad():
        assert torch.equal(merged(ids).logits, original(ids).logits)


def test_output_folder_has_card_recipe_and_tokenizer(models, tmp_path):
    from transformers import AutoTokenizer

    recipe = {
        "merge_method": "layer_swap",
        "task_expert": str(models["A"]),
        "language_expert": str(models["B"]),
        "parameters": {"bottom": 1, "top": 1},
    }
    merge(recipe, tmp_path / "out")
    card = (tmp_path / "out" / "README.md").read_text()
    assert "layer_swap" in card and str(models["B"]) in card
    assert "bottom: 1" in (tmp_path / "out" / "merge_recipe.yaml").read_text()
    assert AutoTokenizer.from_pretrained(tmp_path / "out")("hello").input_ids


def test_layers_json(tmp_path):
    (tmp_path / "layers.json").write_text(json.dumps({"recommended": {"bottom": 3, "top": 2}, "layers": []}))
    assert layers_from_json(tmp_path) == (3, 2)
    (tmp_path / "bad.json").write_text("{}")
    with pytest.raises(BabelscopeError, match="recommended"):
        layers_from_json(tmp_path / "bad.json")


def test_bad_recipes_give_clear_errors(models, tmp_path):
    a = str(models["A"])
    with pytest.raises(BabelscopeError, match="missing parameter 'weight'"):
        merge({"merge_method": "linear", "models": [{"model": a}]}, tmp_path / "o1")
    with pytest.raises(BabelscopeError, match="unknown merge_method"):
        merge({"merge_method": "slerpy", "models": [{"model": a}]}, tmp_path / "o2")
    with pytest.raises(BabelscopeError, match="base_model"):
        merge({"merge_method": "ties", "models": [{"model": a, "parameters": {"weight": 1}}]}, tmp_path / "o3")
    with pytest.raises(BabelscopeError, match="not a local folder"):
        merge({"merge_method": "linear", "models": [{"model": "no/such-model"}]}, tmp_path / "o4")


def test_gemma3_reordered_slices_keep_layer_types_and_tied_head(tmp_path):
    from transformers import AutoModelForCausalLM

    from babelscope.testing import tiny_config

    src = tmp_path / "gemma"
    types = ["sliding_attention", "sliding_attention", "full_attention", "sliding_attention"]
    config = tiny_config("gemma3_text", 64, num_hidden_layers=4, layer_types=types)
    config.tie_word_embeddings = True
    torch.manual_seed(1)
    model = AutoModelForCausalLM.from_config(config)
    model.save_pretrained(src)
    slices = [{"sources": [{"model": str(src), "layer_range": r}]} for r in ([2, 4], [0, 2])]
    merge({"merge_method": "passthrough", "slices": slices}, tmp_path / "out")
    config = json.loads((tmp_path / "out" / "config.json").read_text())
    assert config["layer_types"] == types[2:] + types[:2]
    out, before = read_all(tmp_path / "out"), read_all(src)
    assert "lm_head.weight" not in out and "lm_head.weight" not in before
    q = "model.layers.{}.self_attn.q_proj.weight"
    assert torch.equal(out[q.format(0)], before[q.format(2)])
    assert torch.equal(out[q.format(3)], before[q.format(1)])
    merged = AutoModelForCausalLM.from_pretrained(tmp_path / "out")
    assert merged.config.layer_types == config["layer_types"]


def test_method_specs_are_built_by_keyword():
    from babelscope.improve.merge.methods import METHODS, REQUIRED, MethodSpec

    with pytest.raises(TypeError):
        MethodSpec("linear", lambda *a: None)  # positional fields are refused: every spec names its settings
    assert set(METHODS) == {"passthrough", "linear", "task_arithmetic", "ties"}
    assert METHODS["passthrough"].max_inputs == 1 and not METHODS["linear"].needs_base
    assert METHODS["linear"].input_params == {"weight": REQUIRED} and METHODS["linear"].base_gets_input_params
    assert METHODS["ties"].needs_base and not METHODS["ties"].base_gets_input_params
    assert METHODS["ties"].shared_params == {"normalize": True, "lambda": 1.0}
