"""models/forward.py: one pad id rule, one padding helper, one unembedding (logit scale and soft-cap)."""

import pytest
import torch

from babelscope.models.forward import Unembedding, length_batches, pad_batch, pad_id_of, unembed
from babelscope.testing import FAMILIES


class _Tok:
    def __init__(self, pad, eos):
        self.pad_token_id, self.eos_token_id = pad, eos


def test_pad_id_rule():
    assert pad_id_of(_Tok(5, 2)) == 5
    assert pad_id_of(_Tok(None, 2)) == 2
    assert pad_id_of(_Tok(None, 0)) == 0
    assert pad_id_of(_Tok(None, None)) == 0


def test_pad_batch_right_and_left():
    right = pad_batch([[1, 2, 3], [4]], 9)
    assert right["input_ids"].tolist() == [[1, 2, 3], [4, 9, 9]]
    assert right["attention_mask"].tolist() == [[1, 1, 1], [1, 0, 0]]
    left = pad_batch([[1, 2, 3], [4]], 9, side="left", width=4)
    assert left["input_ids"].tolist() == [[9, 1, 2, 3], [9, 9, 9, 4]]
    assert left["attention_mask"].tolist() == [[0, 1, 1, 1], [0, 0, 0, 1]]
    with pytest.raises(ValueError):
        pad_batch([[1]], 0, side="middle")


def test_length_batches_longest_first_or_in_order():
    seqs = [[1], [1, 2, 3], [1, 2]]
    assert [b["input_ids"].shape for b in length_batches(seqs, 2, 0)] == [(2, 3), (1, 1)]
    assert [b["input_ids"][:, 0].tolist() for b in length_batches(seqs, 1, 0, sort=False)] == [[1], [1], [1]]
    assert [int(b["attention_mask"].sum()) for b in length_batches(seqs, 1, 0, sort=False)] == [1, 3, 2]


@pytest.mark.parametrize("family", FAMILIES)
def test_unembed_equals_the_models_own_logits(tiny_loaded, family):
    loaded = tiny_loaded(family)
    ids = torch.tensor([loaded.tokenizer.encode("Le chat était assis sur le tapis.")])
    with torch.no_grad():
        full = loaded.model(ids).logits[0].float()  # [T, V]
        hidden = loaded.adapter.body(loaded.model)(input_ids=ids).last_hidden_state[0]  # [T, D]
        ours = unembed(loaded, hidden)
        head = Unembedding(loaded.model)
        blocks = torch.cat([head(hidden, slice(v, v + 100)) for v in range(0, full.shape[1], 100)], -1)
    torch.testing.assert_close(ours, full, atol=1e-5, rtol=1e-5)
    torch.testing.assert_close(blocks, full, atol=1e-5, rtol=1e-5)


def _softcap_only(model, hidden):
    """The unembedding the old `interpret.activations.logits_of` applied: lm_head and the soft-cap only."""
    logits = model.get_output_embeddings()(hidden)
    cap = getattr(model.config, "final_logit_softcapping", None)
    return torch.tanh(logits / cap) * cap if cap else logits


def test_cohere_logit_scale_is_applied(tiny_loaded):
    """Cohere multiplies its logits by `logit_scale`; without it the deactivation losses were wrong."""
    loaded = tiny_loaded("cohere")
    assert loaded.model.logit_scale != 1.0
    ids = torch.tensor([loaded.tokenizer.encode("The cat sat on the mat and looked out of the window.")])
    with torch.no_grad():
        full = loaded.model(ids).logits[0]  # [T, V]
        hidden = loaded.adapter.body(loaded.model)(input_ids=ids).last_hidden_state[0]
        old = _softcap_only(loaded.model, hidden)
        new = unembed(loaded.model, hidden)
    assert not torch.allclose(old, full, atol=1e-3)  # the old rule misses the scale
    torch.testing.assert_close(new, full, atol=1e-5, rtol=1e-5)
    # the deactivation check's loss on Cohere: tests/test_neurons.py::test_loss_matches_model_loss[cohere]
