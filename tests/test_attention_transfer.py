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


def _official_rank(tokenizer, logits, target):
    """Port of ``get_target_logit_rank`` (Linuxin-xxx/LAHIS@3b84cc3, src/multilingual_exps.py): the rank of the
    target's first token in a descending sort. The official code takes index 1 (after Aya's BOS); the tiny
    tokenizer adds no BOS, so the oracle takes the first token the tokenizer adds after its special tokens."""
    ids = tokenizer(target, return_tensors="pt").input_ids
    first = 1 if tokenizer.bos_token_id is not None and ids[0, 0] == tokenizer.bos_token_id else 0
    _, order = torch.sort(logits, descending=True, dim=-1)
    return torch.nonzero(order == ids[0, first]).squeeze().item()


def _official_counts(loaded, l1, l2, mask):
    """Port of the counting loop of ``transfer_attn`` (same commit) for one language pair, with the mask
    applied through babelscope's hooks in place of the patched ``head_mask=`` argument."""
    tok, eng = loaded.tokenizer, at.OCCUPATIONS["eng"]
    n1, n2 = at.OCCUPATIONS[l1.split("_")[0]], at.OCCUPATIONS[l2.split("_")[0]]
    x = y = chose1 = total = 0
    with masked_heads(loaded, mask):
        for i, j, prompt in at.prompts(l1, l2):
            total += 1
            inputs = tok(prompt, return_tensors="pt")
            with torch.no_grad():
                out = loaded.model.generate(**inputs, max_new_tokens=5, do_sample=False, pad_token_id=tok.pad_token_id)
                gene = tok.decode(out[0], skip_special_tokens=False).replace(prompt, "").strip()
                if eng[i] in gene or n1[i] in gene:
                    x += 1
                elif eng[j] in gene or n2[j] in gene:
                    y += 1
                logits = loaded.model(**inputs).logits[0, -1]
            r1 = min(_official_rank(tok, logits, " " + eng[i]), _official_rank(tok, logits, n1[i]))
            r2 = min(_official_rank(tok, logits, " " + eng[j]), _official_rank(tok, logits, n2[j]))
            chose1 += r1 < r2
    return x / total, y / total, chose1 / total


def test_transfer_matches_a_port_of_the_official_counting_loop(tiny_loaded):
    loaded = tiny_loaded("llama")
    a = loaded.adapter
    mask = at.steer_mask(a, [1, 6], [3], 3.0, 0.0)  # L1 heads x3, an L2 head at 0
    ours = at.transfer(loaded, "fra_Latn", "deu_Latn", mask)
    assert (ours["x_share"], ours["y_share"], ours["x_rank_share"]) == \
        pytest.approx(_official_counts(loaded, "fra_Latn", "deu_Latn", mask))
    assert 0 < ours["x_rank_share"] < 1  # the rank comparison is exercised (a random tiny model names neither)
