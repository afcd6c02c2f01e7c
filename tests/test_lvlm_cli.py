"""Must-show: `babelscope layers --tasks visual:builtin` on a tiny LVLM folder writes layers.json, and
`babelscope finetune --layers auto --data visual:builtin` (with --protocol plast-paper) trains only
those layers and reports accuracy before and after per language."""

import json

import pytest
import torch

from babelscope.errors import ModelLoadError, UsageError
from babelscope.models import vision
from babelscope.models.load import load_model
from babelscope.report import write_report
from babelscope.testing import run_cli
from lvlm_fixtures import save_tiny_lvlm


@pytest.fixture(scope="module")
def lvlm_dir(tmp_path_factory):
    return save_tiny_lvlm(tmp_path_factory.mktemp("tiny-llava"), "llava")


def test_load_model_reads_an_lvlm_folder(lvlm_dir):
    loaded = load_model(str(lvlm_dir))
    assert vision.is_vision(loaded.model) and loaded.extras["processor"].tokenizer is loaded.tokenizer
    assert loaded.adapter.arch.layers == "model.language_model.layers" and loaded.card()["model_type"] == "llava"


def test_an_lvlm_folder_without_its_processor_is_one_line(lvlm_dir, tmp_path):
    for name in ("config.json", "model.safetensors", "tokenizer.json", "tokenizer_config.json"):
        (tmp_path / name).write_bytes((lvlm_dir / name).read_bytes())
    with pytest.raises(ModelLoadError, match="without its processor"):
        load_model(str(tmp_path))


def test_layers_then_finetune_on_a_tiny_lvlm(lvlm_dir, tmp_path):
    out = tmp_path / "runs"
    model = f"pretrained={lvlm_dir}"
    run_cli(["layers", "--model_args", model, "--tasks", "visual:builtin", "--languages", "eng_Latn,zho_Hans,fra_Latn",
             "--max_tokens", "160", "--lens_positions", "4", "--output_path", str(out)])
    (layers_json,) = out.glob("*/layers-*/layers.json")
    doc = json.loads(layers_json.read_text(encoding="utf-8"))
    chosen = doc["recommended"]["layers"]
    assert chosen and len(doc["evidence"]["score"]) == 2 and doc["inputs"]["tasks"] == "visual:builtin"
    assert set(doc["evidence"]["logit_lens"]["target_share"]) == {"eng_Latn", "zho_Hans", "fra_Latn"}

    run_cli(["finetune", "--protocol", "plast-paper", "--model_args", model, "--data", "visual:builtin",
             "--languages", "eng_Latn,zho_Hans", "--eval_languages", "eng_Latn,zho_Hans,fra_Latn", "--max_steps", "2",
             "--train_batch_size", "2", "--eval_limit", "3", "--lr", "0.01", "--output_path", str(out)])
    (results_json,) = out.glob("*/finetune-*/results.json")
    results = json.loads(results_json.read_text(encoding="utf-8"))
    assert results["layers"] == chosen and str(layers_json.parent.name) in results["layer_source"]
    table = results["before_after"]["visual"]
    assert set(table) == {"eng_Latn", "zho_Hans", "fra_Latn"}
    assert all(0 <= v[s] <= 1 for v in table.values() for s in ("before", "after"))
    assert results["data"]["by_kind"] == {"visual_qt": {"zho_Hans>eng_Latn": 4}} and results["training"]["steps"] == 2
    assert (results_json.parent / "samples" / "visual_after.zho_Hans.jsonl").is_file()

    tuned_model = load_model(results["saved"]).model  # the saved folder loads back as an LVLM
    base = dict(load_model(str(lvlm_dir)).model.named_parameters())
    tuned = dict(tuned_model.named_parameters())
    changed = {k for k in base if not torch.equal(base[k], tuned[k])}
    prefixes = tuple(f"model.language_model.layers.{i}." for i in chosen)
    assert changed and all(k.startswith(prefixes) for k in changed)
    frozen = [k for k in base if k.startswith(("model.vision_tower.", "model.multi_modal_projector."))]
    assert frozen and not set(frozen) & changed

    html = write_report([layers_json.parent, results_json.parent], tmp_path / "report.html", strict=True).read_text()
    assert "PLAST layers of a vision-language model" in html and "Before and after, per language: visual" in html


def test_visual_tasks_need_a_vision_model(tiny_model_dir, tmp_path):
    import babelscope as bs

    with pytest.raises(UsageError, match="vision-language model"):
        bs.layers(model_args=f"pretrained={tiny_model_dir}", tasks="visual:builtin", languages="eng_Latn,fra_Latn",
                  output_path=str(tmp_path))
    assert not list(tmp_path.glob("*/layers-*"))  # no run folder left behind
