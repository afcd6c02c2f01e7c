"""Built-in aligned tasks, evaluate(), rescore and resume on a tiny model and a fixture corpus."""

import json
import sys

import pytest

from babelscope.data.split import EVAL_FRACTION, split_for_eval
from babelscope.errors import LanguageError, UsageError
from babelscope.measure import evaluate, format_table, rescore
from babelscope.measure.tasks import get_task
from babelscope.measure.tasks.builtin import split_text
from babelscope.runs import RunFolder
from measure_fixtures import small_corpus

LANGS = ["eng_Latn", "fra_Latn", "deu_Latn", "zho_Hans"]


@pytest.fixture(scope="module")
def corpus():
    return small_corpus()


def test_split_is_disjoint_deterministic_and_sized(corpus):
    train, held = split_for_eval(corpus)
    ids_t, ids_h = {it.item_id for it in train}, {it.item_id for it in held}
    assert not ids_t & ids_h and len(ids_t | ids_h) == len(corpus)
    assert abs(len(held) / len(corpus) - EVAL_FRACTION) < 0.12
    assert [it.item_id for it in split_for_eval(corpus)[1]] == [it.item_id for it in held]
    sub = corpus.subset(languages=["fra_Latn"])  # same side in any subset
    assert {it.item_id for it in split_for_eval(sub)[1]} == ids_h


@pytest.mark.parametrize("name", ["continuation", "translation"])
def test_mc_items_aligned_same_gold_and_held_out(corpus, name):
    data = get_task(name).load(LANGS, corpus, limit=12)
    held = {it.item_id for it in split_for_eval(corpus)[1]}
    ids = [[it.item_id for it in data[lang]] for lang in LANGS]
    assert all(i == ids[0] for i in ids) and len(ids[0]) == 12 and set(ids[0]) <= held
    for items in zip(*(data[lang] for lang in LANGS), strict=True):
        assert len({it.gold for it in items}) == 1
        for it in items:
            assert len(it.choices) == 4 and len(set(it.choices)) == 4
    golds = [it.gold for it in data["eng_Latn"]]
    assert len(set(golds)) > 1  # the gold position is not always the same


def test_continuation_gold_is_the_true_second_half(corpus):
    data = get_task("continuation").load(["eng_Latn", "zho_Hans"], corpus, limit=5)
    for lang in ("eng_Latn", "zho_Hans"):
        for it in data[lang]:
            assert it.context + it.choices[it.gold] == corpus.get(it.item_id).texts[lang].strip()
    assert split_text("猫坐在垫子上") == ("猫坐在", "垫子上")


def test_unknown_task_and_language_list_what_exists(corpus):
    with pytest.raises(UsageError, match="Available: .*continuation"):
        get_task("contination")
    with pytest.raises(LanguageError, match="available: .*deu_Latn"):
        get_task("continuation").load(["eng_Latn", "spa_Latn"], corpus)


@pytest.fixture(scope="module")
def evaluated(tiny_loaded, corpus, tmp_path_factory):
    run = RunFolder.create(tmp_path_factory.mktemp("runs"), "tiny", "eval", {}, announce=False)
    result = evaluate(
        tiny_loaded("llama"), "continuation,translation,bpc", LANGS, limit=8, source=corpus, run=run, progress=False
    )
    return result, run


def test_results_shape_and_consistency(evaluated):
    result, run = evaluated
    res = json.loads((run.path / "results.json").read_text())
    for lang in LANGS:
        m = res["tasks"]["continuation"][lang]
        assert m["n"] == 8 and 0 <= m["acc"] <= 1 and "acc_norm" in m and "acc_bytes" in m
        assert res["tasks"]["bpc"][lang]["bits_per_char"] > 0
    cons = res["consistency"]["continuation"]
    assert all(cons["matrix"][lang][lang] == 1.0 for lang in LANGS)
    assert cons["matrix"]["fra_Latn"]["deu_Latn"] == cons["matrix"]["deu_Latn"]["fra_Latn"]
    assert set(cons["vs_reference"]) == set(LANGS) - {"eng_Latn"}
    recs = run.read_samples("continuation", "fra_Latn")
    eng = {r["item_id"]: r["pred"] for r in run.read_samples("continuation", "eng_Latn")}
    flips = [r["flipped_vs_reference"] for r in recs]
    assert flips == [r["pred"] != eng[r["item_id"]] for r in recs]
    assert cons["vs_reference"]["fra_Latn"]["consistency"] == pytest.approx(1 - sum(flips) / len(flips))
    macro = res["macro"]["continuation"]["acc"]
    assert macro == pytest.approx(sum(res["tasks"]["continuation"][lang]["acc"] for lang in LANGS) / 4)
    assert "fertility_correlation" in res and res["fertility_correlation"]["bpc"]["tokens_per_char"]["n"] == 4
    assert "continuation acc" in format_table(result) and "macro" in format_table(result)
    assert set(result.to_frame()["language"]) == set(LANGS)
    loaded_back = type(result).load(run.path)
    assert loaded_back.results["tasks"] == res["tasks"]
    assert loaded_back.records["continuation"]["fra_Latn"] == recs


def test_rescore_reproduces_results(evaluated):
    _, run = evaluated
    again, same = rescore(run.path)
    assert same
    old = json.loads((run.path / "results.json").read_text())
    assert again.results["tasks"] == old["tasks"] and again.results["consistency"] == old["consistency"]


def test_rescore_sees_edited_records(evaluated, tmp_path):
    import shutil

    _, run = evaluated
    copy = tmp_path / "copy"
    shutil.copytree(run.path, copy)
    path = copy / "samples" / "continuation.deu_Latn.jsonl"
    recs = [json.loads(line) for line in path.read_text().splitlines()]
    wrong = next(r for r in recs if r["pred"] != r["gold"])
    wrong["logprobs"] = [0.0 if i == wrong["gold"] else -50.0 for i in range(4)]  # now right
    path.write_text("".join(json.dumps(r) + "\n" for r in recs))
    before = json.loads((run.path / "results.json").read_text())["tasks"]["continuation"]["deu_Latn"]["acc"]
    again, same = rescore(copy)
    assert not same
    assert again.results["tasks"]["continuation"]["deu_Latn"]["acc"] == pytest.approx(before + 1 / len(recs))


def test_resume_scores_only_missing_items(tiny_loaded, corpus, tmp_path, monkeypatch):
    ev_mod = sys.modules["babelscope.measure.evaluate"]

    run = RunFolder.create(tmp_path, "tiny", "eval", {}, announce=False)
    loaded = tiny_loaded("llama")
    first = evaluate(
        loaded,
        "continuation",
        ["eng_Latn", "fra_Latn"],
        limit=6,
        source=corpus,
        run=run,
        progress=False,
        fertility=False,
    )
    path = run.path / "samples" / "continuation.fra_Latn.jsonl"
    lines = path.read_text().splitlines()
    path.write_text("\n".join(lines[:2]) + "\n")  # as if interrupted after two items
    scored = []
    real = ev_mod.score_items

    def counting(scorer, task, lang, items):
        scored.append((lang, len(items)))
        return real(scorer, task, lang, items)

    monkeypatch.setattr(ev_mod, "score_items", counting)
    second = evaluate(
        loaded,
        "continuation",
        ["eng_Latn", "fra_Latn"],
        limit=6,
        source=corpus,
        run=run,
        progress=False,
        fertility=False,
    )
    assert scored == [("fra_Latn", 4)]
    assert second.results["tasks"] == first.results["tasks"]


def test_malformed_item_names_its_id(tiny_loaded):
    from babelscope.errors import DataError
    from babelscope.measure.engine import Engine
    from babelscope.measure.evaluate import score_items
    from babelscope.measure.tasks import MCItem

    bad = MCItem("q-17", "Question?", ["yes", "no"], gold=5)
    with pytest.raises(DataError, match="q-17"):
        score_items(Engine(tiny_loaded("llama"), progress=False), get_task("continuation"), "eng_Latn", [bad])
