"""Training data formats: Just Go Parallel blocks, PLAST question-translation pairs, placement,
packing with loss masks, and exclusion of held-out evaluation items."""

import json

import pytest

from babelscope.data.corpus import Item
from babelscope.data.parallel import (
    Doc,
    build_docs,
    exclude_eval,
    pack,
    parallel_docs,
    parse_spec,
    place,
    qt_docs,
)
from babelscope.errors import UsageError


def items(n, langs=("eng_Latn", "fra_Latn")):
    return [Item(f"i{k}", {lang: f"{lang[:3]} text {k}" for lang in langs}) for k in range(n)]


def test_parallel_format_and_direction_alternates_in_blocks():
    docs = parallel_docs(items(10), "eng_Latn", ["fra_Latn"], block_size=3)
    assert docs[0].completion == "en: eng text 0\nfr: fra text 0" and docs[0].prompt == ""
    directions = [d.direction for d in docs]
    en_fr, fr_en = "eng_Latn>fra_Latn", "fra_Latn>eng_Latn"
    assert directions == [en_fr] * 3 + [fr_en] * 3 + [en_fr] * 3 + [fr_en]
    assert docs[3].completion == "fr: fra text 3\nen: eng text 3"


def test_parallel_blocks_count_per_language_pair():
    docs = parallel_docs(items(4, ("eng_Latn", "fra_Latn", "deu_Latn")), "eng_Latn", ["fra_Latn", "deu_Latn"], 2)
    # rounds as the official prepare_parallel.py: each pair gives one block per round, the direction flips
    # after every round; tags sort (de < en < fr), so the first round puts en first for fr and de first for de
    assert [d.direction for d in docs] == ["eng_Latn>fra_Latn"] * 2 + ["deu_Latn>eng_Latn"] * 2 + [
        "fra_Latn>eng_Latn"
    ] * 2 + ["eng_Latn>deu_Latn"] * 2


def test_qt_pairs_question_then_english():
    docs = qt_docs(items(2), "eng_Latn", ["fra_Latn"])
    assert docs[0].prompt == "fr: fra text 0\nen:" and docs[0].completion == " eng text 0"


def test_placement_end_start_interleave():
    par, other = ["p1", "p2"], ["o1", "o2", "o3", "o4"]
    assert place(par, other, "end") == other + par
    assert place(par, other, "start") == par + other
    # as the official create_dataloader: each parallel unit, then its share of the others
    assert place(par, other, "interleave") == ["p1", "o1", "o2", "p2", "o3", "o4"]


def test_pack_masks_prompt_and_keeps_every_document(tiny_tokenizer):
    docs = [Doc("fr: bonjour\nen:", " hello", "qt", "a"), Doc("", "en: cat\nfr: chat", "parallel", "b")]
    chunks = pack(docs, tiny_tokenizer, 8)
    ids = [t for c in chunks for t, m in zip(c[0], c[2], strict=True) if m]
    labels = [t for c in chunks for t in c[1] if t != -100]
    hello = tiny_tokenizer(" hello", add_special_tokens=False)["input_ids"]
    prompt = tiny_tokenizer("fr: bonjour\nen:", add_special_tokens=False)["input_ids"]
    whole = tiny_tokenizer("en: cat\nfr: chat", add_special_tokens=False)["input_ids"]
    assert ids == [tiny_tokenizer.bos_token_id, *prompt, *hello, tiny_tokenizer.bos_token_id, *whole]
    assert labels == hello + whole  # prompts and separators carry no loss
    assert all(len(c[0]) == len(c[1]) == len(c[2]) == 8 for c in chunks)


def test_held_out_items_excluded_by_id_and_text(tmp_path):
    rows = [{"item_id": f"i{k}", "eng_Latn": f"sentence {k}", "fra_Latn": f"phrase {k}"} for k in range(6)]
    rows.append({"item_id": "copy", "eng_Latn": "sentence 1", "fra_Latn": "autre"})  # same text as held-out i1
    path = tmp_path / "pairs.jsonl"
    path.write_text("".join(json.dumps(r) + "\n" for r in rows))
    held = [Item("i0", {"eng_Latn": "sentence 0"}), Item("i1", {"eng_Latn": "sentence 1", "fra_Latn": "phrase 1"})]
    docs = build_docs([f"parallel:{path}", f"mono:{path}"], ["eng_Latn", "fra_Latn"], eval_items=held, block_size=2)
    ids = {d.item_id for d in docs}
    assert ids == {"i2", "i3", "i4", "i5"}
    texts = " ".join(d.completion for d in docs)
    assert "sentence 0" not in texts and "sentence 1" not in texts
    assert [d.kind for d in docs][-4:] == ["parallel"] * 4  # parallel data last by default
    assert exclude_eval(items(3), [Item("x", {"eng_Latn": "eng text 2"})]) == items(3)[:2]


def test_bad_specs():
    assert parse_spec("parallel:hf:org/data") == ("parallel", "hf:org/data")
    for bad in ("parallel", "poetry:builtin", "cypher:hf:neo4j/text2cypher-2024v1", "mono:"):
        with pytest.raises(UsageError):
            parse_spec(bad)
    with pytest.raises(UsageError, match="besides the pivot"):
        build_docs(["parallel:builtin"], ["eng_Latn"])


def test_cypher_pairs_come_from_the_function_the_caller_passes():
    from babelscope.cypher.questions import finetune_pairs

    docs = build_docs(["cypher:builtin"], ["eng_Latn", "spa_Latn"], cypher_pairs=finetune_pairs)
    assert docs and {d.kind for d in docs} == {"cypher"} and {d.direction for d in docs} == {"eng_Latn", "spa_Latn"}
    pairs = finetune_pairs(["eng_Latn", "spa_Latn"], split="train")
    assert sorted((d.prompt, d.completion) for d in docs) == sorted((p["prompt"], p["completion"]) for p in pairs)
    with pytest.raises(UsageError, match="cypher_pairs"):
        build_docs(["cypher:builtin"], ["eng_Latn", "spa_Latn"])
