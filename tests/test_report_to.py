"""``--report_to``: TensorBoard event files hold exactly the losses and learning rates that
finetune and mask training record; unknown or missing trackers are one-line errors."""

from __future__ import annotations

import json

import pytest

from babelscope.cli.main import main
from babelscope.errors import UsageError
from babelscope.improve import report_to
from babelscope.improve.head_mask import train_mask
from babelscope.improve.train_loop import TrainConfig, lr_at
from babelscope.models.head_mask import SoftHeadMask
from babelscope.testing import SAMPLE_TEXTS
from finetune_fixtures import write_corpus


def _scalars(log_dir) -> dict[str, list[tuple[int, float]]]:
    """{tag: [(step, value)]} from the event files under ``log_dir``, read with TensorBoard's own reader."""
    from tensorboard.backend.event_processing.event_accumulator import EventAccumulator

    acc = EventAccumulator(str(log_dir))
    acc.Reload()
    return {tag: [(e.step, e.value) for e in acc.Scalars(tag)] for tag in acc.Tags()["scalars"]}


def test_finetune_writes_tensorboard_scalars_equal_to_its_losses(tmp_path, tiny_model_dir):
    corpus = write_corpus(tmp_path)
    argv = ["finetune", "--model_args", f"pretrained={tiny_model_dir}", "--data", f"parallel:{corpus}",
            "--eval_source", str(corpus), "--languages", "eng_Latn,fra_Latn", "--layers", "1", "--max_steps", "3",
            "--train_batch_size", "2", "--max_length", "32", "--eval_limit", "2", "--warmup", "0.4",
            "--output_path", str(tmp_path), "--run_name", "ft", "--report_to", "tensorboard", "--no_save"]
    assert main(argv) == 0
    folder = next(tmp_path.glob("*/ft"))
    training = json.loads((folder / "results.json").read_text())["training"]
    losses = training["losses"]
    assert len(losses) == 3
    scalars = _scalars(folder / "tensorboard")
    assert [s for s, _ in scalars["train/loss"]] == [1, 2, 3]
    assert [v for _, v in scalars["train/loss"]] == pytest.approx(losses, rel=1e-6)  # float32 in the event file
    cfg = TrainConfig(**training["config"])
    assert [v for _, v in scalars["train/learning_rate"]] == pytest.approx([lr_at(s, cfg) for s in range(3)])


def test_mask_training_reports_each_step_and_a_per_language_tag(tiny_loaded, tmp_path):
    loaded = tiny_loaded("llama")
    pairs = [(t.split(" ", 1)[0], " " + t.split(" ", 1)[1]) for t in SAMPLE_TEXTS[:3]]
    mask = SoftHeadMask(loaded.adapter.n_layers, loaded.adapter.n_heads, [0, 1])
    with report_to.Reporter("tensorboard", tmp_path, "m") as reporter:
        losses = train_mask(loaded, mask, pairs, epochs=2, lr=0.05, show_progress=False, reporter=reporter,
                            tag="train/fra_Latn")
    scalars = _scalars(tmp_path / "tensorboard")
    assert [s for s, _ in scalars["train/fra_Latn/loss"]] == list(range(1, 7))
    assert [v for _, v in scalars["train/fra_Latn/loss"]] == pytest.approx(losses, rel=1e-6)
    assert [v for _, v in scalars["train/fra_Latn/learning_rate"]] == pytest.approx([0.05] * 6)


def test_report_to_parsing_and_one_line_errors(monkeypatch):
    assert report_to.parse_report_to("none") == [] == report_to.parse_report_to(None)
    assert report_to.parse_report_to("tensorboard, tensorboard") == ["tensorboard"]
    with pytest.raises(UsageError, match="not one of none, tensorboard, wandb, trackio"):
        report_to.parse_report_to("mlflow")
    real = report_to.importlib.util.find_spec
    monkeypatch.setattr(report_to.importlib.util, "find_spec", lambda n: None if n == "wandb" else real(n))
    with pytest.raises(UsageError, match=r"--report_to wandb needs the `wandb` package: pip install wandb") as err:
        report_to.parse_report_to("tensorboard,wandb")
    assert "\n" not in str(err.value)


def test_a_missing_tracker_stops_mask_before_any_run_folder(tmp_path, tiny_model_dir, capsys):
    argv = ["mask", "--model_args", f"pretrained={tiny_model_dir}", "--languages", "eng_Latn",
            "--output_path", str(tmp_path), "--report_to", "tensorboard,neptune"]
    assert main(argv) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and "--report_to 'neptune'" in err[0]
    assert not list(tmp_path.iterdir())
