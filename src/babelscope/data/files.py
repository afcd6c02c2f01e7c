"""Read aligned corpora from JSONL, CSV or TSV files (``data.formats`` writes them: ``write_corpus``).

Layouts (detected from the columns/keys):

* wide: one column per language, plus an optional ``item_id`` (and ``source``) column::

      item_id,eng_Latn,fr,de
      greet-1,Good morning.,Bonjour.,Guten Morgen.

* long: one row per (item, language): ``item_id``, ``language``, ``text`` (+ optional
  ``source``)::

      {"item_id": "greet-1", "language": "fr", "text": "Bonjour."}

* nested (JSONL only, the built-in format): ``{"item_id": ..., "texts": {"fr": ...}}``.

Language names go through ``babelscope.languages.resolve``; empty cells mean "no text in this
language". Every error names the file and the line of the offending row.
"""

from __future__ import annotations

import csv
import gzip
import json
import lzma
import os

from babelscope.data.aligned import Item, ParallelCorpus
from babelscope.data.formats import (  # noqa: F401 (write_corpus: the writer of the same formats, re-exported)
    ID_COLUMN,
    LONG_COLUMNS,
    SOURCE_COLUMN,
    file_kind,
    open_text,
    write_corpus,
)
from babelscope.errors import DataError, LanguageError
from babelscope.languages import resolve


def _language(name: str, where: str) -> str:
    try:
        return resolve(name)
    except LanguageError as err:
        raise DataError(
            f"{where}: {name!r} is not a language column ({err}) Name language columns by "
            f"language code and ids {ID_COLUMN!r}, or use the long layout "
            f"({ID_COLUMN}, language, text)."
        ) from None


class _Builder:
    """Collects rows into items, checking duplicates; remembers where each item came from."""

    def __init__(self, path: str):
        self.path = path
        self.items: dict[str, Item] = {}
        self.stem = os.path.basename(path).split(".")[0]
        self._lang_cache: dict[str, str] = {}

    def lang(self, name: str, where: str) -> str:
        if name not in self._lang_cache:
            self._lang_cache[name] = _language(name, where)
        return self._lang_cache[name]

    def add(self, item_id, texts: dict[str, str], source, where: str, merge: bool = False):
        item_id = str(item_id) if item_id not in (None, "") else None
        if item_id is None:
            raise DataError(f"{where}: missing {ID_COLUMN}.")
        item = self.items.get(item_id)
        if item is None:
            self.items[item_id] = Item(item_id, dict(texts), str(source or "user"))
            return
        if not merge:
            raise DataError(f"{where}: duplicate {ID_COLUMN} {item_id!r}; ids must be unique.")
        for lang, text in texts.items():
            if lang in item.texts:
                raise DataError(f"{where}: item {item_id!r} already has a {lang} text.")
            item.texts[lang] = text

    def corpus(self) -> ParallelCorpus:
        items = [it for it in self.items.values() if it.texts]
        if not items:
            raise DataError(f"{self.path}: no aligned text found (empty file?).")
        return ParallelCorpus(items, os.path.basename(self.path))


def _text(value, where: str, column: str) -> str | None:
    if value is None or value == "":
        return None
    if not isinstance(value, str):
        raise DataError(f"{where}: column {column!r} must hold text, got {type(value).__name__}.")
    return value


def _add_wide(b: _Builder, row: dict, where: str, fallback_id: str) -> None:
    texts = {}
    for key, value in row.items():
        if key in (ID_COLUMN, SOURCE_COLUMN):
            continue
        text = _text(value, where, key)
        if text is not None:
            lang = b.lang(key, where)
            if lang in texts:
                raise DataError(f"{where}: two columns name the same language {lang}.")
            texts[lang] = text
    b.add(row.get(ID_COLUMN) or fallback_id, texts, row.get(SOURCE_COLUMN), where)


def _add_long(b: _Builder, row: dict, where: str) -> None:
    lang = row.get("language")
    if not isinstance(lang, str) or not lang:
        raise DataError(f"{where}: missing 'language'.")
    text = _text(row.get("text"), where, "text")
    texts = {} if text is None else {b.lang(lang, where): text}
    b.add(row.get(ID_COLUMN), texts, row.get(SOURCE_COLUMN), where, merge=True)


def _read_jsonl(path: str) -> ParallelCorpus:
    b = _Builder(path)
    with open_text(path) as f:
        for lineno, line in enumerate(f, 1):
            if not line.strip():
                continue
            where = f"{path}:{lineno}"
            try:
                row = json.loads(line)
            except json.JSONDecodeError as err:
                raise DataError(f"{where}: not valid JSON ({err.msg}).") from None
            if not isinstance(row, dict):
                raise DataError(f"{where}: each line must be a JSON object.")
            if "texts" in row:
                if not isinstance(row["texts"], dict):
                    raise DataError(f"{where}: 'texts' must map language -> text.")
                _add_wide(b, {**row["texts"], **{k: row.get(k) for k in (ID_COLUMN, SOURCE_COLUMN)}}, where, "")
            elif all(c in row for c in LONG_COLUMNS):
                _add_long(b, row, where)
            else:
                _add_wide(b, row, where, f"{b.stem}:{lineno}")
    return b.corpus()


def _read_delimited(path: str, delimiter: str) -> ParallelCorpus:
    b = _Builder(path)
    with open_text(path) as f:
        reader = csv.reader(f, delimiter=delimiter)
        header = next(reader, None)
        if not header:
            raise DataError(f"{path}:1: empty file; the first row must name the columns.")
        header = [h.strip() for h in header]
        long = all(c in header for c in LONG_COLUMNS)
        if not long:
            for name in header:
                if name not in (ID_COLUMN, SOURCE_COLUMN):
                    b.lang(name, f"{path}:1")
        row_no = 0
        while True:
            start = reader.line_num + 1
            try:
                values = next(reader)
            except StopIteration:
                break
            except csv.Error as err:
                raise DataError(f"{path}:{start}: {err}.") from None
            if not any(v.strip() for v in values):
                continue
            row_no += 1
            where = f"{path}:{start}"
            if len(values) != len(header):
                raise DataError(f"{where}: {len(values)} fields, expected {len(header)} ({', '.join(header)}).")
            row = dict(zip(header, values))
            if long:
                _add_long(b, row, where)
            else:
                _add_wide(b, row, where, f"{b.stem}:{row_no}")
    return b.corpus()


def read_corpus(path: str) -> ParallelCorpus:
    """Read a user corpus file (layout detected; see the module docstring)."""
    kind = file_kind(path)
    try:
        if kind == "jsonl":
            return _read_jsonl(path)
        return _read_delimited(path, "," if kind == "csv" else "\t")
    except UnicodeDecodeError:
        raise DataError(f"{path} is not UTF-8 text (a binary file?); corpus files are UTF-8 JSONL, CSV or "
                        "TSV.") from None
    except (EOFError, lzma.LZMAError, gzip.BadGzipFile) as exc:
        raise DataError(f"{path} cannot be decompressed ({exc}); is it compressed as its name says?") from None
