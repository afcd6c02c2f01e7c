"""``babelscope finetune`` end to end on a tiny local model and a small aligned corpus file."""

import json

import torch

from babelscope.cli.main import main
from babelscope.models.load import load_model
from finetune_fixtures import write_corpus


def _run(tmp_path, model_dir, *extra):
    corpus = write_corpus(tmp_path)
    argv = [
        "finetune",
        "--model_args",
        f"pretrained={model_dir}",
        "--data",
        f"parallel:{corpus}",
        "--eval_source",
        str(corpus),
        "--languages",
        "eng_Latn,fra_Latn",
        "--max_steps",
        "3",
        "--train_batch_size",
        "2",
        "--max_length",
        "32",
        "--eval_limit",
        "3",
        "--output_path",
        str(tmp_path),
        "--run_name",
        "ft",
        *extra,
    ]
    return main(argv)


def test_finetune_run_folder_has_before_after_and_share(tmp_path, tiny_model_dir):
    layers_run = tmp_path / "layers-run"
    layers_run.mkdir()
    (layers_run / "layers.json").write_text(json.dumps({"recommended": {"layers": [1]}}))
    assert _run(tmp_path, tiny_model_dir, "--layers", "auto", "--layers_json", str(layers_run)) == 0
    folder = next(tmp_path.glob("*/ft"))
    res = json.loads((folder / "results.json").read_text())
    table = res["before_after"]["bpc"]  # {task: {language: {stage: value}}}, deltas under "delta"
    assert {"eng_Latn", "fra_Latn"} <= set(table) and len(table) >= 4
    for lang, row in table.items():
        assert row["before"] > 0 and row["after"] > 0
        assert abs(res["delta"]["bpc"][lang] - (row["after"] - row["before"])) < 1e-5
    assert res["layers"] == [1] and 0 < res["trainable_share"] < 1
    assert res["data"]["held_out_items_kept_out"] > 0
    # the saved model loads and differs from the base only in layer 1
    base, tuned = load_model(str(tiny_model_dir)).model, load_model(str(folder / "model")).model
    tb = dict(tuned.named_parameters())
    for name, p in base.named_parameters():
        assert torch.equal(p, tb[name]) != name.startswith("model.layers.1."), name
    assert "bpc before" in (folder / "README.md").read_text()


def test_lora_run_saves_adapter_that_loads(tmp_path, tiny_model_dir):
    assert _run(tmp_path, tiny_model_dir, "--layers", "0", "--method", "lora", "--lora_r", "2", "--lr", "1e-2") == 0
    folder = next(tmp_path.glob("*/ft"))
    assert (folder / "adapter" / "adapter_config.json").exists()
    merged = load_model(str(folder / "adapter")).model
    assert sum(p.numel() for p in merged.parameters()) == sum(
        p.numel() for p in load_model(str(tiny_model_dir)).model.parameters()
    )


def test_bad_layer_range_is_one_line_error(tmp_path, tiny_model_dir, capsys):
    assert _run(tmp_path, tiny_model_dir, "--layers", "0-9") == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert "valid layers are 0-1" in err[-1]


def test_epochs_two_repeats_the_schedule_and_counts_what_was_fed(tmp_path, tiny_model_dir, capsys):
    """--epochs 2 with a cap above it: the schedule is fed twice, explicitly, and data.trained counts it."""
    args = ("--layers", "1", "--no_save", "--epochs", "2", "--max_steps", "100000", "--block_size", "10", "--languages",
            "eng_Latn,fra_Latn,deu_Latn")
    assert _run(tmp_path, tiny_model_dir, *args) == 0
    res = json.loads((next(tmp_path.glob("*/ft")) / "results.json").read_text())
    data = res["data"]
    assert data["budget"]["epochs"] == 2.0 and data["budget"]["capped_by_max_steps"] is False
    scheduled = data["by_kind"]["parallel"]
    assert set(scheduled) == {"eng_Latn>fra_Latn", "fra_Latn>eng_Latn", "deu_Latn>eng_Latn", "eng_Latn>deu_Latn"}
    assert data["trained"]["parallel"] == {k: 2 * n for k, n in scheduled.items()}
    assert res["training"]["steps"] == -(-data["budget"]["budget_sequences"] // 2)
    assert "training on the schedule 2.00 times" in capsys.readouterr().err
