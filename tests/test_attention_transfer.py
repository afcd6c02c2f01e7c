"""Cross-lingual attention transfer (`heads --steer`): the prompt set, the multiplier mask through the
runtime head-mask hooks, and an end-to-end bs.heads(..., steer=...) run whose results.json validates."""

import json

import pytest
import torch

import babelscope as bs
from babelscope.errors import UsageError
from babelscope.interpret import attention_transfer as at
from babelscope.models.head_mask import masked_heads
from babelscope.schema import validate
from babelscope.testing import SAMPLE_TEXTS
from measure_fixtures import small_corpus


def test_ten_occupations_give_90_ordered_pairs_and_each_prompt_states_x_then_y():
    assert all(len(words) == 10 for words in at.OCCUPATIONS.values()) and set(at.OCCUPATIONS) == set(at.TEMPLATES)
    assert len(at.pairs()) == 90 and len(set(at.pairs())) == 90 and all(i != j for i, j in at.pairs())
    items = at.prompts("fra_Latn", "deu_Latn")
    assert len(items) == 90
    i, j, text = items[0]
    assert text == (f"Le métier d'Alice est {at.OCCUPATIONS['fra'][i]}. {at.FILLER} "
                    f"Alices Beruf ist {at.OCCUPATIONS['deu'][j]}. Alice's occupation is a")
    with pytest.raises(UsageError):
        at.prompt("eng_Latn", "tlh_Latn", 0, 1)


def test_steer_mask_scales_l1_and_weakens_l2(tiny_loaded):
    a = tiny_loaded("llama").adapter
    m = at.steer_mask(a, [1, 5], [6], 3.0, 0.0)
    assert m.shape == (a.n_layers, a.n_heads)
    flat = m.flatten()
    assert flat[1] == flat[5] == 3.0 and flat[6] == 0.0 and flat.sum() == a.n_layers * a.n_heads - 3 + 6
    assert at.n_heads_for(a) == 1  # int(2 * 4 * 0.01) = 0, raised to 1


def test_scaling_a_head_by_3_through_the_hook_equals_scaling_its_o_proj_input_slice_by_hand(tiny_loaded):
    loaded = tiny_loaded("llama")
    a, layer, head = loaded.adapter, 1, 2
    batch = loaded.tokenizer(list(SAMPLE_TEXTS[:2]), return_tensors="pt", padding=True)
    mask = torch.ones(a.n_layers, a.n_heads)
    mask[layer, head] = 3.0
    with torch.no_grad(), masked_heads(loaded, mask):
        hooked = loaded.model(**batch).logits

    def by_hand(module, args):
        x = args[0].clone()  # [B, T, H * d]
        x[..., head * a.head_dim:(head + 1) * a.head_dim] *= 3.0
        return (x,)

    o_proj = loaded.model.model.layers[layer].self_attn.o_proj
    handle = o_proj.register_forward_pre_hook(by_hand)
    try:
        with torch.no_grad():
            manual = loaded.model(**batch).logits
    finally:
        handle.remove()
    with torch.no_grad():
        plain = loaded.model(**batch).logits
    torch.testing.assert_close(hooked, manual)
    assert not torch.allclose(hooked, plain)


def test_heads_steer_end_to_end_writes_a_valid_steer_section(tiny_model_dir, tmp_path):
    corpus = tmp_path / "aligned.jsonl"
    small_corpus(24).save(str(corpus))
    r = bs.heads(model=str(tiny_model_dir), languages=["eng_Latn", "fra_Latn", "deu_Latn"], source=str(corpus),
                 num_items=4, batch_size=4, max_length=24, quantile=0.75, steer="fra,deu", num_prompts=1,
                 max_new_tokens=2, output_path=str(tmp_path), run_name="s")
    res = json.loads((r.path / "results.json").read_text())
    validate(res)
    steer = res["steer"]
    assert (steer["l1"], steer["l2"], steer["scale"], steer["weaken"], steer["n_heads"]) == \
        ("fra_Latn", "deu_Latn", 3.0, 0.0, 1)
    assert steer["enhanced_heads"] == res["specific"]["fra_Latn"][:1]
    assert set(steer["conditions"]) == set(at.CONDITIONS)
    for row in steer["conditions"].values():
        assert row["n"] == 90 and 0 <= row["x_share"] + row["y_share"] <= 1 and "off_target" in row
    samples = (r.path / "samples" / "steer.fra_Latn.jsonl").read_text().splitlines()
    assert len(samples) == 4 * 90 and "steer" in res["timings"]


def test_steer_needs_two_languages_of_the_run():
    with pytest.raises(UsageError):
        bs.heads(steer="fra")
