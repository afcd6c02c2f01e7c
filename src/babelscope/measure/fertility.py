"""Tokenizer fertility per language on aligned text (tokenizers only, never model weights).

For each language L and each tokenizer, over the items L shares with English:

* ``fertility``: tokens per whitespace word, or tokens per character for scripts written
  without spaces (``unit`` says which);
* ``tokens_per_char``, ``bytes_per_token`` (UTF-8 bytes);
* ``parity``: L's tokens divided by English tokens on the same items (English is 1.0);
* ``nsl`` (several tokenizers): normalised sequence length, a tokenizer's tokens divided by the first
  tokenizer's on the same items (the first is the baseline, 1.0).

Sums stream per language, so memory does not grow with the amount of text.
"""

from __future__ import annotations

import os
from dataclasses import dataclass

from tqdm.auto import tqdm

from babelscope.data.corpus import load_corpus
from babelscope.errors import UsageError, require
from babelscope.languages import REFERENCE, info, resolve_many  # parity is measured against REFERENCE
from babelscope.models.load import load_tokenizer

NO_SPACE_SCRIPTS = {"Hans", "Hant", "Jpan", "Thai", "Khmr", "Laoo", "Mymr", "Tibt"}  # fertility per char
TOKENIZER_ALIASES = {"tekken": "mistral tekken_240911 (mistral_common)"}
_BATCH = 256  # texts per tokenizer call


class TekkenCounter:
    """Mistral's Tekken tokenizer from ``mistral_common``'s bundled files."""

    name = "tekken"

    def __init__(self, file: str = "tekken_240911.json"):
        mistral_common = require("mistral_common", extra="tekken", feature="the tekken tokenizer")
        from mistral_common.tokens.tokenizers.tekken import Tekkenizer

        path = os.path.join(os.path.dirname(mistral_common.__file__), "data", file)
        self._tok = Tekkenizer.from_file(path)

    def count(self, texts: list[str]) -> list[int]:
        return [len(self._tok.encode(t, bos=False, eos=False)) for t in texts]


class HFCounter:
    """Any Hugging Face tokenizer (special tokens not counted)."""

    def __init__(self, name: str, tokenizer=None):
        self.name = name
        self._tok = tokenizer if tokenizer is not None else load_tokenizer(name)

    def count(self, texts: list[str]) -> list[int]:
        ids = self._tok(texts, add_special_tokens=False)["input_ids"]
        return [len(x) for x in ids]


def get_counter(spec, tokenizer=None):
    """``"tekken"``, an embedded model name, a folder or hub id, or a tokenizer object."""
    if spec == "tekken":
        return TekkenCounter()
    if not isinstance(spec, str):
        return HFCounter(getattr(spec, "name_or_path", "tokenizer"), spec)
    return HFCounter(spec, tokenizer)


@dataclass
class _Sums:
    items: int = 0
    tokens: int = 0
    words: int = 0
    chars: int = 0
    nonspace_chars: int = 0
    bytes: int = 0
    ref_tokens: int = 0

    def add(self, text: str, n_tokens: int, ref_tokens: int) -> None:
        self.items += 1
        self.tokens += n_tokens
        self.words += len(text.split())
        self.chars += len(text)
        self.nonspace_chars += sum(1 for c in text if not c.isspace())
        self.bytes += len(text.encode("utf-8"))
        self.ref_tokens += ref_tokens


def _figures(lang: str, s: _Sums) -> dict:
    no_space = lang.split("_")[-1] in NO_SPACE_SCRIPTS
    per = s.nonspace_chars if no_space else s.words
    return {"items": s.items, "tokens": s.tokens, "words": s.words, "chars": s.chars, "bytes": s.bytes,
            "unit": "char" if no_space else "word", "fertility": s.tokens / max(per, 1),
            "tokens_per_char": s.tokens / max(s.chars, 1), "bytes_per_token": s.bytes / max(s.tokens, 1),
            "parity": s.tokens / s.ref_tokens if s.ref_tokens else None}


def _count_all(counter, texts: list[str]) -> list[int]:
    out: list[int] = []
    for start in range(0, len(texts), _BATCH):
        out += counter.count(texts[start:start + _BATCH])
    return out


def fertility_table(counter, corpus, languages, limit: int | None = None, reference: str = REFERENCE,
                    progress: bool = True) -> dict:
    """``{language: figures}`` for one tokenizer (a counter from ``get_counter`` or a spec)."""
    if not hasattr(counter, "count"):
        counter = get_counter(counter)
    has_ref = reference in corpus.languages
    ref_items = [it for it in corpus.items if reference in it.texts] if has_ref else []
    ref_counts = dict(zip((it.item_id for it in ref_items),
                          _count_all(counter, [it.texts[reference] for it in ref_items])))
    table = {}
    for lang in tqdm(languages, desc=f"fertility {counter.name}", disable=not progress):
        items = [it for it in corpus.items if lang in it.texts and (not has_ref or it.item_id in ref_counts)]
        items = items[:limit] if limit else items
        if not items:
            raise UsageError(f"no items in {lang} aligned with {reference}; choose other languages.")
        sums = _Sums()
        for it, n in zip(items, _count_all(counter, [it.texts[lang] for it in items])):
            sums.add(it.texts[lang], n, ref_counts.get(it.item_id, 0))
        table[lang] = _figures(lang, sums)
    return table


def fertility(tokenizers, languages="all", source="builtin", limit: int | None = None,
              progress: bool = True) -> dict:
    """``{tokenizer: {language: figures}}`` for several tokenizers side by side on one corpus."""
    corpus = load_corpus(source)  # a source string or a ParallelCorpus
    langs = resolve_many(languages, available=corpus.languages)
    specs = [t for t in (tokenizers.split(",") if isinstance(tokenizers, str) else tokenizers) if t]
    result = {getattr(s, "name_or_path", s) if not isinstance(s, str) else s:
              fertility_table(get_counter(s), corpus, langs, limit, progress=progress) for s in specs}
    return add_nsl(result)


def add_nsl(result: dict) -> dict:
    """Normalised sequence length: each tokenizer's tokens over the first tokenizer's (the baseline) on
    the same items of the same language (the Bengali benchmark's NSL; the baseline is 1.0)."""
    baseline = next(iter(result.values()))
    for figures in result.values():
        for lang, f in figures.items():
            f["nsl"] = f["tokens"] / baseline[lang]["tokens"] if baseline[lang]["tokens"] else None
    return result


def format_table(result: dict, max_rows: int | None = None):
    """A rich table: one row per language, fertility and parity per tokenizer."""
    from rich.table import Table

    table = Table(title="Tokenizer fertility (tokens per word; * per character) and parity vs English")
    table.add_column("language")
    table.add_column("items", justify="right")
    for name in result:
        table.add_column(f"{name}\nfertility", justify="right")
        table.add_column("parity", justify="right")
    first = next(iter(result.values()))
    for lang in list(first)[:max_rows]:
        row = [f"{lang} {info(lang).name}", str(first[lang]["items"])]
        for figures in result.values():
            f = figures[lang]
            row += [f"{f['fertility']:.2f}{'*' if f['unit'] == 'char' else ''}",
                    "-" if f["parity"] is None else f"{f['parity']:.2f}"]
        table.add_row(*row)
    return table
