"""Aligned multilingual corpora: ``item_id -> {language: text}``.

One ``Item`` is one meaning (a paragraph, a sentence) with its text in every language that has
it; the same ``item_id`` across languages is what makes per-language numbers comparable (the
types live in ``data.aligned`` and are importable from here). ``load_corpus`` reads the built-in
corpus (human translations shipped with the package), a user file (JSONL/CSV/TSV, wide or long;
``data.files``) or a Hugging Face dataset in FLORES layout (``data.hub``).
"""

from __future__ import annotations

import json
import lzma
import os
from functools import cache, lru_cache
from importlib import resources

from babelscope.data.aligned import Item, ParallelCorpus
from babelscope.data.files import read_corpus
from babelscope.data.hub import load_hf
from babelscope.errors import DataError, UsageError

BUILTIN = "builtin"  # the --source value naming the corpus shipped with the package
HF_PREFIX = "hf:"  # --source hf:<dataset>[:<config>][@<split>]

__all__ = ["BUILTIN", "HF_PREFIX", "Item", "ParallelCorpus", "builtin_manifest", "list_sources", "load_builtin",
           "load_corpus"]


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
        corpus = load_hf(str(source)[len(HF_PREFIX) :])
    elif os.path.isdir(source):
        raise UsageError(
            f"corpus source {source!r} is a folder; give a .jsonl/.csv/.tsv file, or "
            f"hf:{source} for a Hugging Face dataset folder in FLORES layout."
        )
    elif os.path.exists(source):
        corpus = read_corpus(str(source))
    else:
        raise UsageError(f"corpus source {source!r} is neither 'builtin', an existing file, nor 'hf:<dataset>'.")
    if languages is not None and languages != "all" or sources is not None:
        corpus = corpus.subset(languages=None if languages == "all" else languages, sources=sources)
    return corpus
