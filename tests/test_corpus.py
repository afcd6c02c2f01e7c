"""The built-in aligned corpus and the corpus loaders (files, Hugging Face FLORES layout)."""

from __future__ import annotations

import gzip
import hashlib
import json
import os
import time

import pytest

from babelscope.data import Item, ParallelCorpus, list_sources, load_corpus
from babelscope.data.corpus import _builtin_dir, builtin_manifest
from babelscope.errors import DataError, LanguageError, UsageError
from babelscope.languages import info

DOC_SOURCES = ("gnome", "libreoffice")


@pytest.fixture(scope="module")
def builtin() -> ParallelCorpus:
    return load_corpus("builtin")


# --------------------------------------------------------------------------- built-in corpus


def test_builtin_has_many_languages_and_scripts(builtin):
    langs = builtin.languages
    assert len(langs) >= 30
    scripts = {info(code).script for code in langs}
    for script in ("Latn", "Cyrl", "Hans", "Jpan", "Arab", "Deva", "Beng", "Taml", "Grek", "Hebr"):
        assert script in scripts, script
    assert builtin.sources == ["django", "gnome", "libreoffice"]


def test_builtin_items_are_aligned_with_unique_ids(builtin):
    ids = [it.item_id for it in builtin.items]
    assert len(ids) == len(set(ids))
    for it in builtin.items:
        assert it.item_id.startswith({"gnome": "gnome:", "libreoffice": "lo:", "django": "django:"}[it.source])
        assert "eng_Latn" in it.texts and len(it.texts) >= 2
        assert all(isinstance(t, str) and t.strip() == t and t for t in it.texts.values())
    trio = builtin.aligned("en,de,ja")
    assert len(trio) > 500
    assert all(set(it.texts) == {"eng_Latn", "deu_Latn", "jpn_Jpan"} for it in trio)


def test_no_translation_equals_english(builtin):
    for it in builtin.items:
        english = it.texts["eng_Latn"]
        same = [lang for lang, text in it.texts.items() if lang != "eng_Latn" and text == english]
        assert not same, (it.item_id, same)
    # one English text -> one item (so a split cannot put the same text on both sides)
    english = [it.texts["eng_Latn"].casefold() for it in builtin.items]
    assert len(english) == len(set(english))


def test_doc_paragraphs_are_prose(builtin):
    for it in builtin.subset(sources=DOC_SOURCES).items:
        assert len(it.texts["eng_Latn"].split()) >= 8, it.item_id


def test_counts_and_hashes_match_manifest(builtin):
    manifest = builtin_manifest()
    assert builtin.counts() == manifest["languages"]
    total = 0
    for name, meta in manifest["sources"].items():
        part = load_corpus("builtin", sources=name)
        assert part.counts() == meta["languages"]
        assert len(part) == meta["items"]
        assert set(meta["locales"]) == set(meta["languages"])
        data = (_builtin_dir() / meta["file"]).read_bytes()
        assert hashlib.sha256(data).hexdigest() == manifest["files"][meta["file"]]["sha256"]
        total += len(data)
    assert total <= 10_000_000


def test_builtin_covers_languages_the_docs_lack(builtin):
    counts = load_corpus("builtin", sources="django").counts()
    for code in ("arb_Arab", "ben_Beng", "swh_Latn", "heb_Hebr", "tha_Thai"):
        assert counts.get(code, 0) >= 50, code


def test_builtin_load_is_cached_and_fast():
    start = time.perf_counter()
    first = load_corpus("builtin")
    again = load_corpus("builtin")
    assert time.perf_counter() - start < 5.0
    assert first.items[0] is again.items[0]


def test_languages_filter_and_sources(builtin):
    two = load_corpus("builtin", languages="de,fr")
    assert two.languages == ["deu_Latn", "fra_Latn"]
    assert len(two) == sum(1 for it in builtin.items if {"deu_Latn", "fra_Latn"} & set(it.texts))
    with pytest.raises(LanguageError):
        load_corpus("builtin", languages="klingon")
    with pytest.raises(UsageError):
        load_corpus("builtin", sources="wikipedia")
    assert {s["name"]: s["license"] for s in list_sources()} == {
        "gnome": "CC-BY-SA-3.0",
        "libreoffice": "MPL-2.0",
        "django": "BSD-3-Clause",
    }


def test_split_has_no_leak_and_is_stable(builtin):
    kept, held = builtin.split(0.25, seed=3)
    kept_ids = {it.item_id for it in kept}
    held_ids = {it.item_id for it in held}
    assert not kept_ids & held_ids
    assert len(kept_ids) + len(held_ids) == len(builtin)
    assert 0.2 < len(held) / len(builtin) < 0.3
    # the side of an item depends only on its id and the seed, whatever the language subset
    _, held_de = builtin.subset(languages="deu_Latn").split(0.25, seed=3)
    assert {it.item_id for it in held_de} <= held_ids
    _, other = builtin.split(0.25, seed=4)
    assert {it.item_id for it in other} != held_ids


# --------------------------------------------------------------------------- user files

SMALL = ParallelCorpus(
    [
        Item("greet-1", {"eng_Latn": "Good morning.", "fra_Latn": "Bonjour.", "deu_Latn": "Guten Morgen."}),
        Item("q-2", {"eng_Latn": 'He said "yes",\tthen left.', "jpn_Jpan": "彼は「はい」と言って去った。"}),
        Item("x-3", {"eng_Latn": "Line one\nline two", "arb_Arab": "السطر الأول", "deu_Latn": "Zeile"}, "mine"),
    ],
)


def _as_tuples(corpus):
    return sorted((it.item_id, it.source, sorted(it.texts.items())) for it in corpus.items)


@pytest.mark.parametrize("name", ["c.jsonl", "c.csv", "c.tsv", "c.csv.gz", "c.jsonl.xz"])
@pytest.mark.parametrize("layout", ["wide", "long"])
def test_round_trip(tmp_path, name, layout):
    path = str(tmp_path / name)
    SMALL.save(path, layout=layout)
    assert _as_tuples(load_corpus(path)) == _as_tuples(SMALL)


def test_wide_csv_with_language_names_and_no_ids(tmp_path):
    path = tmp_path / "mine.csv"
    path.write_text("English,fr,de_DE\nHello there.,Salut.,\nThank you.,Merci.,Danke.\n", encoding="utf-8")
    corpus = load_corpus(str(path))
    assert corpus.counts() == {"deu_Latn": 1, "eng_Latn": 2, "fra_Latn": 2}
    assert [it.item_id for it in corpus.items] == ["mine:1", "mine:2"]
    assert corpus.items[0].texts == {"eng_Latn": "Hello there.", "fra_Latn": "Salut."}


def test_long_jsonl_merges_rows(tmp_path):
    rows = [
        {"item_id": "a", "language": "en", "text": "One cat."},
        {"item_id": "a", "language": "pt_BR", "text": "Um gato."},
        {"item_id": "b", "language": "zh-cn", "text": "两只猫。"},
    ]
    path = tmp_path / "long.jsonl"
    path.write_text("\n".join(json.dumps(r, ensure_ascii=False) for r in rows), encoding="utf-8")
    corpus = load_corpus(str(path), languages="all")
    assert corpus.get("a").texts == {"eng_Latn": "One cat.", "por_Latn": "Um gato."}
    assert corpus.get("b").texts == {"zho_Hans": "两只猫。"}


@pytest.mark.parametrize(
    ("name", "content", "line", "words"),
    [
        ("bad.csv", "item_id,en,fr\na,Hi there.,Salut.\nb,Only two\nc,x,y\n", 3, "fields"),
        ("bad.tsv", "item_id\ten\nrow\tHello.\nrow\tAgain.\n", 3, "duplicate"),
        ("bad.jsonl", '{"item_id": "a", "en": "Hi."}\n{"item_id": "b", "en": \n', 2, "JSON"),
        ("bad2.jsonl", '{"item_id": "a", "en": "Hi."}\n\n{"item_id": "b", "en": 5}\n', 3, "text"),
        (
            "long.jsonl",
            '{"item_id": "a", "language": "en", "text": "Hi."}\n{"item_id": "a", "text": "x", "language": ""}\n',
            2,
            "language",
        ),
    ],
)
def test_malformed_row_names_file_and_line(tmp_path, name, content, line, words):
    path = tmp_path / name
    path.write_text(content, encoding="utf-8")
    with pytest.raises(DataError) as err:
        load_corpus(str(path))
    assert f"{path}:{line}:" in str(err.value)
    assert words in str(err.value)


def test_unknown_language_column(tmp_path):
    path = tmp_path / "cols.csv"
    path.write_text("item_id,eng_Latn,Deutsch\n1,Hello.,Hallo.\n", encoding="utf-8")
    with pytest.raises(DataError) as err:
        load_corpus(str(path))
    message = str(err.value)
    assert f"{path}:1:" in message and "'Deutsch'" in message and "\n" not in message


def test_bad_source_arguments(tmp_path):
    with pytest.raises(UsageError):
        load_corpus(str(tmp_path / "missing.csv"))
    (tmp_path / "a.txt").write_text("x", encoding="utf-8")
    with pytest.raises(UsageError):
        load_corpus(str(tmp_path / "a.txt"))
    with pytest.raises(UsageError, match="hf:"):
        load_corpus(str(tmp_path))
    with gzip.open(tmp_path / "empty.csv.gz", "wt") as f:
        f.write("")
    with pytest.raises(DataError):
        load_corpus(str(tmp_path / "empty.csv.gz"))


# --------------------------------------------------------------------------- Hugging Face FLORES layout


@pytest.fixture
def hf_offline(monkeypatch):
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")


def test_flores_wide_parquet_dataset(tmp_path, hf_offline):
    pd = pytest.importorskip("pandas")
    folder = tmp_path / "flores"
    folder.mkdir()
    dev = {
        "id": [1, 2],
        "URL": ["u", "v"],
        "sentence_eng_Latn": ["A cat sat.", "It rained."],
        "sentence_fra_Latn": ["Un chat était assis.", "Il a plu."],
        "sentence_zho_Hans": ["一只猫坐着。", ""],
    }
    test = {
        "id": [1],
        "URL": ["w"],
        "sentence_eng_Latn": ["Birds sing."],
        "sentence_fra_Latn": ["Les oiseaux chantent."],
        "sentence_zho_Hans": ["鸟儿歌唱。"],
    }
    pd.DataFrame(dev).to_parquet(folder / "dev.parquet")
    pd.DataFrame(test).to_parquet(folder / "test.parquet")
    corpus = load_corpus(f"hf:{folder}")
    assert {it.item_id for it in corpus.items} == {"validation:1", "validation:2", "test:1"}
    assert corpus.counts() == {"eng_Latn": 3, "fra_Latn": 3, "zho_Hans": 2}
    assert corpus.get("validation:1").texts["fra_Latn"] == "Un chat était assis."
    only_test = load_corpus(f"hf:{folder}@test", languages="en,zh")
    assert [it.texts for it in only_test.items] == [{"eng_Latn": "Birds sing.", "zho_Hans": "鸟儿歌唱。"}]


def test_flores_plus_long_jsonl_dataset(tmp_path, hf_offline):
    folder = tmp_path / "flores_plus"
    folder.mkdir()
    rows = [
        (0, "eng", "Latn", "The sun rises."),
        (0, "cmn", "Hans", "太阳升起。"),
        (0, "hin", "Deva", "सूरज उगता है।"),
        (1, "eng", "Latn", "Water is wet."),
        (1, "hin", "Deva", "पानी गीला है।"),
        (1, "xyz", "Latn", "Wota."),
    ]
    with open(folder / "test.jsonl", "w", encoding="utf-8") as f:
        for i, iso3, script, text in rows:
            rec = {"id": i, "iso_639_3": iso3, "iso_15924": script, "glottocode": "x", "text": text}
            f.write(json.dumps(rec, ensure_ascii=False) + "\n")
    corpus = load_corpus(f"hf:{folder}")
    assert corpus.counts() == {"eng_Latn": 2, "hin_Deva": 2, "xyz_Latn": 1, "zho_Hans": 1}
    assert corpus.aligned(["eng_Latn", "hin_Deva"])[1].texts["hin_Deva"] == "पानी गीला है।"
    assert all(it.source == f"hf:{folder}" for it in corpus.items)


def test_hf_wrong_layout_is_a_data_error(tmp_path, hf_offline):
    folder = tmp_path / "other"
    folder.mkdir()
    (folder / "train.jsonl").write_text('{"question": "q", "answer": "a"}\n', encoding="utf-8")
    with pytest.raises(DataError, match="FLORES layout"):
        load_corpus(f"hf:{folder}")
    with pytest.raises(DataError):
        load_corpus(f"hf:{os.path.join(str(tmp_path), 'nope')}")
