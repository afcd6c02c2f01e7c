"""Parity with lm-eval: its own task pipeline and its HFLM as babelscope's engine (fp32, tiny model)."""

import pytest

pytest.importorskip("lm_eval")  # babelscope[lm_eval]; `make test` installs it

from babelscope.measure import evaluate
from babelscope.measure.engine import Engine
from babelscope.measure.lm_eval_engine import lm_eval_multiple_choice
from babelscope.measure.tasks import get_task
from measure_fixtures import small_corpus

LANGS = ["eng_Latn", "fra_Latn", "zho_Hans"]


@pytest.fixture(scope="module")
def corpus():
    return small_corpus()


def test_per_choice_loglikelihoods_equal_lm_eval_task_pipeline(tiny_loaded, corpus, tmp_path):
    loaded = tiny_loaded("gemma3_text")
    data = get_task("continuation").load(LANGS, corpus, limit=4)
    items = [it for lang in LANGS for it in data[lang]]
    ref = lm_eval_multiple_choice(loaded, items, tmp_path)
    engine = Engine(loaded, batch_size=4, progress=False)
    ours = [engine.score_choices(it.context, it.choices) for it in items]
    assert len(ours) == len(ref["logprobs"]) == 12
    for a, b in zip(ours, ref["logprobs"], strict=True):
        assert a == pytest.approx(b, abs=1e-4)
    acc = sum(max(range(4), key=lambda i, s=s: s[i]) == it.gold for s, it in zip(ours, items, strict=True)) / 12
    assert acc == pytest.approx(ref["acc"])


def test_engine_lm_eval_gives_the_same_tables(tiny_loaded, corpus):
    loaded = tiny_loaded("llama")
    kw = dict(tasks="continuation,bpc", languages=LANGS, limit=5, source=corpus, progress=False, fertility=False)
    ours = evaluate(loaded, engine="babelscope", **kw)
    theirs = evaluate(loaded, engine="lm_eval", **kw)
    for lang in LANGS:
        assert (
            ours.results["tasks"]["continuation"][lang]["acc"] == theirs.results["tasks"]["continuation"][lang]["acc"]
        )
        for a, b in zip(ours.records["continuation"][lang], theirs.records["continuation"][lang], strict=True):
            assert a["logprobs"] == pytest.approx(b["logprobs"], abs=1e-4)
        # the tiny tokenizer adds no BOS, so lm-eval's rolling windows equal babelscope's
        assert ours.results["tasks"]["bpc"][lang]["bits_per_char"] == pytest.approx(
            theirs.results["tasks"]["bpc"][lang]["bits_per_char"], abs=1e-5
        )
    assert (
        theirs.results["consistency"]["continuation"]["matrix"] == ours.results["consistency"]["continuation"]["matrix"]
    )
