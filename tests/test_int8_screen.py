"""The int8 screen behind the generation argmax: float32 answers exactly, few rows computed, a checked kernel."""

import weakref

import pytest
import torch
from tests.test_generate import _prompts, hf_greedy

from babelscope.measure.generate import Decoder, greedy_tokens
from babelscope.models import int8_screen as scr
from babelscope.models.forward import Unembedding


class _Model(torch.nn.Module):
    """What ``Unembedding`` reads of a model: the head, the config's soft-cap, a logit scale."""

    def __init__(self, head, logit_scale=None):
        super().__init__()
        self.head, self.config = head, type("Config", (), {})()
        if logit_scale is not None:
            self.logit_scale = logit_scale

    def get_output_embeddings(self):
        return self.head


def _head(V=3000, D=64, bias=False, seed=0) -> torch.nn.Linear:
    gen = torch.Generator().manual_seed(seed)
    head = torch.nn.Linear(D, V, bias=bias)
    with torch.no_grad():
        head.weight.copy_(torch.randn(V, D, generator=gen) * 0.05)
        if bias:
            head.bias.copy_(torch.randn(V, generator=gen))
    return head


def _hidden(P, D=64, seed=1) -> torch.Tensor:
    """Hidden states with a few channels 30x the others, as after Gemma's final norm: [P, D]."""
    gen = torch.Generator().manual_seed(seed)
    hidden = torch.randn(P, D, generator=gen) * 3
    hidden[:, [3, 17, 30]] *= 30
    return hidden


def _channel_max(P, D=64) -> torch.Tensor:
    return _hidden(P, D).abs().amax(0)  # [D]


def _int8_rows(screen, weight):
    """The screen's int8 rows, recomputed independently of it: [V, D]."""
    rest = weight.index_fill(1, screen.outliers, 0.0)
    return (rest / screen.scale[:, None]).round().clamp(-127, 127)


def test_kernel_returns_the_exact_integer_products_extremes_included():
    weight = _head(V=scr.BLOCK + 500).weight.detach()
    screen = scr.Int8Screen(weight, _channel_max(4))
    q = _int8_rows(screen, weight).double()  # [V, D]
    gen = torch.Generator().manual_seed(2)
    for trial in range(20):
        k = torch.randint(-scr.LEVEL, scr.LEVEL + 1, (1 + trial % 9, weight.shape[1]), generator=gen).float()
        k[0] = scr.LEVEL * (1 - 2 * (trial % 2))  # an all-extreme row
        got = torch.cat([scr._products(p, k) for p in screen.packed], 1)  # [P, V]
        assert torch.equal(got.double(), k.double() @ q.t())


def test_a_kernel_that_is_not_exact_leaves_the_float32_blocks(monkeypatch):
    head = _head()
    monkeypatch.setattr(scr, "_screens", weakref.WeakKeyDictionary())
    monkeypatch.setattr(scr, "MIN_WEIGHTS", 0)
    monkeypatch.setattr(scr, "AFTER_CALLS", 1)
    real = scr._products
    monkeypatch.setattr(scr, "_products", lambda packed, k: real(packed, k) + (k.abs() == scr.LEVEL).all(1)[:, None])
    assert scr.screen_of(head, _hidden(2)) is None  # off by one where a row is all extremes: refused
    un = Unembedding(_Model(head))
    hidden = _hidden(5)
    assert torch.equal(un.argmax(hidden, 512), un(hidden).argmax(-1))


@pytest.mark.parametrize("bias, logit_scale", [(False, None), (True, None), (False, 0.0625)])
def test_screened_argmax_is_the_float32_argmax(bias, logit_scale):
    head = _head(bias=bias)
    un = Unembedding(_Model(head, logit_scale))
    screen = scr.Int8Screen(head.weight.detach(), _channel_max(8))
    for seed in range(30):
        hidden = _hidden(1 + seed % 40, seed=seed)
        if seed % 3 == 0:  # states close to a vocabulary row: one logit stands out, its neighbours are close
            hidden[0] = head.weight[seed * 7].detach() * 200 + hidden[0] * 0.01
        assert torch.equal(un._screened_argmax(screen, hidden), un(hidden).argmax(-1)), seed


def test_ties_keep_the_lowest_id_as_torch_argmax():
    """Integer weights and states: every logit is exact, rows 5, 9 and 2000 tie for the maximum."""
    head = _head(V=2500, D=32)
    with torch.no_grad():
        head.weight.copy_(torch.randint(-3, 4, head.weight.shape).float() / 8)
        head.weight[9] = head.weight[5]
        head.weight[2000] = head.weight[5]
    hidden = torch.zeros(3, 32)
    hidden[0] = head.weight[5].detach() * 64  # maximal for rows 5, 9, 2000
    hidden[1, :] = 0  # every logit 0: id 0 wins
    hidden[2] = -hidden[0]
    un = Unembedding(_Model(head))
    screen = scr.Int8Screen(head.weight.detach(), _channel_max(3, D=32))
    want = un(hidden).argmax(-1)
    assert want[:2].tolist() == [5, 0]
    assert torch.equal(un._screened_argmax(screen, hidden), want)


def test_few_rows_survive_the_screen():
    head = _head(V=20000, D=64)
    screen = scr.Int8Screen(head.weight.detach(), _channel_max(8))
    hidden = _hidden(16, seed=5)
    hidden += head.weight[torch.arange(16) * 1000].detach() * 100  # each state leans towards one row
    rows, mask = screen.candidates(hidden, None)
    assert mask.any(0).all() and mask.sum(0).max() < 200  # of 20,000 rows per position
    want = Unembedding(_Model(head))(hidden).argmax(-1)
    assert mask[torch.searchsorted(rows, want), torch.arange(16)].all()


def test_prepared_after_some_calls_and_again_after_the_weight_changes(monkeypatch):
    head = _head()
    monkeypatch.setattr(scr, "_screens", weakref.WeakKeyDictionary())
    monkeypatch.setattr(scr, "MIN_WEIGHTS", 0)
    monkeypatch.setattr(scr, "AFTER_CALLS", 3)
    hidden = _hidden(2)
    assert [scr.screen_of(head, hidden) for _ in range(2)] == [None, None]  # a short run pays nothing
    screen = scr.screen_of(head, hidden)
    assert screen is not None and scr.screen_of(head, hidden) is screen
    with torch.no_grad():
        head.weight[7] += 1.0  # finetuned in place: the int8 copy is stale
    assert scr.screen_of(head, hidden) is None
    for _ in range(2):
        fresh = scr.screen_of(head, hidden)
    assert fresh is not None and fresh is not screen
    assert scr.screen_of(_head().to(torch.bfloat16), hidden) is None  # float32 heads only


@pytest.mark.parametrize("family", ["llama", "gemma3_text", "qwen2", "cohere"])
def test_generation_through_the_screen_equals_hf_generate(tiny_loaded, family, monkeypatch):
    monkeypatch.setattr(scr, "_screens", weakref.WeakKeyDictionary())
    monkeypatch.setattr(scr, "MIN_WEIGHTS", 0)
    monkeypatch.setattr(scr, "AFTER_CALLS", 1)
    screened = []
    real = scr.Int8Screen.candidates
    monkeypatch.setattr(scr.Int8Screen, "candidates", lambda self, h, b: (screened.append(len(h)), real(self, h, b))[1])
    loaded = tiny_loaded(family)
    prompts = _prompts(loaded.tokenizer)
    assert greedy_tokens(Decoder.of(loaded.model, loaded.tokenizer), prompts, 12) == hf_greedy(loaded, prompts, 12)
    assert screened  # every argmax of the call went through the screen


@pytest.mark.slow
def test_on_gemma3_270m_the_screen_keeps_few_rows_and_hf_generates_the_same(monkeypatch):
    """The embedded default model (262,144 x 640 head): on the hidden states of few-shot prompts
    in four languages the screened argmax is the float32 one with a few dozen rows computed per
    position at most on average, and generation through it equals HF ``generate``."""
    from babelscope.models.load import load_model

    monkeypatch.setattr(scr, "_screens", weakref.WeakKeyDictionary())
    monkeypatch.setattr(scr, "AFTER_CALLS", 1)
    loaded = load_model("default")
    texts = ["Question: Lisa has 3 boxes with 7 pencils each. How many pencils?\nAnswer: 21\n\nQuestion: Tom",
             "MATCH (p:Person)-[:ACTED_IN]->(m:Movie) WHERE m.title = 'Alien' RETURN p.name",
             "Pregunta: ¿Cuántos gatos hay en la casa? Respuesta:", "Soru: Evde kaç kedi var? Cevap:"]
    prompts = [loaded.tokenizer.encode(t) for t in texts]
    un = Unembedding(loaded.model)
    with torch.inference_mode():
        hidden = torch.cat([loaded.model.model(input_ids=torch.tensor([p])).last_hidden_state[0, 1:] for p in prompts])
        screen = scr.screen_of(un.lm_head, hidden)  # the first call's states pick the outlier channels
        assert screen is not None
        blocks = hidden.split(8)  # [8, D] each, as a decoding step
        survivors = torch.cat([screen.candidates(h, None)[1].sum(0) for h in blocks]).float()  # [N] rows per position
        assert torch.equal(torch.cat([un._screened_argmax(screen, h) for h in blocks]), un(hidden).argmax(-1))
    assert survivors.mean() < 64 and survivors.median() < 32  # of 262,144
    assert greedy_tokens(Decoder.of(loaded.model, loaded.tokenizer), prompts, 16) == hf_greedy(loaded, prompts, 16)
