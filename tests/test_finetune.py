"""Layer-targeted finetuning: selection, freezing, LoRA placement, loss, resume, revert."""

import pytest
import torch

from babelscope.data.parallel import Doc, pack
from babelscope.errors import UsageError
from babelscope.improve.layer_finetune import (
    add_lora,
    freeze_except,
    layer_param_names,
    parse_layers,
    read_layers_json,
    revert_layers,
    snapshot_layers,
)
from babelscope.improve.train_loop import TrainConfig, train
from babelscope.testing import make_tiny_loaded

TEXTS = [
    "en: The cat sat on the mat.\nfr: Le chat était assis sur le tapis.",
    "de: Die Katze saß auf der Matte.\nen: The cat sat on the mat.",
    "en: Look out of the window.\nfr: Regarde par la fenêtre.",
]


def tiny(tok, layers=4, seed=0):
    return make_tiny_loaded("llama", tok, seed=seed, num_hidden_layers=layers)


def chunks(tok, n=6, length=24):
    docs = [Doc("", TEXTS[i % len(TEXTS)], "parallel", str(i)) for i in range(n)]
    return pack(docs, tok, length)


def state(model):
    return {n: p.detach().clone() for n, p in model.named_parameters()}


def test_parse_layers_exact_and_errors():
    assert parse_layers("0-2,7", 12) == [0, 1, 2, 7]
    assert parse_layers("all", 3) == [0, 1, 2]
    assert parse_layers([1, 1, 10], 12) == [1, 10]
    for bad in ("0-12", "-1", "5-3", "x", ""):
        with pytest.raises(UsageError, match="valid layers are 0-11"):
            parse_layers(bad, 12)


def test_layer_one_never_matches_layer_ten(tiny_tokenizer):
    loaded = tiny(tiny_tokenizer, layers=12)
    names = layer_param_names(loaded.model, loaded.adapter, [1])
    assert names and all(n.startswith("model.layers.1.") for n in names)


def test_selection_matching_nothing_is_loud(tiny_tokenizer):
    loaded = tiny(tiny_tokenizer)
    with pytest.raises(UsageError, match="valid layers are 0-3"):
        layer_param_names(loaded.model, loaded.adapter, [7])


def test_read_layers_json(tmp_path):
    (tmp_path / "layers.json").write_text('{"recommended": {"layers": [0, 1, 3]}}')
    assert read_layers_json(tmp_path) == [0, 1, 3]
    (tmp_path / "bad.json").write_text('{"layers": [0]}')
    with pytest.raises(UsageError, match="recommended.layers"):
        read_layers_json(tmp_path / "bad.json")


def test_full_frozen_parameters_bit_identical_and_loss_goes_down(tiny_tokenizer):
    loaded = tiny(tiny_tokenizer)
    before = state(loaded.model)
    share = freeze_except(loaded, [1, 2])
    assert 0 < share["share"] < 1 and share["trainable"] < share["total"]
    data = chunks(tiny_tokenizer) * 7  # 30 steps of 2: the loop never wraps, so the data is repeated explicitly
    out = train(loaded.model, data, TrainConfig(max_steps=30, batch_size=2, lr=2e-2), progress=False)
    after = state(loaded.model)
    changed = {n for n in before if not torch.equal(before[n], after[n])}
    assert changed and all(n.startswith(("model.layers.1.", "model.layers.2.")) for n in changed)
    assert all(torch.equal(before[n], after[n]) for n in before if n not in changed)
    assert sum(out["losses"][-5:]) / 5 < sum(out["losses"][:5]) / 5 - 0.1  # 5.93 -> 5.68 here


def test_lora_on_layer_one_only_adds_weights_there(tiny_tokenizer):
    loaded = tiny(tiny_tokenizer, layers=12)
    base_names = {n for n, _ in loaded.model.named_parameters()}
    peft_model = add_lora(loaded, [1], r=4, alpha=8)
    added = [n for n, _ in peft_model.named_parameters() if "lora_" in n]
    assert added and all(".model.layers.1." in n for n in added)
    trainable = [n for n, p in peft_model.named_parameters() if p.requires_grad]
    assert set(trainable) == set(added)
    assert (
        len(
            {
                n.replace("base_model.model.", "").replace(".base_layer", "")
                for n, _ in peft_model.named_parameters()
                if "lora_" not in n
            }
            ^ base_names
        )
        == 0
    )


def test_resume_matches_uninterrupted(tiny_tokenizer, tmp_path):
    cfg = dict(max_steps=6, batch_size=2, grad_accum=2, lr=2e-3, seed=7)
    data = chunks(tiny_tokenizer, n=9)
    a = tiny(tiny_tokenizer)
    freeze_except(a, [0, 3])
    full = train(a.model, data, TrainConfig(**cfg), progress=False)
    b = tiny(tiny_tokenizer)
    freeze_except(b, [0, 3])
    first = train(b.model, data, TrainConfig(**cfg), checkpoint_dir=tmp_path, stop_after=2, progress=False)
    assert first["steps"] == 2
    c = tiny(tiny_tokenizer)  # a fresh process would start from the base weights
    freeze_except(c, [0, 3])
    rest = train(c.model, data, TrainConfig(**cfg), checkpoint_dir=tmp_path, progress=False)
    assert rest["losses"] == full["losses"]
    sa, sc = state(a.model), state(c.model)
    assert all(torch.equal(sa[n], sc[n]) for n in sa)


def test_lora_resume_matches_uninterrupted(tiny_tokenizer, tmp_path):
    cfg = dict(max_steps=4, batch_size=2, lr=5e-3, seed=3)
    data = chunks(tiny_tokenizer)
    a = add_lora(tiny(tiny_tokenizer), [1], r=4, seed=1)
    train(a, data, TrainConfig(**cfg), progress=False)
    b = add_lora(tiny(tiny_tokenizer), [1], r=4, seed=1)
    train(b, data, TrainConfig(**cfg), checkpoint_dir=tmp_path, stop_after=1, progress=False)
    c = add_lora(tiny(tiny_tokenizer), [1], r=4, seed=2)  # other init: the checkpoint must overwrite it
    train(c, data, TrainConfig(**cfg), checkpoint_dir=tmp_path, progress=False)
    sa, sc = state(a), state(c)
    assert all(torch.equal(sa[n], sc[n]) for n in sa)


def test_revert_restores_base_weights_exactly(tiny_tokenizer):
    loaded = tiny(tiny_tokenizer)
    base = state(loaded.model)
    freeze_except(loaded, [0, 1, 2, 3])
    snap = snapshot_layers(loaded.model, loaded.adapter, [0, 3])
    train(loaded.model, chunks(tiny_tokenizer), TrainConfig(max_steps=5, batch_size=2, lr=3e-3), progress=False)
    revert_layers(loaded.model, loaded.adapter, [0, 3], snap)
    after = state(loaded.model)
    for n in base:
        if n.startswith(("model.layers.0.", "model.layers.3.")):
            assert torch.equal(base[n], after[n]), n
    assert any(not torch.equal(base[n], after[n]) for n in base if n.startswith("model.layers.1."))


def test_lora_revert_gives_base_after_merge(tiny_tokenizer):
    loaded = tiny(tiny_tokenizer)
    base = state(loaded.model)
    peft_model = add_lora(loaded, [1, 2], r=4)
    train(peft_model, chunks(tiny_tokenizer), TrainConfig(max_steps=4, batch_size=2, lr=1e-2), progress=False)
    revert_layers(peft_model, loaded.adapter, [1], {})
    merged = state(peft_model.merge_and_unload())
    assert all(torch.equal(base[n], merged[n]) for n in base if not n.startswith("model.layers.2."))
    assert any(not torch.equal(base[n], merged[n]) for n in base if n.startswith("model.layers.2."))


def test_saved_full_and_lora_folders_load_with_load_model(tiny_model_dir, tmp_path):
    from babelscope.improve.layer_finetune import save_full, save_lora
    from babelscope.models.load import load_model

    loaded = load_model(str(tiny_model_dir))
    tok = loaded.tokenizer
    freeze_except(loaded, [1])
    train(loaded.model, chunks(tok), TrainConfig(max_steps=3, batch_size=2, lr=1e-2), progress=False)
    reloaded = load_model(str(save_full(loaded, tmp_path / "full")))
    assert all(torch.equal(a, b) for a, b in zip(state(loaded.model).values(), state(reloaded.model).values()))

    base = load_model(str(tiny_model_dir))
    peft_model = add_lora(base, [1], r=4)
    train(peft_model, chunks(tok), TrainConfig(max_steps=3, batch_size=2, lr=1e-2), progress=False)
    folder = save_lora(peft_model, tok, tmp_path / "adapter", str(tiny_model_dir))
    merged = state(peft_model.merge_and_unload())
    from_folder = state(load_model(str(folder)).model)
    assert merged.keys() == from_folder.keys()
    assert all(torch.allclose(merged[n], from_folder[n], atol=1e-6) for n in merged)
    untouched = state(load_model(str(tiny_model_dir)).model)
    assert any(not torch.equal(merged[n], untouched[n]) for n in merged)


def test_find_newest_layers_run_of_the_model(tmp_path):
    from babelscope.improve.layer_finetune import find_layers_run

    for stamp in ("20260101T000000Z", "20260301T000000Z"):
        run = tmp_path / "default" / f"layers-{stamp}"
        run.mkdir(parents=True)
        (run / "layers.json").write_text('{"recommended": {"layers": [2]}}')
    (tmp_path / "default" / "layers-20270101T000000Z").mkdir()  # unfinished: no layers.json
    assert find_layers_run(tmp_path, "default").name == "layers-20260301T000000Z"
    assert find_layers_run(tmp_path, "smollm2-135m") is None
