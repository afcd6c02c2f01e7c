"""Golden tests for LAHIS against ports of the official code (Linuxin-xxx/LAHIS, commit 3b84cc3; see
tests/fixtures/official/lahis/README.md): ``heads --reproduce_official`` scores (bf16 accumulation),
the specific/general split with the official k, the per-language top-n heads of the soft mask, and the
official ablation's mean exp(loss)."""

from collections import Counter

import pytest
import torch

from babelscope.interpret.lahis import HeadSums, LahisResult, classify, encode, lahis, top_heads
from babelscope.interpret.lahis_validate import official_ablation, official_heads
from babelscope.models.head_mask import head_mask_hooks
from babelscope.models.hooks import hooks
from babelscope.testing import SAMPLE_TEXTS

LANGS = ["eng_Latn", "fra_Latn", "deu_Latn", "hin_Deva", "zho_Hans"]


def texts_of(k: int) -> list[str]:
    return [f"{SAMPLE_TEXTS[(k + i) % len(SAMPLE_TEXTS)]} {i}" for i in range(6)]


# --------------------------------------------------------------------------- ported official code (oracle)


def official_matrix(loaded, texts: list[str], max_length: int) -> torch.Tensor:
    """attn_matrix.py get_attn_head_matrix (model(ids, labels=ids, head_mask=...) through the hooks)."""
    model, a = loaded.model, loaded.adapter
    head_mask = torch.nn.Parameter(torch.ones(a.n_layers, a.n_heads, dtype=torch.bfloat16), requires_grad=True)
    for param in model.parameters():
        param.requires_grad = False
    total_head_importance = torch.zeros_like(head_mask)
    neg_grad_counts = torch.zeros_like(head_mask, dtype=torch.int)
    optimizer = torch.optim.AdamW([head_mask], lr=1e-2)
    for text in texts:
        input_ids = loaded.tokenizer(text, return_tensors="pt", truncation=True, max_length=max_length).input_ids
        with hooks(model, head_mask_hooks(head_mask, a), adapter=a):
            loss = model(input_ids, labels=input_ids).loss
        optimizer.zero_grad()
        loss.backward()
        total_head_importance += (head_mask.grad.abs() * head_mask * 1000).detach()
        neg_grad_counts += (head_mask.grad * head_mask < 0).int()
        optimizer.step()
    for param in model.parameters():
        param.requires_grad = True
    average_head_importance = total_head_importance / len(texts)
    average_neg_grad_counts = neg_grad_counts.float() / len(texts)
    return average_head_importance * average_neg_grad_counts


def official_head_indices(matrices: dict, q: float, min_repetition: int = 4) -> tuple[dict, list]:
    """language_heads.py get_head_indices: ({lan: specific heads}, general heads)."""
    sorted_init_head_list = []
    for m in matrices.values():
        flattened = m.to(dtype=float).view(-1)
        threshold = torch.quantile(flattened, q=q)
        percentile_indices = (flattened > threshold).nonzero(as_tuple=False).squeeze(-1)
        sorted_idx = torch.argsort(flattened[percentile_indices], descending=True)
        sorted_init_head_list.append(percentile_indices[sorted_idx])
    index_counts = Counter(torch.cat(sorted_init_head_list).tolist())
    disqualified = [idx for idx, count in sorted(index_counts.items(), key=lambda x: -x[1]) if count >= min_repetition]
    final = {lan: [i for i in t.tolist() if i not in disqualified] for lan, t in zip(matrices, sorted_init_head_list)}
    return final, disqualified


def official_ppl(loaded, texts: list[str], zeroed: list[int], max_length: int) -> float:
    """multilingual_exps.py get_ppl_res: mean over items of exp(loss) with the heads zeroed."""
    a = loaded.adapter
    head_mask = torch.ones(a.n_layers, a.n_heads)
    head_mask.view(-1)[zeroed] = 0.0
    ppl_avg = 0.0
    for text in texts:
        input_ids = loaded.tokenizer(text, return_tensors="pt", truncation=True, max_length=max_length).input_ids
        with torch.no_grad(), hooks(loaded.model, head_mask_hooks(head_mask, a), adapter=a):
            ppl_avg += torch.exp(loaded.model(input_ids, labels=input_ids).loss).item()
    return ppl_avg / len(texts)


# --------------------------------------------------------------------------- tests


@pytest.fixture(scope="module")
def scored(tiny_tokenizer):
    from babelscope.testing import make_tiny_loaded

    loaded = make_tiny_loaded("llama", tiny_tokenizer, seed=3)
    texts = {lang: texts_of(k) for k, lang in enumerate(LANGS)}
    ours = lahis(loaded, texts, max_length=24, reproduce_official=True, show_progress=False)
    theirs = {lang: official_matrix(loaded, texts[lang], 24) for lang in LANGS}
    return loaded, texts, ours, theirs


def test_reproduce_official_scores_equal_the_official_bf16_accumulation(scored):
    loaded, _, ours, theirs = scored
    assert ours.settings["accumulation"] == "bfloat16 (official)"
    for lang in LANGS:
        torch.testing.assert_close(ours.of(lang), theirs[lang].float(), rtol=0, atol=0)


def test_the_bf16_sum_saturates_as_the_official_one_does():
    sums = HeadSums.zeros(1, 1)
    for _ in range(2000):
        sums.add_official(torch.tensor([[-0.003]], dtype=torch.bfloat16), torch.ones(1, 1, dtype=torch.bfloat16))
    exact = float(sums.abs_sum[0, 0]) / sums.n  # float64: the mean of |g| * 1000 (about 3.0)
    official = float(sums.scores()[0, 0])
    assert exact == pytest.approx(3.0, rel=1e-2) and official < 0.8 * exact  # the bf16 sum stalls


def test_specific_and_general_heads_follow_the_official_rule_and_k(scored):
    _, _, ours, theirs = scored
    for q in (0.5, 0.7):
        classes = classify(ours, q, official=True)
        specific, general = official_head_indices(theirs, q)
        assert classes["min_languages"] == 4
        assert classes["specific"] == specific and set(classes["general"]) == set(general)
    gen = torch.Generator().manual_seed(0)  # a wider grid, where ties are unlikely and lists longer
    mats = {lang: torch.rand(6, 8, generator=gen) ** 3 for lang in LANGS}
    result = LahisResult(torch.stack([mats[lang] for lang in LANGS], -1), LANGS, {})
    specific, general = official_head_indices(mats, 0.8)
    classes = classify(result, 0.8, official=True)
    assert classes["specific"] == specific and set(classes["general"]) == set(general) and general


def test_per_language_mask_heads_are_the_official_topk_of_the_raw_scores(scored):
    _, _, ours, theirs = scored
    n = 3
    for lang in LANGS:
        _, topk = torch.topk(theirs[lang].view(-1), k=n)
        assert set(top_heads(ours.of(lang), n)) == set(topk.tolist())


def test_official_ablation_is_the_mean_exp_loss_with_the_top_specific_heads_zeroed(scored):
    loaded, texts, ours, _ = scored
    specific = classify(ours, 0.5, official=True)["specific"]
    heads, n = official_heads(loaded.adapter, specific)
    assert n == 1  # max(1, int(0.02 * 2 * 4))
    held = {lang: texts[lang][:3] for lang in LANGS[:3]}
    abl = official_ablation(loaded, {lang: specific[lang] for lang in held}, held, batch_size=1, max_length=24)
    assert abl["metric"] == "mean_exp_loss" and abl["n_heads_zeroed"] == 1
    for lang in held:
        assert abl["base_loss"][lang] == pytest.approx(official_ppl(loaded, held[lang], [], 24), rel=1e-5)
        for src in abl["ablated_loss"]:
            expect = official_ppl(loaded, held[lang], heads[src], 24)
            assert abl["ablated_loss"][src][lang] == pytest.approx(expect, rel=1e-5)


def test_encode_matches_the_official_tokenisation(scored):
    loaded, texts, _, _ = scored
    ids = [loaded.tokenizer(t, truncation=True, max_length=24).input_ids for t in texts["eng_Latn"]]
    assert encode(loaded.tokenizer, texts["eng_Latn"], 24) == ids
