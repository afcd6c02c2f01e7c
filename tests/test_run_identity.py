"""Run identity: --resume and a reused --run_name continue only the same run (verb, settings, data,
model); run folders are created exclusively; --run_name is one safe path component; nothing secret
or personal is written into a run folder."""

import json

import pytest
import yaml

from babelscope import runs
from babelscope.cli.main import main
from babelscope.runs import RunFolder

ITEMS = [
    {"item_id": f"c{i}", "language": lang, "context": f"{word} {i} is", "choices": [" one", " two"], "gold": i % 2}
    for i in range(4) for lang, word in (("eng_Latn", "Number"), ("fra_Latn", "Nombre"))
]


@pytest.fixture
def task_file(tmp_path):
    path = tmp_path / "items.jsonl"
    path.write_text("".join(json.dumps(it) + "\n" for it in ITEMS))
    return path


def _eval(model, task_file, out, *extra):
    return main(["eval", "--model_args", f"pretrained={model}", "--tasks", str(task_file), "--languages",
                 "eng_Latn,fra_Latn", "--output_path", str(out), *extra])


def _one_line_error(capsys) -> str:
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1, err
    return err[0]


def test_resume_with_another_model_stops(tiny_model_dir, tmp_path, task_file, capsys, tiny_tokenizer):
    from babelscope.testing import make_tiny_model

    assert _eval(tiny_model_dir, task_file, tmp_path, "--run_name", "r") == 0
    run = next(tmp_path.rglob("r"))
    other = tmp_path / "other-model"
    make_tiny_model("qwen2", len(tiny_tokenizer)).save_pretrained(other)
    tiny_tokenizer.save_pretrained(other)
    before = (run / "config.yaml").read_text()
    capsys.readouterr()
    assert _eval(other, task_file, tmp_path, "--resume", str(run)) == 2
    line = _one_line_error(capsys)
    assert "not the same run" in line and "--model_args" in line and "other-model" in line
    assert (run / "config.yaml").read_text() == before  # the old run is untouched


def test_same_run_name_after_editing_the_task_file_stops(tiny_model_dir, tmp_path, task_file, capsys):
    assert _eval(tiny_model_dir, task_file, tmp_path, "--run_name", "r") == 0
    assert _eval(tiny_model_dir, task_file, tmp_path, "--run_name", "r") == 0  # same run: continues
    edited = [dict(it, gold=1 - it["gold"]) for it in ITEMS]
    task_file.write_text("".join(json.dumps(it) + "\n" for it in edited))
    capsys.readouterr()
    assert _eval(tiny_model_dir, task_file, tmp_path, "--run_name", "r") == 2
    line = _one_line_error(capsys)
    assert "items.jsonl changed since the run was made" in line


def test_resume_with_other_languages_or_verb_stops(tiny_model_dir, tmp_path, task_file, capsys):
    assert _eval(tiny_model_dir, task_file, tmp_path, "--run_name", "r") == 0
    run = next(tmp_path.rglob("r"))
    capsys.readouterr()
    assert main(["eval", "--model_args", f"pretrained={tiny_model_dir}", "--tasks", str(task_file),
                 "--languages", "eng_Latn", "--resume", str(run)]) == 2
    assert "--languages was 'eng_Latn,fra_Latn'" in _one_line_error(capsys)


def test_two_runs_in_the_same_second_get_two_folders(tiny_model_dir, tmp_path, task_file, monkeypatch):
    monkeypatch.setattr(runs, "utc_stamp", lambda: "20261202T000000Z")
    assert _eval(tiny_model_dir, task_file, tmp_path) == 0
    assert _eval(tiny_model_dir, task_file, tmp_path) == 0
    folders = sorted(p.name for p in (tmp_path / tiny_model_dir.name).iterdir())
    assert len(folders) == 2 and all(f.startswith("eval-20261202T000000Z-") for f in folders)


def test_concurrent_creates_never_share_a_folder(tmp_path, monkeypatch):
    from concurrent.futures import ThreadPoolExecutor

    monkeypatch.setattr(runs, "utc_stamp", lambda: "20261202T000000Z")
    with ThreadPoolExecutor(8) as pool:
        made = list(pool.map(lambda i: RunFolder.create(tmp_path, "m", "eval", {"i": i}, announce=False).path,
                             range(16)))
    assert len(set(made)) == 16


@pytest.mark.parametrize("name", ["../../x", "/tmp/abs", "a/b", "..", ".hidden", ""])
def test_run_name_is_one_safe_component(tmp_path, task_file, capsys, name):
    out = tmp_path / "out"
    assert _eval("default", task_file, out, "--run_name", name) == 2
    assert "--run_name" in _one_line_error(capsys)
    assert not out.exists() and not (tmp_path / "x").exists()


def test_run_name_from_a_shared_config_file_is_checked_too(tmp_path, task_file, capsys):
    cfg = tmp_path / "shared.yaml"
    cfg.write_text(yaml.safe_dump({"run_name": "../escape", "tasks": str(task_file)}))
    assert main(["eval", "--config", str(cfg), "--output_path", str(tmp_path / "out")]) == 2
    assert "--run_name" in _one_line_error(capsys)
    assert not (tmp_path / "escape").exists()


def test_failed_verb_leaves_no_run_folder(tmp_path, task_file, capsys):
    out = tmp_path / "out"
    assert _eval(tmp_path / "no-such-model", task_file, out) == 2
    _one_line_error(capsys)
    assert not any(p.is_dir() and p.name.startswith("eval-") for p in out.rglob("*"))


def test_home_paths_and_url_credentials_are_not_written(tiny_model_dir, tmp_path, task_file, monkeypatch):
    monkeypatch.setenv("HOME", str(tmp_path))
    assert _eval(tiny_model_dir, task_file, tmp_path / "out", "--run_name", "r") == 0
    run = next((tmp_path / "out").rglob("r"))
    for name in ("config.yaml", "results.json", "README.md", "fingerprint.json"):
        text = (run / name).read_text()
        assert str(tmp_path) not in text, name
    assert "~/" in (run / "config.yaml").read_text()
    report = tmp_path / "out" / "report.html"
    assert main(["report", str(run), "-o", str(report)]) == 0
    assert str(tmp_path) not in report.read_text()
    assert runs.redact("bolt://neo:s3cret@db.example:7687") == "bolt://***@db.example:7687"
