"""Corpus file formats: file types (JSONL, CSV, TSV; optionally .gz / .xz), the column names of the
wide and long layouts, and the writer. ``data.files`` reads the same formats back.
"""

from __future__ import annotations

import csv
import gzip
import io
import json
import lzma
import os

from babelscope.errors import UsageError

ID_COLUMN = "item_id"
SOURCE_COLUMN = "source"
LONG_COLUMNS = ("language", "text")  # with item_id: the long layout


def open_text(path: str, mode: str = "rt", named: str | None = None):
    """Open text, decompressing by the extension of ``named`` (default ``path``); reading skips a
    UTF-8 byte-order mark."""
    opener = {".gz": gzip.open, ".xz": lzma.open}.get(os.path.splitext(named or path)[1], open)
    return opener(path, mode, encoding="utf-8-sig" if "r" in mode else "utf-8", newline="")


def file_kind(path: str) -> str:
    base = path[: -len(os.path.splitext(path)[1])] if path.endswith((".gz", ".xz")) else path
    ext = os.path.splitext(base)[1].lower()
    kinds = {".jsonl": "jsonl", ".ndjson": "jsonl", ".csv": "csv", ".tsv": "tsv"}
    if ext not in kinds:
        raise UsageError(
            f"{path}: unknown corpus file type {ext!r}; use .jsonl, .csv or .tsv (optionally compressed as .gz or .xz)."
        )
    return kinds[ext]


def write_corpus(corpus, path: str, layout: str = "wide") -> None:
    """Write ``corpus`` so that ``read_corpus(path)`` gives it back (atomically)."""
    if layout not in ("wide", "long"):
        raise UsageError(f"layout must be 'wide' or 'long', got {layout!r}.")
    kind = file_kind(path)
    langs = corpus.languages
    if layout == "wide":
        header = [ID_COLUMN, SOURCE_COLUMN, *langs]
        rows = [{ID_COLUMN: it.item_id, SOURCE_COLUMN: it.source, **it.texts} for it in corpus.items]
    else:
        header = [ID_COLUMN, SOURCE_COLUMN, *LONG_COLUMNS]
        rows = [
            {ID_COLUMN: it.item_id, SOURCE_COLUMN: it.source, "language": lang, "text": text}
            for it in corpus.items
            for lang, text in it.texts.items()
        ]
    buf = io.StringIO()
    if kind == "jsonl":
        for row in rows:
            buf.write(json.dumps(row, ensure_ascii=False) + "\n")
    else:
        writer = csv.DictWriter(buf, header, delimiter="," if kind == "csv" else "\t", restval="", lineterminator="\n")
        writer.writeheader()
        writer.writerows(rows)
    tmp = f"{path}.tmp-{os.getpid()}"
    with open_text(tmp, "wt", named=path) as f:
        f.write(buf.getvalue())
    os.replace(tmp, path)
