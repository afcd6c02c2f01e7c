"""The aligned-corpus types: ``Item`` (one meaning in several languages) and ``ParallelCorpus``.

One ``Item`` is one meaning (a paragraph, a sentence) with its text in every language that has
it; the same ``item_id`` across languages is what makes per-language numbers comparable. The
readers (``data.files``, ``data.hub``, the built-in corpus in ``data.corpus``) build these;
``ParallelCorpus.save`` writes one with ``data.formats.write_corpus``.
"""

from __future__ import annotations

import hashlib
from collections import Counter
from dataclasses import dataclass, field

from babelscope.data.formats import write_corpus
from babelscope.errors import UsageError
from babelscope.languages import resolve_many


@dataclass
class Item:
    """One aligned unit: the same meaning in several languages (treat ``texts`` as read-only)."""

    item_id: str
    texts: dict[str, str]
    source: str = "user"


@dataclass
class ParallelCorpus:
    """A list of aligned items, with helpers to pick languages and split without leakage."""

    items: list[Item]
    name: str = ""
    _counts: Counter = field(default=None, init=False, repr=False, compare=False)

    def __len__(self) -> int:
        return len(self.items)

    def __iter__(self):
        return iter(self.items)

    def counts(self) -> dict[str, int]:
        """Items per language, sorted by code."""
        if self._counts is None:
            self._counts = Counter(lang for item in self.items for lang in item.texts)
        return dict(sorted(self._counts.items()))

    @property
    def languages(self) -> list[str]:
        """Every language that has at least one item, sorted."""
        return list(self.counts())

    @property
    def sources(self) -> list[str]:
        return sorted({item.source for item in self.items})

    def resolve_languages(self, languages) -> list[str]:
        """``"deu_Latn,fr"``, a list or ``"all"`` -> codes present in this corpus (else raises)."""
        return resolve_many(languages, available=self.languages)

    def aligned(self, languages) -> list[Item]:
        """Items that have a text in every one of ``languages`` (texts limited to those)."""
        langs = self.resolve_languages(languages)
        return [
            Item(it.item_id, {lang: it.texts[lang] for lang in langs}, it.source)
            for it in self.items
            if all(lang in it.texts for lang in langs)
        ]

    def subset(self, languages=None, sources=None, item_ids=None, limit: int | None = None):
        """A new corpus with only these languages / sources / item ids, first ``limit`` items.

        Items left without any text in the chosen languages are dropped.
        """
        langs = None if languages is None else set(self.resolve_languages(languages))
        if sources is not None:
            sources = {sources} if isinstance(sources, str) else set(sources)
            unknown = sources - set(self.sources)
            if unknown:
                raise UsageError(f"unknown source(s) {sorted(unknown)}; this corpus has {self.sources}.")
        wanted = None if item_ids is None else set(item_ids)
        out = []
        for it in self.items:
            if (sources is not None and it.source not in sources) or (wanted is not None and it.item_id not in wanted):
                continue
            texts = it.texts if langs is None else {k: v for k, v in it.texts.items() if k in langs}
            if texts:
                out.append(it if texts is it.texts else Item(it.item_id, texts, it.source))
            if limit is not None and len(out) >= limit:
                break
        return ParallelCorpus(out, self.name)

    def split(self, held_out_fraction: float = 0.2, seed: int = 0):
        """``(kept, held_out)`` decided per item_id by a seeded hash.

        The side of an item depends only on its id and the seed, so the same item lands on the
        same side in every language and in every subset of this corpus.
        """
        if not 0.0 <= held_out_fraction <= 1.0:
            raise UsageError(f"held_out_fraction must be in [0, 1], got {held_out_fraction}.")
        kept, held = [], []
        for it in self.items:
            digest = hashlib.sha256(f"{seed}:{it.item_id}".encode()).digest()
            (held if int.from_bytes(digest[:8], "big") / 2**64 < held_out_fraction else kept).append(it)
        return ParallelCorpus(kept, self.name), ParallelCorpus(held, self.name)

    def get(self, item_id: str) -> Item:
        for it in self.items:
            if it.item_id == item_id:
                return it
        raise KeyError(item_id)

    def save(self, path: str, layout: str = "wide") -> None:
        """Write JSONL/CSV/TSV in ``wide`` (a column per language) or ``long`` layout."""
        write_corpus(self, path, layout)
