"""layers --diff: per-layer parameter change of an expert against its base, the overlap of two experts'
most-changed parameters, and layer swapping's bottom/top from them (planted changes must be found)."""

import json

import pytest
import torch

import babelscope as bs
from babelscope.interpret.param_diff import layer_change, recommend_swap
from babelscope.schema import validate
from babelscope.testing import make_tiny_model


def _save(model, path, tokenizer):
    model.save_pretrained(path)
    tokenizer.save_pretrained(path)
    return str(path)


@pytest.fixture(scope="module")
def experts(tmp_path_factory, tiny_tokenizer):
    """base; a language expert that changed layers 0 and 3; a math expert that changed 1 and 2, and
    layer 3 exactly as the language expert did."""
    root = tmp_path_factory.mktemp("experts")
    base = make_tiny_model("llama", len(tiny_tokenizer), num_hidden_layers=4)
    paths = {"base": _save(base, root / "base", tiny_tokenizer)}
    g = torch.Generator().manual_seed(0)
    shared = {n: torch.randn(p.shape, generator=g) * 0.5 for n, p in base.named_parameters() if ".layers.3." in n}
    for name, layers in (("language", (0, 3)), ("math", (1, 2, 3))):
        model = make_tiny_model("llama", len(tiny_tokenizer), num_hidden_layers=4)
        model.load_state_dict(base.state_dict())
        with torch.no_grad():
            for n, p in model.named_parameters():
                if any(f".layers.{i}." in n for i in layers):
                    p += shared[n] if ".layers.3." in n else torch.randn(p.shape, generator=g) * 0.5
        paths[name] = _save(model, root / name, tiny_tokenizer)
    return paths


def test_planted_changes_and_overlap_are_found(experts):
    d = layer_change(experts["base"], experts["language"], experts["math"], top_rate=0.05)
    assert d["layers"] == [0, 1, 2, 3]
    assert d["change"][1] == 0 and d["change"][2] == 0 and d["change"][0] > 0.1 and d["change"][3] > 0.1
    assert d["change_other"][0] == 0 and min(d["change_other"][1:]) > 0.1
    assert d["overlap"][3] == 1.0  # both experts changed layer 3 the same way
    assert d["overlap"][0] < 0.5  # the math expert did not touch layer 0
    swap = recommend_swap(d["change"])
    assert (swap["bottom"], swap["top"]) == (1, 1)


def test_layers_diff_verb_writes_layers_json_for_layer_swapping(experts, tmp_path):
    r = bs.layers(diff=f"{experts['base']},{experts['language']}", output_path=str(tmp_path))
    validate(r.results)
    doc = json.loads((r.path / "layers.json").read_text())
    assert doc["recommended"]["bottom"] == 1 and doc["recommended"]["top"] == 1
    assert set(doc["ranking"][:2]) == {0, 3}
    assert r.results["param_diff"]["change"][1] == 0


def test_diff_needs_two_or_three_model_folders(experts):
    from babelscope.errors import UsageError

    with pytest.raises(UsageError, match="BASE,EXPERT"):
        bs.layers(diff=experts["base"])
    with pytest.raises(UsageError, match="not a model folder"):
        bs.layers(diff=f"{experts['base']},/nonexistent/expert")
