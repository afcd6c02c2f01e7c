"""The held-out split every verb shares, and the aligned texts the methods read from it.

``split_for_eval`` holds items out once for all of babelscope: a seeded hash of each item_id
decides its side, so an item is on the same side in every language and in every subset of the
corpus. The measure tasks evaluate the held-out side; finetune, mask, heads and neurons train or
collect statistics on the other side only, so no evaluated item leaks::

    train, held = split_for_eval("builtin")                 # lists of Item
    texts_of(train, ["eng_Latn", "fra_Latn"], n=100)        # {lang: [text]}, fully aligned items first
    train_texts, held_texts = split_texts(corpus, languages)  # {lang: [text]} per side
"""

from __future__ import annotations

from babelscope.data.corpus import BUILTIN, Item, ParallelCorpus, load_corpus
from babelscope.errors import DataError

EVAL_FRACTION = 0.2  # share of the corpus' items held out for evaluation
EVAL_SEED = 0  # seed of the per-item_id hash that decides the held-out side


def split_for_eval(corpus=BUILTIN) -> tuple[list[Item], list[Item]]:
    """``(train_items, eval_items)``: a fixed split by item_id (EVAL_FRACTION held out, EVAL_SEED).

    ``corpus``: a ``ParallelCorpus`` or any source ``load_corpus`` reads.
    """
    corpus = corpus if isinstance(corpus, ParallelCorpus) else load_corpus(corpus)
    train, held = corpus.split(held_out_fraction=EVAL_FRACTION, seed=EVAL_SEED)
    return list(train.items), list(held.items)


def held_out_items(source=BUILTIN, languages=None) -> list[Item]:
    """The evaluation side of ``source`` cut to ``languages`` (what training must never see)."""
    return split_for_eval(load_corpus(source, languages=languages))[1]


def texts_of(items, languages: list[str], n: int | None = None) -> dict[str, list[str]]:
    """Up to ``n`` texts per language: items aligned across all ``languages`` first (comparable
    content), then the items that have this language only (corpus order within each group)."""

    def has_all(it) -> bool:
        return all(it.texts.get(lang, "").strip() for lang in languages)

    ordered = [it for it in items if has_all(it)] + [it for it in items if not has_all(it)]
    return {lang: [it.texts[lang] for it in ordered if it.texts.get(lang, "").strip()][:n] for lang in languages}


def texts_by_overlap(items, languages: list[str]) -> dict[str, list[str]]:
    """Texts per language, items aligned in more of ``languages`` first (corpus order within ties)."""
    ranked = sorted(items, key=lambda it: -sum(lang in it.texts for lang in languages))
    return {lang: [it.texts[lang] for it in ranked if it.texts.get(lang, "").strip()] for lang in languages}


def split_texts(corpus, languages: list[str]) -> tuple[dict[str, list[str]], dict[str, list[str]]]:
    """``({lang: train texts}, {lang: held-out texts})`` on the fixed evaluation split.

    Within each side, items aligned across more of ``languages`` come first, so the text is as
    parallel as the corpus allows; a language's other items follow. Raises when a language has
    no text on one of the sides.
    """
    train, held = split_for_eval(corpus)
    train_texts, held_texts = texts_by_overlap(train, languages), texts_by_overlap(held, languages)
    empty = [lang for lang in languages if not train_texts[lang] or not held_texts[lang]]
    if empty:
        raise DataError(
            f"too little text for {', '.join(empty)} in this source to hold some out; "
            "choose other languages or another --source."
        )
    return train_texts, held_texts
