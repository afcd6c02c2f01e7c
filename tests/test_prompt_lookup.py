"""Exact speculative decoding from the prompt: drafts, their schedule, the cache rollback, and the
tokens, which must equal plain greedy decoding and HF ``generate`` while taking fewer steps."""

import pytest
import torch
from tests.test_generate import hf_greedy

from babelscope.measure import prompt_lookup as pl
from babelscope.measure.generate import Decoder, greedy_tokens
from babelscope.measure.kv_cache import buffer_cache
from babelscope.models.forward import FEW_ROWS, MIN_ROWS, weight_major_linears

REPEATING = ["one two three four one two three four one two three", "un deux trois un deux trois un deux",
             "раз два три раз два три раз", "a b c d e a b c d e a b c"]


def test_lookup_drafts_what_followed_the_latest_longest_match():
    look = pl.PromptLookup([1, 2, 3, 9, 1, 2, 4, 1, 2])
    assert look.draft(2) == [4, 1]  # (1, 2) last occurred at 4-5, followed by 4, 1; (4, 1, 2) never before
    assert look.draft(9) == [4, 1, 2]  # a draft stops where the text does
    look.add([7])
    assert look.draft(3) == []  # 7 never occurred before
    look.add([1, 2, 4])
    assert look.draft(2) == [1, 2]  # (2, 4) after 5-6 -> 1, 2 (the longest suffix, (1, 2, 4), too)
    assert pl.PromptLookup([5]).draft(3) == [] and look.draft(0) == []


def test_schedule_grows_on_hits_backs_off_on_misses_and_stops_a_call_that_never_copies():
    s = pl.DraftSchedule(most=4)
    assert s.length(0) == 1
    for want in (2, 3, 4, 4):
        s.taken(0, s.length(0), s.length(0))  # taken whole
        assert s.length(0) == want
    s.taken(0, 4, 2)
    assert s.length(0) == 2  # what was taken
    s.taken(0, 2, 0)
    s.taken(0, 1, 0)
    assert s.length(0) == 0  # two misses in a row that took nothing
    assert s.length(1) == 1  # other rows go on
    never = pl.DraftSchedule(most=4)
    for row in range(pl.DraftSchedule.PROBE):
        never.taken(row, 1, 0)
    assert never.length(99) == 0  # the call drafted PROBE tokens and took none: it stops drafting


def test_realign_drops_rejected_columns_and_right_aligns_rows():
    cache = buffer_cache(1, 16)
    layer = cache.layers[0]
    cols = torch.arange(10.0)[None, None, :, None].expand(3, 1, 10, 2).clone()  # [B, H, T, d]: column ids
    layer.update(cols, cols + 100)
    layer.realign([2, 0, 1], 8)  # rows keep 6, 8 and 7 of their columns
    assert layer.length == 8 and layer.keys.shape[2] == 8
    assert layer.keys[0, 0, 2:, 0].tolist() == [0.0, 1, 2, 3, 4, 5]
    assert layer.keys[1, 0, :, 0].tolist() == [float(c) for c in range(8)]
    assert layer.values[2, 0, 1:, 0].tolist() == [100.0 + c for c in range(7)]


def _steps(dec, prompts, max_new, **kw):
    calls = []
    handle = dec.body.register_forward_pre_hook(lambda m, a, k: calls.append(tuple(k["input_ids"].shape)),
                                                with_kwargs=True)
    try:
        return greedy_tokens(dec, prompts, max_new, **kw), calls
    finally:
        handle.remove()


@pytest.mark.parametrize("family", ["llama", "gemma3_text"])
def test_drafted_decoding_equals_plain_greedy_and_hf_generate_in_less_work(tiny_loaded, family, monkeypatch):
    loaded = tiny_loaded(family)
    dec = Decoder.of(loaded.model, loaded.tokenizer)
    tok = loaded.tokenizer
    prompts = [[tok.bos_token_id] + tok.encode(t, add_special_tokens=False) for t in REPEATING]
    taken = []
    real = pl.DraftSchedule.taken
    monkeypatch.setattr(pl.DraftSchedule, "taken", lambda self, row, d, a: (taken.append(a), real(self, row, d, a)))
    drafted, calls = _steps(dec, prompts, 16)
    plain, plain_calls = _steps(dec, prompts, 16, draft=0)
    assert drafted == plain == hf_greedy(loaded, prompts, 16)
    assert sum(taken) > 0  # drafts were taken: the model repeats what it saw
    assert sum(rows for rows, _ in calls) < sum(rows for rows, _ in plain_calls)  # rows end in fewer steps
    assert max(width for _, width in calls[2:]) > 1  # steps that checked drafts


def test_drafts_rejected_at_any_point_leave_the_tokens_exact(tiny_loaded, family, monkeypatch):
    """Drafts that are the true greedy continuation spoiled from a point that changes with every call:
    in one step rows take different numbers of tokens, so every step realigns them."""
    loaded = tiny_loaded(family)
    dec = Decoder.of(loaded.model, loaded.tokenizer)
    tok = loaded.tokenizer
    prompts = [[tok.bos_token_id] + tok.encode(t, add_special_tokens=False) for t in REPEATING]
    truth = greedy_tokens(dec, prompts, 16, draft=0)
    assert truth == hf_greedy(loaded, prompts, 16)
    calls = []

    def spoiled(self, k):
        calls.append(k)
        row = next(r for r, p in enumerate(prompts) if self.tokens[: len(p)] == p)
        d = (prompts[row] + truth[row])[len(self.tokens) : len(self.tokens) + pl.DRAFT_MAX]
        cut = len(calls) % (pl.DRAFT_MAX + 1)
        return d[:cut] + [(t + 1) % len(tok) for t in d[cut:]]

    taken = []
    real_taken = pl.DraftSchedule.taken
    monkeypatch.setattr(pl.PromptLookup, "draft", spoiled)
    monkeypatch.setattr(pl.DraftSchedule, "taken",
                        lambda self, row, d, a: (taken.append(a), real_taken(self, row, d, a)))
    assert greedy_tokens(dec, prompts, 16, rows=3) == truth
    assert set(taken) == set(range(pl.DRAFT_MAX + 1))  # taken whole, and rejected at every place


def test_weight_major_linears_give_the_same_values_and_restore_the_layers():
    torch.manual_seed(0)
    model = torch.nn.Sequential(torch.nn.Linear(6, 5), torch.nn.Linear(5, 4, bias=False))
    few, many, fewer = torch.randn(2, 4, 6), torch.randn(FEW_ROWS + 1, 6), torch.randn(MIN_ROWS - 1, 6)
    want_few, want_many, want_fewer = model(few), model(many), model(fewer)
    with weight_major_linears(model):
        assert all("forward" in vars(m) for m in model)
        got_few, got_many, got_fewer = model(few), model(many), model(fewer)
    assert not any("forward" in vars(m) for m in model)
    torch.testing.assert_close(got_few, want_few)  # 8 rows: same values up to rounding; shape [2, 4, 4] kept
    assert torch.equal(got_many, want_many) and torch.equal(got_fewer, want_fewer)  # these keep F.linear
