"""Streaming neuron statistics: exact counts, padding, masks, sharding, save/load."""

import pytest
import torch
from tests.neurons_fixtures import LANGS, planted_batches, planted_model

from babelscope.interpret.activations import collect
from babelscope.models.hooks import hooks
from babelscope.models.reducers import NeuronReducer


def _manual_counts(model, adapter, batches):
    """Counts by hand: capture the gate output and count positive values of non-padding tokens."""
    k, n_layers, f = len(LANGS), adapter.n_layers, adapter.d_mlp
    over = torch.zeros(k, n_layers, f, dtype=torch.int64)
    sums = torch.zeros(k, n_layers, f, dtype=torch.float64)
    tokens = torch.zeros(k, dtype=torch.int64)
    for b in batches:
        seen = {}
        with (
            hooks(
                model,
                {
                    f"blocks.{i}.mlp.hook_pre": (lambda t, s, seen=seen: seen.__setitem__(s, t.clone()))
                    for i in range(n_layers)
                },
            ),
            torch.no_grad(),
        ):
            model.model(input_ids=b.input_ids, attention_mask=b.attention_mask)
        li = LANGS.index(b.language)
        tokens[li] += int(b.count_mask.sum())
        for i in range(n_layers):
            for bb in range(b.input_ids.shape[0]):
                for t in range(b.input_ids.shape[1]):
                    if b.count_mask[bb, t]:
                        over[li, i] += (seen[f"blocks.{i}.mlp.hook_pre"][bb, t] > 0).long()
                        sums[li, i] += seen[f"blocks.{i}.mlp.hook_pre"][bb, t].double()
    return over, sums, tokens


def test_counts_equal_manual_and_skip_padding():
    from babelscope.models.adapters import get_adapter

    model = planted_model()
    a = get_adapter(model)
    batches = planted_batches(rows=6, length=7, batch_size=3)
    assert any(not b.attention_mask.all() for b in batches)  # padding present
    red = collect(model, a, batches, NeuronReducer(LANGS, a.n_layers, a.d_mlp))
    over, sums, tokens = _manual_counts(model, a, batches)
    assert torch.equal(red.tokens, tokens)
    assert torch.equal(red.over_zero, over)
    assert torch.allclose(red.act_sum, sums, atol=1e-4)
    assert red.over_zero.dtype == torch.int64 and red.act_sum.dtype == torch.float64


def test_answer_mask_counts_only_selected_tokens():
    from babelscope.models.adapters import get_adapter

    model = planted_model()
    a = get_adapter(model)
    batches = planted_batches(rows=4, length=8, batch_size=4)
    for b in batches:  # "answer" = second half of each row
        b.count_mask[:, :4] = False
    red = collect(model, a, batches, NeuronReducer(LANGS, a.n_layers, a.d_mlp, token_selection="answer"))
    over, _, tokens = _manual_counts(model, a, batches)
    assert torch.equal(red.over_zero, over) and torch.equal(red.tokens, tokens)
    assert int(red.tokens.sum()) < sum(int(b.attention_mask.sum()) for b in batches)


def test_two_shards_added_equal_one_pass(tmp_path):
    from babelscope.models.adapters import get_adapter

    model = planted_model()
    a = get_adapter(model)
    batches = planted_batches()
    one = collect(model, a, batches, NeuronReducer(LANGS, a.n_layers, a.d_mlp))
    s0 = collect(model, a, batches[0::2], NeuronReducer(LANGS, a.n_layers, a.d_mlp))
    s1 = collect(model, a, batches[1::2], NeuronReducer(LANGS, a.n_layers, a.d_mlp))
    both = s0 + s1
    assert torch.equal(both.over_zero, one.over_zero) and torch.equal(both.tokens, one.tokens)
    assert torch.allclose(both.act_sum, one.act_sum, rtol=1e-12, atol=1e-9)
    assert not torch.equal(s0.over_zero, one.over_zero)  # the shards really differ
    path = tmp_path / "stats.safetensors"
    both.save(path, {"model": "planted"})
    back = NeuronReducer.load(path)
    assert back.languages == LANGS
    assert torch.equal(back.over_zero, both.over_zero) and torch.equal(back.act_sum, both.act_sum)
    assert torch.allclose(back.probabilities(), both.probabilities())


def test_memory_is_fixed_by_model_size():
    from babelscope.models.adapters import get_adapter

    model = planted_model()
    a = get_adapter(model)
    red = NeuronReducer(LANGS, a.n_layers, a.d_mlp)
    sizes = {k: v.numel() for k, v in red.state().items()}
    collect(model, a, planted_batches(rows=48), red)
    assert {k: v.numel() for k, v in red.state().items()} == sizes


def test_errors_are_clear():
    red = NeuronReducer(LANGS, 2, 8)
    with pytest.raises(Exception, match="not one of"):
        red.select("xyz_Latn", torch.ones(1, 2, dtype=torch.bool))
    with pytest.raises(Exception, match="no tokens were counted"):
        red.probabilities()
    with pytest.raises(Exception, match="different languages"):
        red.add(NeuronReducer(LANGS[:2], 2, 8))
