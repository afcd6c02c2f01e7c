"""babelscope merge vs mergekit 0.1.5 (in-process), tensor by tensor within 1e-6 in fp32.

The same recipe runs through both tools; layer_swap and revert run through mergekit as the
``linear`` YAML that ``--emit_mergekit_yaml`` writes.
"""

from __future__ import annotations

import logging

import pytest
import torch
import yaml

from babelscope.improve.merge import merge, prepare
from babelscope.improve.merge.layer_swap import to_mergekit_yaml
from merge_fixtures import N_LAYERS, build_models, read_all

pytest.importorskip("mergekit")


@pytest.fixture(scope="module")
def models(tmp_path_factory):
    return build_models(tmp_path_factory.mktemp("parity-models"))


def _recipes(m) -> dict[str, dict]:
    a, b, base = str(m["A"]), str(m["B"]), str(m["base"])
    return {
        "passthrough": {
            "merge_method": "passthrough",
            "dtype": "float32",
            "slices": [
                {"sources": [{"model": a, "layer_range": [0, 2]}]},
                {"sources": [{"model": b, "layer_range": [1, N_LAYERS]}]},
            ],
        },
        "linear": {  # gradient weights and a filter, normalised
            "merge_method": "linear",
            "dtype": "float32",
            "models": [
                {"model": a, "parameters": {"weight": [0.2, 0.9, 0.5]}},
                {"model": b, "parameters": {"weight": [{"filter": "self_attn", "value": 0.7}, {"value": 0.4}]}},
            ],
        },
        "task_arithmetic": {
            "merge_method": "task_arithmetic",
            "base_model": base,
            "dtype": "float32",
            "parameters": {"lambda": 0.8},
            "models": [
                {"model": a, "parameters": {"weight": 0.6}},
                {"model": b, "parameters": {"weight": [0.1, 0.9]}},
            ],
        },
        "ties": {
            "merge_method": "ties",
            "base_model": base,
            "dtype": "float32",
            "models": [
                {"model": a, "parameters": {"weight": 1.0, "density": 0.5}},
                {"model": b, "parameters": {"weight": 0.6, "density": 0.7}},
            ],
        },
        "ties_slices": {  # sliced ties, unnormalised, base named per slice
            "merge_method": "ties",
            "base_model": base,
            "dtype": "float32",
            "parameters": {"normalize": False, "lambda": 1.3},
            "slices": [
                {
                    "sources": [
                        {"model": a, "layer_range": [0, N_LAYERS], "parameters": {"weight": 0.5, "density": 0.3}},
                        {"model": b, "layer_range": [0, N_LAYERS], "parameters": {"weight": 0.5, "density": 0.9}},
                        {"model": base, "layer_range": [0, N_LAYERS]},
                    ]
                }
            ],
        },
        "layer_swap": {
            "merge_method": "layer_swap",
            "task_expert": a,
            "language_expert": b,
            "parameters": {"bottom": 1, "top": 1, "transition_top": 1, "head": "average"},
        },
        "revert": {
            "merge_method": "revert",
            "model": a,
            "base_model": base,
            "parameters": {"layers": [1, 2], "modules": ["self_attn"], "embeddings": True},
        },
    }


def _run_mergekit(config: dict, out) -> None:
    from mergekit.config import MergeConfiguration
    from mergekit.merge import MergeOptions, run_merge

    logging.getLogger("mergekit").setLevel(logging.WARNING)
    cfg = MergeConfiguration.model_validate(config)
    run_merge(cfg, out_path=str(out), options=MergeOptions(device="cpu", copy_tokenizer=True, quiet=True))


@pytest.mark.parametrize(
    "name", ["passthrough", "linear", "task_arithmetic", "ties", "ties_slices", "layer_swap", "revert"]
)
def test_matches_mergekit(models, tmp_path, name):
    raw = _recipes(models)[name]
    ours = tmp_path / "ours"
    merge(raw, ours)
    theirs = tmp_path / "mergekit"
    _run_mergekit(yaml.safe_load(to_mergekit_yaml(prepare(raw))), theirs)
    a, b = read_all(ours), read_all(theirs)
    assert sorted(a) == sorted(b)
    for tensor in a:
        assert a[tensor].dtype == b[tensor].dtype, tensor
        assert torch.allclose(a[tensor], b[tensor], atol=1e-6, rtol=0), (tensor, (a[tensor] - b[tensor]).abs().max())
    inputs = [read_all(models[k]) for k in ("A", "B", "base")]
    changed = [t for t in a if not any(torch.equal(a[t], x[t]) for x in inputs if t in x)]
    if name in ("linear", "task_arithmetic", "ties", "ties_slices"):
        assert changed  # the merge did something, so agreement is not trivial


def test_ties_in_chunks_matches_mergekit(models, tmp_path, monkeypatch):
    from babelscope.improve.merge import methods as merge_methods

    monkeypatch.setattr(merge_methods, "TIES_CHUNK", 97)  # many chunks per tensor, ragged last chunk
    raw = _recipes(models)["ties"]
    merge(raw, tmp_path / "ours")
    _run_mergekit(yaml.safe_load(to_mergekit_yaml(prepare(raw))), tmp_path / "mergekit")
    a, b = read_all(tmp_path / "ours"), read_all(tmp_path / "mergekit")
    assert sorted(a) == sorted(b)
    for tensor in a:
        assert torch.allclose(a[tensor], b[tensor], atol=1e-6, rtol=0), tensor
