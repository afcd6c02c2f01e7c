"""Cache entries are built in a temporary folder and renamed into place under a lock; a half-built
entry (a killed build, or a folder without its completion marker) is detected and rebuilt."""

import pytest

from babelscope.models import load
from babelscope.runs import build_cached


def test_a_failed_build_leaves_nothing_and_the_next_one_builds(tmp_path):
    target = tmp_path / "entry"

    def broken(work):
        work.mkdir()
        (work / "half").write_text("x")
        raise RuntimeError("killed")

    with pytest.raises(RuntimeError):
        build_cached(target, broken)
    assert not target.exists() and list(tmp_path.glob(".entry.building-*")) == []
    calls = []

    def good(work):
        calls.append(1)
        work.mkdir()
        (work / "data").write_text("ok")

    assert (build_cached(target, good) / "data").read_text() == "ok"
    assert build_cached(target, good) == target and calls == [1]  # built once


def test_an_entry_without_its_marker_is_rebuilt(tmp_path):
    target = tmp_path / "entry"
    target.mkdir()
    (target / "stale").write_text("half-written by an old build")
    build_cached(target, lambda work: work.mkdir())
    assert not (target / "stale").exists() and (tmp_path / "entry.complete").exists()


def test_single_file_entries(tmp_path):
    target = tmp_path / "graph.lbug"
    build_cached(target, lambda tmp: tmp.write_text("db"))
    assert target.read_text() == "db"


def test_killed_tokenizer_cache_build_recovers(tmp_path, monkeypatch, tiny_tokenizer):
    monkeypatch.setenv("BABELSCOPE_CACHE", str(tmp_path))
    folder = tmp_path / "tokenizers" / load.EMBEDDED["smollm2-135m"].folder
    folder.mkdir(parents=True)
    (folder / "tokenizer_config.json").write_text("{")  # what a killed save_pretrained left behind
    monkeypatch.setattr(load, "_embedded_tokenizer", lambda spec, work: tiny_tokenizer.save_pretrained(str(work)))
    tok = load.load_tokenizer("smollm2-135m")
    assert len(tok) == len(tiny_tokenizer)
    assert (folder.parent / (folder.name + ".complete")).exists()
