"""The scoring core agrees with lm-eval's HFLM (fp32, tiny models of every family)."""

import pytest
import torch

from babelscope.measure.engine import Engine

REQUESTS = [
    ("The cat sat on the", " mat"),
    ("The cat sat on the", " dog"),
    ("The cat sat on the", " floor of the house"),
    ("The cat sat on the ", "window and"),  # trailing space moves to the continuation
    ("Кошка сидела", " на коврике"),
    ("猫坐在", "垫子上"),
    ("", "Le chat"),  # empty context: the prefix token conditions
    ("Die Katze saß auf der Matte", " und schaute aus dem Fenster."),
]


def _hflm(loaded, **kw):
    pytest.importorskip("lm_eval")  # babelscope[lm_eval]; `make test` installs it
    from lm_eval.models.huggingface import HFLM

    return HFLM(pretrained=loaded.model, tokenizer=loaded.tokenizer, batch_size=4, **kw)


def _instances(kind, args):
    from lm_eval.api.instance import Instance

    return [Instance(kind, {}, a, i) for i, a in enumerate(args)]


def test_loglikelihood_equals_hflm(tiny_loaded, family):
    loaded = tiny_loaded(family)
    ours = Engine(loaded, batch_size=3, progress=False).loglikelihood(REQUESTS)
    ref = _hflm(loaded).loglikelihood(_instances("loglikelihood", REQUESTS), disable_tqdm=True)
    for (lp, greedy), (ref_lp, ref_greedy) in zip(ours, ref, strict=True):
        assert lp == pytest.approx(ref_lp, abs=1e-4)
        assert greedy == ref_greedy


def test_length_chunked_scores_equal_one_pass(tiny_loaded, monkeypatch):
    import babelscope.measure.engine as engine_mod

    engine = Engine(tiny_loaded("gemma3_text"), batch_size=4, progress=False)
    monkeypatch.setattr(engine_mod, "MIN_CHUNK_TOKENS", 0)
    monkeypatch.setattr(engine_mod, "PAD_SLACK", float("inf"))  # one continuation pass per batch
    one = engine.loglikelihood(REQUESTS)
    monkeypatch.setattr(engine_mod, "PAD_SLACK", 1.0)  # every length its own chunk, each on its own cache rows
    chunked = engine.loglikelihood(REQUESTS)
    assert [lp for lp, _ in one] == pytest.approx([lp for lp, _ in chunked], abs=1e-5)
    assert [g for _, g in one] == [g for _, g in chunked]


def test_vocabulary_blocks_equal_one_block(tiny_loaded, family, monkeypatch):
    import babelscope.measure.engine as engine_mod

    loaded = tiny_loaded(family)
    whole = Engine(loaded, batch_size=3, progress=False).loglikelihood(REQUESTS)
    monkeypatch.setattr(engine_mod, "VOCAB_BLOCK", 7)  # many blocks, the last one short
    monkeypatch.setattr(engine_mod, "HEAD_POSITIONS", 5)  # and several position chunks
    blocked = Engine(loaded, batch_size=3, progress=False).loglikelihood(REQUESTS)
    assert [lp for lp, _ in blocked] == pytest.approx([lp for lp, _ in whole], abs=1e-5)
    assert [g for _, g in blocked] == [g for _, g in whole]


def test_accelerator_settings_equal_cpu_settings(tiny_loaded, family, monkeypatch):
    engine = Engine(tiny_loaded(family), batch_size=4, progress=False)
    cpu = engine.loglikelihood(REQUESTS)
    monkeypatch.setattr(Engine, "on_cpu", property(lambda self: False))  # one pass, whole head, aligned widths
    accelerator = engine.loglikelihood(REQUESTS)
    assert [lp for lp, _ in accelerator] == pytest.approx([lp for lp, _ in cpu], abs=1e-5)
    assert [g for _, g in accelerator] == [g for _, g in cpu]


def test_cache_path_equals_plain_path(tiny_loaded):
    engine = Engine(tiny_loaded("gemma3_text"), batch_size=2, progress=False)
    cached = engine.loglikelihood(REQUESTS)
    engine.sliding_window = 1  # forces whole-sequence rows
    plain = engine.loglikelihood(REQUESTS)
    assert [g for _, g in cached] == [g for _, g in plain]
    assert [lp for lp, _ in cached] == pytest.approx([lp for lp, _ in plain], abs=1e-4)


def test_batch_size_does_not_change_scores(tiny_loaded):
    loaded = tiny_loaded("llama")
    one = Engine(loaded, batch_size=1, progress=False).loglikelihood(REQUESTS)
    many = Engine(loaded, batch_size=16, progress=False).loglikelihood(REQUESTS)
    assert [lp for lp, _ in one] == pytest.approx([lp for lp, _ in many], abs=1e-5)


def test_score_choices_matches_loglikelihood(tiny_loaded):
    engine = Engine(tiny_loaded("qwen2"), progress=False)
    conts = [" mat", " dog", " floor of the house"]
    got = engine.score_choices("The cat sat on the", conts)
    want = [lp for lp, _ in engine.loglikelihood([("The cat sat on the", c) for c in conts])]
    assert got == pytest.approx(want, abs=1e-6)
    assert len(set(got)) == 3


def test_head_on_selected_positions_equals_full_logits(tiny_loaded, family):
    loaded = tiny_loaded(family)
    engine = Engine(loaded, progress=False)
    ids = torch.tensor([loaded.tokenizer.encode("Le chat était assis sur le tapis.")])
    with torch.no_grad():
        full = loaded.model(ids).logits[0]  # [T, V]
        ours = engine.head(engine.body(input_ids=ids).last_hidden_state[0])  # [T, V]
    torch.testing.assert_close(ours, full.float(), atol=1e-5, rtol=1e-5)


def test_rolling_equals_hflm_with_windows(tiny_loaded):
    loaded = tiny_loaded("llama")
    texts = ["The cat sat on the mat and looked out of the window.", "猫はマットの上に座って窓の外を見ていた。"]
    engine = Engine(loaded, progress=False, max_length=8)  # several windows per text
    ours = engine.rolling_loglikelihood(texts)
    ref = _hflm(loaded, max_length=8).loglikelihood_rolling(
        _instances("loglikelihood_rolling", [(t,) for t in texts]), disable_tqdm=True
    )
    assert [lp for lp, _ in ours] == pytest.approx(ref, abs=1e-4)
    assert [n for _, n in ours] == [len(loaded.tokenizer.encode(t)) for t in texts]
    whole = Engine(loaded, progress=False).rolling_loglikelihood(texts)
    assert [lp for lp, _ in whole] != pytest.approx([lp for lp, _ in ours], abs=1e-3)  # windows lose context
    assert [n for _, n in whole] == [n for _, n in ours]


def test_generate_until_equals_hflm(tiny_loaded):
    loaded = tiny_loaded("llama")
    reqs = [
        ("The cat sat on the", {"until": ["."], "max_gen_toks": 6}),
        ("Кошка сидела на коврике и", {"until": ["\n", "."], "max_gen_toks": 9}),
        ("猫坐在", {"until": ["窗"], "max_gen_toks": 5}),
    ]
    ours = Engine(loaded, batch_size=2, progress=False).generate_until(reqs)
    ref = _hflm(loaded).generate_until(_instances("generate_until", reqs), disable_tqdm=True)
    assert ours == ref
    assert all(isinstance(t, str) for t in ours)


def test_empty_continuation_names_the_request(tiny_loaded):
    from babelscope.errors import DataError

    with pytest.raises(DataError, match="empty"):
        Engine(tiny_loaded("llama"), progress=False).loglikelihood([("The cat", "")])


def test_length_chunks_cover_rows_once_with_bounded_padding():
    from babelscope.measure.engine import _length_chunks

    lengths = [0, 30, 2, 29, 5, 31, 1, 12, 0, 11]
    real = [r for r, n in enumerate(lengths) if n > 0]
    assert _length_chunks(lengths, float("inf"), 0) == [sorted(real, key=lambda r: -lengths[r])]  # one pass
    for slack in (1.0, 1.25, 2.0):
        chunks = _length_chunks(lengths, slack, 0)
        assert sorted(r for c in chunks for r in c) == real
        for c in chunks:
            assert lengths[c[0]] == max(lengths[r] for r in c)
            assert len(c) * lengths[c[0]] <= slack * sum(lengths[r] for r in c) or len(c) == 1
    assert len(_length_chunks(lengths, 1.0, 0)) == len(set(lengths) - {0})
    big = _length_chunks(lengths, 1.0, 62)  # small chunks grow to the token minimum
    assert len(big) < len(set(lengths) - {0})
    assert all(len(c) * lengths[c[0]] <= 62 + lengths[c[0]] for c in big)


@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA device")
def test_cuda_scores_equal_cpu(tiny_tokenizer, family, monkeypatch):
    import babelscope.measure.engine as engine_mod
    from babelscope.testing import make_tiny_loaded

    cpu = Engine(make_tiny_loaded(family, tiny_tokenizer), batch_size=3, progress=False).loglikelihood(REQUESTS)
    loaded = make_tiny_loaded(family, tiny_tokenizer)
    loaded.model.to("cuda")
    monkeypatch.setattr(engine_mod, "ACCELERATOR_VOCAB_BLOCK", 7)  # the blocked head on the device too
    monkeypatch.setattr(engine_mod, "ACCELERATOR_PAD_SLACK", 1.0)  # and length chunks
    gpu = Engine(loaded, batch_size=3, progress=False).loglikelihood(REQUESTS)
    assert [lp for lp, _ in gpu] == pytest.approx([lp for lp, _ in cpu], abs=1e-4)
    assert [g for _, g in gpu] == [g for _, g in cpu]
