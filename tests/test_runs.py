import json

import pytest
import torch

from babelscope.errors import UsageError
from babelscope.runs import RunFolder, atomic_write_text, sanitize


def test_run_folder_layout_and_round_trips(tmp_path, capsys):
    run = RunFolder.create(tmp_path, "google/gemma-3-270m", "eval", {"tasks": ["a"], "limit": 3})
    assert run.path.parent.name == "google__gemma-3-270m" and run.path.name.startswith("eval-")
    assert str(run.path) in capsys.readouterr().err  # announced before work starts
    assert run.read_config() == {"verb": "eval", "tasks": ["a"], "limit": 3}
    run.write_results({"x": 1})
    res = run.read_json("results.json")
    assert res["x"] == 1 and "versions" in res["environment"]
    run.write_samples("t", "deu_Latn", [{"item_id": "a", "lp": [-1.5, -2.0]}])
    assert run.read_samples("t", "deu_Latn") == [{"item_id": "a", "lp": [-1.5, -2.0]}]
    scores = torch.arange(6, dtype=torch.float32).reshape(1, 2, 3)
    run.save_tensors("artifacts/s.safetensors", {"scores": scores},
                     {"axes": ["layer", "head", "language"], "languages": ["a", "b", "c"]})
    t, meta = run.load_tensors("artifacts/s.safetensors")
    assert torch.equal(t["scores"], scores) and meta["axes"] == ["layer", "head", "language"]


def test_atomic_write_leaves_no_partial_file(tmp_path):
    target = tmp_path / "r.json"
    atomic_write_text(target, "old")

    class Boom:
        def __str__(self):
            raise RuntimeError("boom")

    with pytest.raises(TypeError):
        RunFolder(tmp_path).write_json("r.json", {"bad": Boom()})
    assert target.read_text() == "old"
    assert [p.name for p in tmp_path.iterdir()] == ["r.json"]
    json.loads(RunFolder(tmp_path).write_json("ok.json", {"v": 1.5}).read_text())


def test_open_missing_folder_is_a_clear_error(tmp_path):
    with pytest.raises(UsageError, match="does not exist"):
        RunFolder.open(tmp_path / "nope")


def test_sanitize():
    assert sanitize("Qwen/Qwen2.5-0.5B") == "Qwen__Qwen2.5-0.5B"
    assert sanitize("") == "model"


def test_written_files_get_the_usual_mode(tmp_path):
    import os

    path = atomic_write_text(tmp_path / "x.txt", "hi")
    umask = os.umask(0)
    os.umask(umask)
    assert path.stat().st_mode & 0o777 == 0o666 & ~umask
