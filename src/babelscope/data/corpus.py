"""Aligned multilingual corpora: ``item_id -> {language: text}``.

One ``Item`` is one meaning (a paragraph, a sentence) with its text in every language that has
it; the same ``item_id`` across languages is what makes per-language numbers comparable.
``load_corpus`` reads the built-in corpus (human translations shipped with the package), a
user file (JSONL/CSV/TSV, wide or long) or a Hugging Face dataset in FLORES layout.
"""

from __future__ import annotations

import hashlib
import json
import lzma
import os
from collections import Counter
from dataclasses import dataclass, field
from functools import cache, lru_cache
from importlib import resources

from babelscope.errors import DataError, UsageError
from babelscope.languages import resolve_many

BUILTIN = "builtin"  # the --source value naming the corpus shipped with the package
HF_PREFIX = "hf:"  # --source hf:<dataset>[:<config>][@<split>]


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
        from babelscope.data.files import write_corpus

        write_corpus(self, path, layout)


# --------------------------------------------------------------------------- built-in corpus


def _builtin_dir():
    return resources.files("babelscope.data") / "builtin"


@lru_cache(maxsize=1)
def builtin_manifest() -> dict:
    """The built-in corpus' manifest (per-source licence, counts, locales, sha256)."""
    path = _builtin_dir() / "manifest.json"
    if not path.is_file():
        raise DataError(
            f"the built-in corpus is missing ({path}); rebuild it with "
            "`python scripts/build_corpus.py` or reinstall babelscope."
        )
    return json.loads(path.read_text(encoding="utf-8"))


@cache
def _builtin_items(name: str) -> tuple[Item, ...]:
    """Parse one built-in file once per process."""
    meta = builtin_manifest()["sources"][name]
    raw = lzma.decompress((_builtin_dir() / meta["file"]).read_bytes())
    items = []
    for line in raw.decode("utf-8").splitlines():
        row = json.loads(line)
        items.append(Item(row["item_id"], row["texts"], row["source"]))
    return tuple(items)


def list_sources() -> list[dict]:
    """One record per built-in source: name, description, licence, origin, items, counts."""
    out = []
    for name, meta in builtin_manifest()["sources"].items():
        out.append(
            {
                "name": name,
                "description": meta["description"],
                "license": meta["license"],
                "origin": meta["origin"],
                "items": meta["items"],
                "languages": sorted(meta["languages"]),
                "counts": dict(meta["languages"]),
                "locales": dict(meta["locales"]),
            }
        )
    return out


def load_builtin(sources=None) -> ParallelCorpus:
    known = list(builtin_manifest()["sources"])
    names = known if sources is None else ([sources] if isinstance(sources, str) else list(sources))
    for name in names:
        if name not in known:
            raise UsageError(f"unknown built-in source {name!r}; choose from {', '.join(known)}.")
    items = [it for name in names for it in _builtin_items(name)]
    return ParallelCorpus(items, BUILTIN)


# --------------------------------------------------------------------------- entry point


def load_corpus(source: str = BUILTIN, languages=None, sources=None) -> ParallelCorpus:
    """Load an aligned corpus.

    ``source``: ``"builtin"``; a file path (``.jsonl``, ``.json``, ``.csv``, ``.tsv``, each
    optionally ``.gz``/``.xz``; wide or long layout); or ``"hf:<dataset>[:<config>][@<split>]``
    for a Hugging Face dataset (hub id or local folder) in FLORES layout.
    ``languages``: codes (any form ``languages.resolve`` accepts) or ``"all"``; items are cut
    to these languages. ``sources``: built-in source names (gnome, libreoffice, django) or,
    for other corpora, the values of their ``source`` field.
    """
    if isinstance(source, ParallelCorpus):
        corpus = source
    elif source == BUILTIN or source is None:
        corpus = load_builtin(sources)
        sources = None
    elif str(source).startswith(HF_PREFIX):
        from babelscope.data.hub import load_hf

        corpus = load_hf(str(source)[len(HF_PREFIX) :])
    elif os.path.isdir(source):
        raise UsageError(
            f"corpus source {source!r} is a folder; give a .jsonl/.csv/.tsv file, or "
            f"hf:{source} for a Hugging Face dataset folder in FLORES layout."
        )
    elif os.path.exists(source):
        from babelscope.data.files import read_corpus

        corpus = read_corpus(str(source))
    else:
        raise UsageError(f"corpus source {source!r} is neither 'builtin', an existing file, nor 'hf:<dataset>'.")
    if languages is not None and languages != "all" or sources is not None:
        corpus = corpus.subset(languages=None if languages == "all" else languages, sources=sources)
    return corpus
