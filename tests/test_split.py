"""data/split.py: one held-out split for every verb, and the aligned-texts helpers."""

import pytest

from babelscope.data.corpus import Item, ParallelCorpus
from babelscope.data.split import held_out_items, split_for_eval, split_texts, texts_by_overlap, texts_of
from babelscope.errors import DataError

ITEMS = [
    Item("a", {"eng_Latn": "one", "fra_Latn": "un"}),
    Item("b", {"eng_Latn": "two"}),
    Item("c", {"eng_Latn": "three", "fra_Latn": "trois", "deu_Latn": "drei"}),
    Item("d", {"fra_Latn": "quatre", "deu_Latn": "vier"}),
]


def test_texts_of_puts_items_aligned_in_all_languages_first():
    assert texts_of(ITEMS, ["eng_Latn", "fra_Latn"], 10) == {
        "eng_Latn": ["one", "three", "two"],
        "fra_Latn": ["un", "trois", "quatre"],
    }
    assert texts_of(ITEMS, ["eng_Latn", "fra_Latn"], 1) == {"eng_Latn": ["one"], "fra_Latn": ["un"]}


def test_texts_by_overlap_ranks_by_the_number_of_languages():
    assert texts_by_overlap(ITEMS, ["eng_Latn", "fra_Latn", "deu_Latn"])["eng_Latn"] == ["three", "one", "two"]


def test_split_is_by_item_id_and_held_out_items_match_it():
    corpus = ParallelCorpus([Item(f"i{k}", {"eng_Latn": f"text {k}", "fra_Latn": f"texte {k}"}) for k in range(200)])
    train, held = split_for_eval(corpus)
    assert {it.item_id for it in train}.isdisjoint(it.item_id for it in held)
    assert len(train) + len(held) == 200 and 0 < len(held) < 80
    sub = corpus.subset(languages="fra_Latn")
    assert [it.item_id for it in split_for_eval(sub)[1]] == [it.item_id for it in held]


def test_held_out_items_reads_a_source(tmp_path):
    corpus = ParallelCorpus([Item(f"i{k}", {"eng_Latn": f"text {k}", "fra_Latn": f"texte {k}"}) for k in range(60)])
    path = tmp_path / "c.jsonl"
    corpus.save(str(path))
    held = held_out_items(str(path), ["fra_Latn"])
    assert [it.item_id for it in held] == [it.item_id for it in split_for_eval(corpus)[1]]
    assert all(set(it.texts) == {"fra_Latn"} for it in held)


def test_split_texts_raises_without_held_out_text():
    with pytest.raises(DataError, match="too little text"):
        split_texts(ParallelCorpus(ITEMS[:1]), ["eng_Latn"])
