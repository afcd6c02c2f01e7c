import os

import pytest

os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("HF_DATASETS_OFFLINE", "1")
os.environ.setdefault("TQDM_DISABLE", "1")
os.environ.setdefault("TRANSFORMERS_VERBOSITY", "error")

import torch  # noqa: E402

from babelscope.testing import FAMILIES, make_tiny_loaded, make_tiny_model, train_tiny_tokenizer  # noqa: E402

torch.set_num_threads(1)


@pytest.fixture(scope="session")
def tiny_tokenizer():
    """A byte-level BPE trained at session start on Latin, Cyrillic, Devanagari, CJK, Arabic, Greek."""
    return train_tiny_tokenizer()


@pytest.fixture(scope="session")
def tiny_loaded(tiny_tokenizer):
    """Factory: ``tiny_loaded("llama")`` -> LoadedModel (cached per family and seed)."""
    cache = {}

    def make(model_type="llama", seed=0):
        if (model_type, seed) not in cache:
            cache[model_type, seed] = make_tiny_loaded(model_type, tiny_tokenizer, seed)
        return cache[model_type, seed]

    return make


@pytest.fixture(scope="session")
def tiny_model_dir(tmp_path_factory, tiny_tokenizer):
    """A tiny llama saved as safetensors with its tokenizer (a local-folder model)."""
    path = tmp_path_factory.mktemp("tiny-llama")
    make_tiny_model("llama", len(tiny_tokenizer)).save_pretrained(path)
    tiny_tokenizer.save_pretrained(path)
    return path


@pytest.fixture(params=FAMILIES)
def family(request):
    return request.param
