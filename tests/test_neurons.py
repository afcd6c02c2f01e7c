"""LAPE and ternary neurons recover planted neurons; deactivation equals zeroing by hand."""

import json

import pytest
import torch
from tests.neurons_fixtures import D_MLP, GENERAL, LANGS, RELATED, SPECIFIC, planted_batches, planted_model

from babelscope.interpret import lape, ternary
from babelscope.interpret.activations import collect
from babelscope.models.adapters import get_adapter
from babelscope.models.reducers import NeuronReducer

N_PLANTED = sum(len(v) for v in SPECIFIC.values()) + len(RELATED)


@pytest.fixture(scope="module")
def probs():
    model = planted_model()
    a = get_adapter(model)
    red = collect(model, a, planted_batches(rows=32), NeuronReducer(LANGS, a.n_layers, a.d_mlp))
    return red.probabilities()  # [L, F, K]


def _layer0(mask_lf):
    assert not mask_lf[1].any()  # nothing selected in layer 1 (background only)
    return sorted(mask_lf[0].nonzero().flatten().tolist())


def test_lape_recovers_planted_neurons(probs):
    sets = lape.lape(probs, LANGS, top_rate=N_PLANTED / (2 * D_MLP))
    assert int(sets.selected.sum()) == N_PLANTED == round(sets.info["top_rate"] * 2 * D_MLP)
    for k, lang in enumerate(LANGS):
        expected = sorted(SPECIFIC[lang] + (RELATED if k < 2 else []))
        assert _layer0(sets.members[k]) == expected
    assert not any(sets.selected[0, j] for j in GENERAL)  # general neurons have maximal entropy


def test_ternary_recovers_classes(probs):
    sets = ternary.autosweep(probs, LANGS, top_rate=N_PLANTED / (2 * D_MLP))
    assert ternary.all_language_count(sets) == 0  # appear[K] == 0 at the swept lambda
    classes = ternary.classify(probs, sets)
    spec = sorted(j for v in SPECIFIC.values() for j in v)
    assert _layer0(classes == 1) == spec
    assert _layer0(classes == 2) == sorted(RELATED)
    assert sorted((classes[0] == 3).nonzero().flatten().tolist()) == sorted(GENERAL)
    for k, lang in enumerate(LANGS):
        assert set(SPECIFIC[lang]) <= set(sets.members[k, 0].nonzero().flatten().tolist())
    counts = ternary.layer_counts(classes)
    assert counts["specific"] == [len(spec), 0] and counts["related"] == [len(RELATED), 0]


def test_lambda_zero_vs_sweep_and_score_formula(probs):
    k = len(LANGS)
    assert ternary.harmonic_scale(10) == pytest.approx(0.2929, abs=1e-4)
    s = ternary.score(probs, 0.1)
    h = ternary.normalised_entropy(probs)
    assert torch.allclose(s, h - 0.1 * probs.max(-1).values / ternary.harmonic_scale(k))
    assert float(h[0, GENERAL[0]]) == pytest.approx(1.0, abs=1e-6)  # fires equally in all
    assert float(h[0, SPECIFIC[LANGS[0]][0]]) < 1e-6


def test_kth_quantile_matches_kthvalue():
    x = torch.tensor([5.0, 1.0, 4.0, 2.0, 3.0, 9.0, 7.0, 8.0, 6.0, 0.0])
    assert lape.kth_quantile(x, 0.95) == 9.0  # rank round(9.5) = 10 (banker's rounding keeps 10)
    assert lape.kth_quantile(x, 0.5) == 4.0
    assert lape.entropy_over_languages(torch.zeros(1, 1, 3)).item() == 0.0


def test_ternary_assigns_lowest_scores_and_no_all_language_neuron():
    g = torch.Generator().manual_seed(1)
    p = torch.rand(4, 50, 5, generator=g, dtype=torch.float64) ** 3
    sets = ternary.autosweep(p, [f"l{i}" for i in range(5)], top_rate=0.05)
    assert int(sets.selected.sum()) == 10
    assert int((sets.n_languages() == 5).sum()) == 0
    lam = sets.info["lambda"]
    chosen = ternary.score(p, lam)[sets.selected]
    assert chosen.max() <= ternary.score(p, lam)[~sets.selected].min()


def test_deactivation_equals_zeroing_down_proj_input_by_hand(tiny_loaded):
    from babelscope.interpret.deactivation import deactivation_hooks
    from babelscope.models.hooks import hooks

    loaded = tiny_loaded("llama")
    model, a = loaded.model, loaded.adapter
    ids = torch.randint(5, 300, (2, 9), generator=torch.Generator().manual_seed(0))
    j = 7
    with torch.no_grad(), hooks(model, deactivation_hooks({1: [j]})):
        hooked = model(input_ids=ids).logits
    down = a.down(a.layer(model, 1))
    orig = down.forward

    def by_hand(x):
        x = x.clone()
        x[..., j] = 0
        return orig(x)

    down.forward = by_hand
    try:
        with torch.no_grad():
            manual = model(input_ids=ids).logits
    finally:
        down.forward = orig
    with torch.no_grad():
        plain = model(input_ids=ids).logits
    assert torch.equal(hooked, manual)
    assert not torch.allclose(hooked, plain)


@pytest.mark.parametrize("family", ["gemma3_text", "cohere"])  # softcap; logit_scale
def test_loss_matches_model_loss(tiny_loaded, family):
    from babelscope.interpret.activations import batch_nll, make_batches

    loaded = tiny_loaded(family)
    rows = [[1, 5, 9, 40, 77, 12], [1, 8, 30, 31]]
    batch = make_batches("x", rows, 2, pad_id=0, has_bos=True)[0]
    nll, n = batch_nll(loaded.model, loaded.adapter, batch)
    labels = batch.input_ids.masked_fill(batch.attention_mask == 0, -100)
    labels[:, 0] = -100
    with torch.no_grad():
        ref = loaded.model(input_ids=batch.input_ids, attention_mask=batch.attention_mask, labels=labels).loss
    assert n == 5 + 3
    assert nll / n == pytest.approx(float(ref), rel=1e-5)


def test_deactivation_check_own_neurons_hurt_own_language():
    from babelscope.interpret.deactivation import run_check, summarise

    model = planted_model()
    with torch.no_grad():  # let layer 0 matter: its down projection writes into the residual
        model.model.layers[0].mlp.down_proj.weight.normal_(0, 1.0, generator=torch.Generator().manual_seed(3))
    a = get_adapter(model)
    batches = planted_batches(rows=8)
    sets = {lang: {0: SPECIFIC[lang]} for lang in LANGS}
    exclude = torch.zeros(a.n_layers, a.d_mlp, dtype=torch.bool)
    exclude[0, [j for v in SPECIFIC.values() for j in v]] = True
    out = run_check(model, a, batches, LANGS, sets, exclude, seed=0)
    for i in range(len(LANGS)):
        row = out["increase"][i]
        assert [abs(x) for x in row[:i] + row[i + 1 :]] == pytest.approx([0.0, 0.0], abs=1e-6)
        assert row[i] != 0.0
    manual = summarise(
        ["a", "b"],
        {"a": 1.0, "b": 2.0},
        {"a": {"a": 1.5, "b": 2.1}, "b": {"a": 1.2, "b": 2.4}},
        {"a": {"a": 1.0, "b": 2.0}, "b": {"a": 1.0, "b": 2.0}},
        {"a": 3, "b": 3},
    )
    assert manual["per_language"]["a"]["own_vs_other_languages"] == pytest.approx(5.0)
    assert manual["per_language"]["a"]["own_vs_other_neurons"] == pytest.approx(2.5)
    assert manual["all_own_largest_in_row"] and manual["all_own_largest_in_column"]


def test_phases_on_the_released_mistral_profile():
    """Per-layer counts of the released Mistral-7B / MGSM masks (methods notes §3.4)."""
    spec = [
        17,
        2,
        63,
        42,
        31,
        2,
        1,
        1,
        1,
        0,
        0,
        0,
        0,
        1,
        2,
        2,
        0,
        0,
        60,
        65,
        59,
        59,
        45,
        59,
        90,
        74,
        73,
        211,
        379,
        331,
        145,
        51,
    ]
    rel = [
        171,
        10,
        218,
        23,
        9,
        1,
        1,
        2,
        0,
        1,
        1,
        1,
        0,
        2,
        3,
        5,
        4,
        0,
        29,
        37,
        23,
        17,
        14,
        15,
        16,
        15,
        22,
        81,
        147,
        260,
        124,
        101,
    ]
    got = ternary.phases({"specific": spec, "related": rel, "general": [0] * 32})
    assert [p["layers"] for p in got] == [[0, 3], [4, 17], [18, 29], [30, 31]]


def test_answer_batches_count_exactly_the_models_greedy_answer(tiny_loaded):
    from babelscope.interpret import activations as act

    loaded = tiny_loaded("llama")
    texts = {"eng_Latn": ["The cat sat on the mat and looked out.", "A dog ran."], "fra_Latn": ["Le chat dort."]}
    batches = act.answer_batches(loaded.model, loaded.tokenizer, texts, max_tokens=1000, batch_size=2)
    assert [b.language for b in batches] == ["eng_Latn", "fra_Latn"]
    bos = loaded.tokenizer.bos_token_id
    for batch in batches:
        with torch.no_grad():
            logits = loaded.model(input_ids=batch.input_ids, attention_mask=batch.attention_mask).logits  # [B, T, V]
        for b in range(batch.input_ids.shape[0]):
            counted = batch.count_mask[b].nonzero()[:, 0].tolist()  # answer positions
            assert counted and counted == list(range(counted[0], counted[-1] + 1))  # one span, after the prompt
            assert batch.input_ids[b, 0] == bos and not batch.count_mask[b, : counted[0]].any()
            assert counted[-1] + 1 - counted[0] <= act.ANSWER_LEN
            # every answer token is the model's own greedy choice after what precedes it
            greedy = logits[b, counted[0] - 1 : counted[-1]].argmax(-1)  # [n]
            assert greedy.tolist() == batch.input_ids[b, counted[0] : counted[-1] + 1].tolist()


def test_answer_batches_with_whole_prompts_count_only_the_answer(tiny_loaded):
    from babelscope.interpret import activations as act

    loaded = tiny_loaded("llama")
    long_question = " ".join(["How many apples does Anna have if she buys three more?"] * 6)  # > PROMPT_LEN tokens
    prompts = {"eng_Latn": [long_question]}
    batch = act.answer_batches(loaded.model, loaded.tokenizer, prompts, 1000, 2, prompt_len=None)[0]
    whole = len(loaded.tokenizer(long_question, add_special_tokens=False)["input_ids"])
    assert whole > act.PROMPT_LEN
    counted = batch.count_mask[0].nonzero()[:, 0].tolist()
    assert counted[0] == 1 + whole  # BOS + the whole question, then the generated answer counts
    cut = act.answer_batches(loaded.model, loaded.tokenizer, prompts, 1000, 2)[0]
    assert cut.count_mask[0].nonzero()[0, 0] == 1 + act.PROMPT_LEN


def test_answer_prompts_qt_and_jsonl(tmp_path):
    from babelscope.data.aligned import Item, ParallelCorpus
    from babelscope.errors import DataError
    from babelscope.interpret.neurons import answer_prompts

    corpus = ParallelCorpus(
        [Item(f"i{n}", {"eng_Latn": f"Question {n}?", "fra_Latn": f"Question {n} ?"}) for n in range(30)]
    )
    qt = answer_prompts("qt", corpus, ["eng_Latn", "fra_Latn"])
    assert qt["fra_Latn"] and all(p.startswith("fr: Question ") and p.endswith(" ?\nen:") for p in qt["fra_Latn"])
    assert all(p.endswith("?\nfr:") for p in qt["eng_Latn"])  # the pivot's own questions go to the other language
    path = tmp_path / "q.jsonl"
    rows = [{"language": "eng_Latn", "question": "Q1", "answer": "1"}, {"language": "fra_Latn", "question": "Q2"},
            {"language": "deu_Latn", "question": "Q3"}]
    path.write_text("\n".join(json.dumps(r) for r in rows) + "\n")
    assert answer_prompts(str(path), corpus, ["eng_Latn", "fra_Latn"]) == {"eng_Latn": ["Q1"], "fra_Latn": ["Q2"]}
    with pytest.raises(DataError, match="no prompt for rus_Cyrl"):
        answer_prompts(str(path), corpus, ["eng_Latn", "rus_Cyrl"])


def test_lape_results_say_multi_language_not_related():
    from babelscope.interpret import neurons as nr

    model = planted_model()
    a = get_adapter(model)
    reducer = collect(model, a, planted_batches(rows=32), NeuronReducer(LANGS, a.n_layers, a.d_mlp))
    lape_result = nr.from_stats(reducer, "m", "lape", top_rate=N_PLANTED / (2 * D_MLP))
    ternary_result = nr.from_stats(reducer, "m", "ternary", top_rate=N_PLANTED / (2 * D_MLP))
    assert list(lape_result.counts) == ["specific", "multi-language", "general"]
    assert list(ternary_result.counts) == ["specific", "related", "general"]
    assert set(lape_result.summary()["class_totals"]) == {"specific", "multi-language", "general"}
    assert (lape_result.classes == 2).sum() == sum(lape_result.counts["multi-language"]) > 0  # same integers
    assert lape_result.phases == ternary.phases(dict(zip(ternary.CLASSES[1:], lape_result.counts.values())))
