"""Hugging Face datasets in FLORES layout -> ``ParallelCorpus``.

``--source hf:<dataset>[:<config>][@<split>]``; ``<dataset>`` is a hub id or a local folder
that ``datasets.load_dataset`` can read (parquet, jsonl, csv files). Two layouts are known:

* wide (facebook/flores, Muennighoff/flores200): one ``sentence_<code>`` column per language
  (``sentence_eng_Latn``), plus ``id``;
* long (openlanguagedata/flores_plus): one row per sentence and language with ``id``,
  ``iso_639_3``, ``iso_15924`` and ``text``.

Without ``@split`` every split is read and item ids are ``<split>:<id>``, so the dev and
devtest sentences that share an ``id`` stay apart.
"""

from __future__ import annotations

import re

from babelscope.data.aligned import Item, ParallelCorpus
from babelscope.errors import DataError, LanguageError, UsageError
from babelscope.languages import resolve

WIDE_PREFIX = "sentence_"
LONG_COLUMNS = ("iso_639_3", "iso_15924", "text")
_FLORES_CODE = re.compile(r"[a-z]{3}_[A-Z][a-z]{3}")


def parse_spec(spec: str) -> tuple[str, str | None, str | None]:
    """``"name[:config][@split]"`` -> (name, config, split)."""
    split = None
    if "@" in spec:
        spec, split = spec.rsplit("@", 1)
    name, _, config = spec.partition(":")
    if not name:
        raise UsageError("hf source needs a dataset: --source hf:<dataset>[:<config>][@<split>].")
    return name, config or None, split or None


def _code(raw: str, where: str) -> str:
    """Canonical code; a well-formed FLORES code we do not know is kept as it is."""
    try:
        return resolve(raw)
    except LanguageError:
        if _FLORES_CODE.fullmatch(raw):
            return raw
        raise DataError(f"{where}: {raw!r} is not a language code.") from None


def _wide_items(ds, split: str, source: str) -> list[Item]:
    wide = [c for c in ds.column_names if c.startswith(WIDE_PREFIX)]
    cols = {c: _code(c[len(WIDE_PREFIX) :], f"{source} column {c}") for c in wide}
    data = ds.select_columns([*cols, *(["id"] if "id" in ds.column_names else [])]).to_dict()
    ids = data["id"] if "id" in data else list(range(len(ds)))
    texts_by_col = {c: data[c] for c in cols}
    items = []
    for row, item_id in enumerate(ids):
        texts = {cols[c]: t[row] for c, t in texts_by_col.items() if t[row]}
        if texts:
            items.append(Item(f"{split}:{item_id}", texts, source))
    return items


def _long_items(ds, split: str, source: str) -> list[Item]:
    if "id" not in ds.column_names:
        raise DataError(f"{source}: long FLORES layout needs an 'id' column to align sentences.")
    codes: dict[tuple[str, str], str] = {}
    items: dict[str, Item] = {}
    data = ds.select_columns(["id", *LONG_COLUMNS]).to_dict()  # plain lists: fast to walk
    for item_id, iso3, script, text in zip(data["id"], data["iso_639_3"], data["iso_15924"], data["text"]):
        key = (iso3, script)
        if key not in codes:
            codes[key] = _code(f"{iso3}_{script}", source)
        if not text:
            continue
        item_key = f"{split}:{item_id}"
        item = items.setdefault(item_key, Item(item_key, {}, source))
        lang = codes[key]
        if lang in item.texts and item.texts[lang] != text:
            raise DataError(
                f"{source}: item {item_key} has two different {lang} texts (pick one config per language variant)."
            )
        item.texts[lang] = text
    return list(items.values())


def load_hf(spec: str) -> ParallelCorpus:
    """Load ``<dataset>[:<config>][@<split>]`` with ``datasets.load_dataset``."""
    import datasets

    name, config, split = parse_spec(spec)
    source = f"hf:{name}"
    try:
        loaded = datasets.load_dataset(name, config, split=split)
    except Exception as err:  # datasets raises many types; the user needs the one-line reason
        raise DataError(
            f"could not load Hugging Face dataset {name!r} (config {config}, split {split}): "
            f"{type(err).__name__}: {err}. Offline? Set HF_HUB_OFFLINE=0 or give a local folder."
        ) from None
    splits = {split: loaded} if split else dict(loaded)
    items: list[Item] = []
    for split_name, ds in splits.items():
        columns = ds.column_names
        if any(c.startswith(WIDE_PREFIX) for c in columns):
            items += _wide_items(ds, split_name, source)
        elif all(c in columns for c in LONG_COLUMNS):
            items += _long_items(ds, split_name, source)
        else:
            raise DataError(
                f"{source}: split {split_name!r} is not in FLORES layout; expected "
                f"'{WIDE_PREFIX}<lang>' columns or {', '.join(LONG_COLUMNS)} (got {', '.join(columns)})."
            )
    if not items:
        raise DataError(f"{source}: no sentences found.")
    return ParallelCorpus(items, source)
