"""Soft head mask: head-count rounding, training changes only the selected entries, save/load
round trip, persistent application through load_model(head_mask=...) and its removal."""

import json
import os
import subprocess
import sys

import pytest
import torch

from babelscope.errors import UsageError
from babelscope.improve.head_mask import n_trainable, train_mask
from babelscope.models.head_mask import SoftHeadMask, apply_head_mask, head_mask_hooks, masked_heads, remove_head_mask
from babelscope.models.hooks import hooks
from babelscope.testing import SAMPLE_TEXTS

PAIRS = [(t.split(" ", 1)[0], " " + t.split(" ", 1)[1]) for t in SAMPLE_TEXTS[:4]]  # (first word, rest)


def _logits(loaded, texts=SAMPLE_TEXTS[:3]):
    batch = loaded.tokenizer(list(texts), return_tensors="pt", padding=True)
    with torch.no_grad():
        return loaded.model(**batch).logits


def test_number_of_trainable_heads_follows_the_official_floor_with_a_minimum():
    assert n_trainable(32, 32) == 20  # Aya-23-8B / Mistral-7B: the paper's 20 parameters
    assert n_trainable(28, 24) == 13  # Llama-3.2-3B
    assert n_trainable(18, 4) == 2  # Gemma 3 270M: int(1.44) = 1, raised to the minimum of 2
    assert n_trainable(18, 4, top_rate=0.1) == 7
    assert n_trainable(18, 4, num_heads=5) == 5
    with pytest.raises(UsageError):
        n_trainable(18, 4, num_heads=73)
    with pytest.raises(UsageError):
        n_trainable(18, 4, top_rate=0.0)


def test_full_mask_is_ones_except_the_selected_entries():
    mask = SoftHeadMask(2, 4, [1, 6], torch.tensor([0.5, 2.0]))
    full = mask.full()
    expect = torch.ones(2, 4)
    expect[0, 1], expect[1, 2] = 0.5, 2.0
    assert torch.equal(full, expect)
    assert sum(p.numel() for p in mask.parameters()) == 2
    with pytest.raises(UsageError):
        SoftHeadMask(2, 4, [1, 1])


def test_training_changes_only_the_selected_entries_and_no_weights(tiny_loaded):
    loaded = tiny_loaded("qwen2", seed=1)
    before = {k: v.clone() for k, v in loaded.model.state_dict().items()}
    mask = SoftHeadMask(2, 4, [2, 5])
    losses = train_mask(loaded, mask, PAIRS, epochs=2, lr=0.05, show_progress=False)
    assert len(losses) == 2 * len(PAIRS)
    full = mask.full().detach()
    changed = (full != 1.0).flatten().nonzero().flatten().tolist()
    assert changed == [2, 5]
    assert all(torch.equal(before[k], v) for k, v in loaded.model.state_dict().items())
    assert all(p.grad is None for p in loaded.model.parameters())
    assert all(p.requires_grad for p in loaded.model.parameters())  # flags restored


def test_training_lowers_the_answer_loss(tiny_loaded):
    loaded = tiny_loaded("llama", seed=2)
    mask = SoftHeadMask(2, 4, [0, 3, 5, 6])
    losses = train_mask(loaded, mask, PAIRS[:1], epochs=30, lr=0.1, show_progress=False)
    assert losses[-1] < losses[0] - 0.01


def test_save_load_round_trip_and_load_model_applies_it(tiny_model_dir, tmp_path):
    from babelscope.models import load_model

    loaded = load_model(str(tiny_model_dir))
    mask = SoftHeadMask(2, 4, [3, 4], torch.tensor([0.25, 1.75]))
    path = mask.save(tmp_path / "head_mask.safetensors", {"languages": ["fra_Latn"]})
    back, meta = SoftHeadMask.load(path)
    assert back.heads.tolist() == [3, 4] and torch.equal(back.values.detach(), mask.values.detach())
    assert json.loads(meta["languages"]) == ["fra_Latn"] and meta["n_layers"] == "2"
    assert path.stat().st_size < 1024  # tiny

    ref = _logits(loaded)
    with hooks(loaded.model, head_mask_hooks(mask.full().detach(), loaded.adapter)):
        expected = _logits(loaded)
    masked = load_model(str(tiny_model_dir), head_mask=str(path))
    assert torch.allclose(_logits(masked), expected, atol=1e-6)
    assert not torch.allclose(_logits(masked), ref)
    remove_head_mask(masked)
    assert torch.allclose(_logits(masked), ref, atol=1e-6)
    apply_head_mask(masked, path)
    apply_head_mask(masked, path)  # applying twice replaces, never stacks
    assert torch.allclose(_logits(masked), expected, atol=1e-6)


def test_scoped_and_persistent_application_are_the_same_hooks_and_the_handle_removes(tiny_loaded):
    loaded = tiny_loaded("qwen2", seed=3)
    mask = SoftHeadMask(2, 4, [1, 6], torch.tensor([0.0, 3.0]))
    ref = _logits(loaded)
    with masked_heads(loaded, mask.full().detach()):
        scoped = _logits(loaded)
    assert torch.equal(_logits(loaded), ref)  # the with-block leaves the model clean
    handle = apply_head_mask(loaded, mask)
    assert handle.active and loaded.extras["head_mask_handle"] is handle
    assert torch.equal(_logits(loaded), scoped) and not torch.allclose(scoped, ref)
    handle.remove()
    handle.remove()  # a second remove is a no-op
    assert torch.equal(_logits(loaded), ref)
    remove_head_mask(loaded)  # so is removing a mask that is gone
    assert "head_mask" not in loaded.extras and torch.equal(_logits(loaded), ref)


def test_mask_for_another_geometry_is_refused(tiny_loaded, tmp_path):
    path = SoftHeadMask(3, 4, [0, 1]).save(tmp_path / "m.safetensors")
    with pytest.raises(UsageError, match="3 layers x 4 heads"):
        apply_head_mask(tiny_loaded("llama"), path)
    (tmp_path / "x.safetensors").write_bytes(b"junk")
    with pytest.raises(UsageError, match="not a babelscope soft head mask"):
        SoftHeadMask.load(tmp_path / "x.safetensors")


def test_mask_verb_on_a_qa_file_reports_before_after_and_parameter_count(tiny_model_dir, tmp_path):
    data = tmp_path / "qa.jsonl"
    with open(data, "w", encoding="utf-8") as f:
        for i in range(20):
            lang = ["eng_Latn", "fra_Latn"][i % 2]
            f.write(
                json.dumps(
                    {
                        "language": lang,
                        "question": f"{SAMPLE_TEXTS[i % 4]} {i}?",
                        "answer": SAMPLE_TEXTS[i % 4].split()[1],
                    }
                )
                + "\n"
            )
    env = dict(os.environ, HF_HUB_OFFLINE="1", TQDM_DISABLE="1")
    out = subprocess.run(
        [
            sys.executable,
            "-m",
            "babelscope",
            "mask",
            "--model_args",
            f"pretrained={tiny_model_dir}",
            "--languages",
            "eng_Latn,fra_Latn",
            "--train_data",
            str(data),
            "--random_heads",
            "--num_heads",
            "3",
            "--epochs",
            "1",
            "--output_path",
            str(tmp_path),
            "--run_name",
            "m",
        ],
        capture_output=True,
        text=True,
        timeout=240,
        env=env,
    )
    assert out.returncode == 0, out.stderr[-3000:]
    folder = next(tmp_path.glob("*/m"))
    res = json.loads((folder / "results.json").read_text())
    assert res["n_trainable_parameters"] == 3 and len(res["heads"]) == 3
    assert set(res["before"]["qa_substring"]) == set(res["after"]["qa_substring"]) == {"eng_Latn", "fra_Latn"}
    back, _ = SoftHeadMask.load(folder / "head_mask.safetensors")
    assert back.values.numel() == 3


def test_qa_prompts_in_the_papers_template_and_its_pool_split(tmp_path):
    from babelscope.improve.head_mask_data import LAHIS_QA_TEMPLATES, qa_file, qa_prompt

    row = {"context": "Paris is in {France}.", "question": "Where is Paris?", "answer": "France."}
    assert qa_prompt(row, "eng_Latn") == ("Paris is in {France}.\nWhere is Paris?\n", "France.")
    prompt, answer = qa_prompt(row, "deu_Latn", "lahis")
    assert prompt == ("[Systemaufforderung]Beantworte die Frage direkt basierend auf dem gegebenen Kontext."
                      "[Kontext]Paris is in {France}.[Frage]Where is Paris?[Antwort]") and answer == "France"
    assert qa_prompt(row, "fra_Latn", "lahis")[0].startswith("[System Prompt]")  # no French template: English
    assert len(LAHIS_QA_TEMPLATES) == 9
    data = tmp_path / "qa.jsonl"
    data.write_text("".join(json.dumps({"language": "fra_Latn", "question": f"q{i}", "answer": f"a{i}"}) + "\n"
                            for i in range(10)), encoding="utf-8")
    train, held = qa_file(str(data), ["fra_Latn"], seed=0, train_pool=6)
    assert sorted(a for _, a in train["fra_Latn"]) == [f"a{i}" for i in range(6)]  # the first 6 rows, shuffled
    assert [a for _, a in held["fra_Latn"]] == [f"a{i}" for i in range(6, 10)]


def test_per_language_translation_pairs_use_the_source_each_language_is_evaluated_with():
    from babelscope.verbs.mask import MaskConfig, training_data

    langs = ["eng_Latn", "deu_Latn"]
    config = MaskConfig.from_mapping({"languages": ",".join(langs), "per_language": True, "tasks": "translation",
                                      "train_limit": 1})
    pairs, held = training_data(config, langs)
    assert held is None and pairs["eng_Latn"][0][0].startswith("French:")  # as evaluate(..., [eng_Latn]) does
    assert pairs["deu_Latn"][0][0].startswith("English:")
