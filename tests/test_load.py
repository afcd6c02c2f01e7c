import shutil

import pytest
import torch

from babelscope.errors import ModelLoadError, UnsupportedArchitectureError, UsageError
from babelscope.models.adapters import ARCHITECTURES, Architecture, get_adapter, register_architecture
from babelscope.models.load import load_model, parse_model_args


def test_parse_model_args():
    assert parse_model_args("pretrained=x,dtype=bfloat16,parallelize=True") == {
        "pretrained": "x", "dtype": "bfloat16", "parallelize": True}
    with pytest.raises(UsageError, match="key=value"):
        parse_model_args("pretrained")


def test_local_folder_loads_with_tokenizer(tiny_model_dir):
    loaded = load_model(str(tiny_model_dir))
    assert loaded.adapter.model_type == "llama" and loaded.adapter.n_kv_heads == 2
    ids = loaded.tokenizer("Hallo Welt", return_tensors="pt")
    with torch.no_grad():
        assert torch.isfinite(loaded.model(**ids).logits).all()
    card = loaded.card()
    assert card["layers"] == 2 and card["heads"] == 4 and card["parameters"] > 0


def test_dtype_is_applied(tiny_model_dir):
    assert loaded_dtype(load_model(str(tiny_model_dir), dtype="bfloat16")) == torch.bfloat16


def loaded_dtype(loaded):
    return next(loaded.model.parameters()).dtype


def test_pickle_checkpoint_refused_unless_allowed(tiny_model_dir, tmp_path):
    folder = tmp_path / "pickled"
    shutil.copytree(tiny_model_dir, folder)
    state = load_model(str(tiny_model_dir)).model.state_dict()
    (folder / "model.safetensors").unlink()
    torch.save(state, folder / "pytorch_model.bin")
    with pytest.raises(ModelLoadError, match="pickle"):
        load_model(str(folder))
    assert load_model(str(folder), allow_pickle=True).adapter.n_layers == 2


def test_missing_paths_and_offline_hub_are_one_line_errors(tmp_path, monkeypatch):
    with pytest.raises(ModelLoadError, match="does not exist"):
        load_model(str(tmp_path / "missing"))
    with pytest.raises(ModelLoadError, match="does not exist"):
        load_model(str(tmp_path / "missing.gguf"))
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    with pytest.raises(ModelLoadError, match="HF_HUB_OFFLINE") as err:
        load_model("some-org/some-model-that-is-not-here")
    assert "\n" not in str(err.value)


def test_unknown_model_argument(tiny_model_dir):
    with pytest.raises(UsageError, match="unknown model argument"):
        load_model(str(tiny_model_dir), dtyp="float32")


def test_model_object_is_accepted_as_is(tiny_loaded):
    tiny = tiny_loaded("qwen3")
    loaded = load_model(tiny.model, tokenizer=tiny.tokenizer)
    assert loaded.model is tiny.model and loaded.adapter.model_type == "qwen3"


def test_unknown_architecture_lists_supported_and_how_to_register(tiny_loaded):
    config = tiny_loaded("llama").model.config.__class__(**tiny_loaded("llama").model.config.to_dict())
    config.model_type = "mystery"
    with pytest.raises(UnsupportedArchitectureError, match="supported: cohere.*register_architecture"):
        get_adapter(config)
    try:
        register_architecture("mystery", ARCHITECTURES["llama"])
        assert get_adapter(config).n_heads == 4
    finally:
        ARCHITECTURES.pop("mystery")
    assert isinstance(ARCHITECTURES["gpt2"], Architecture)


def test_adapter_numbers_for_every_family(tiny_loaded, family):
    a = tiny_loaded(family).adapter
    assert a.n_layers == 2 and a.n_heads == 4 and a.head_dim == 8 and a.d_mlp == 64
    assert a.n_kv_heads == (4 if family == "gpt2" else 2)
    model = tiny_loaded(family).model
    layer = a.layer(model, 1)
    assert a.o_proj(layer) is not None and a.down(layer) is not None and a.final_norm(model) is not None
    names = [n for n, _ in model.named_parameters() if n.startswith(a.layer_prefix(1))]
    assert names and not any(n.startswith(a.layer_prefix(0)) for n in names)
