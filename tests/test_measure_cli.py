"""`babelscope eval` / `rescore` end to end on a tiny model folder and a fixture corpus file."""

import json

import pytest

from babelscope.cli.main import main
from babelscope.testing import run_cli
from measure_fixtures import small_corpus

LANGS = "eng_Latn,fra_Latn,deu_Latn,zho_Hans"


@pytest.fixture(scope="module")
def corpus_file(tmp_path_factory):
    path = tmp_path_factory.mktemp("corpus") / "aligned.jsonl"
    small_corpus().save(str(path))
    return str(path)


def _eval_args(model_dir, corpus_file):
    """The eval command line every test here shares (the tiny model, its corpus, 6 items)."""
    what = ["--tasks", "continuation,bpc", "--languages", LANGS, "--limit", "6", "--source", corpus_file]
    return ["eval", "--model_args", f"pretrained={model_dir}", *what]


def _eval(model_dir, corpus_file, out, name, *extra):
    assert main([*_eval_args(model_dir, corpus_file), "--output_path", str(out), "--run_name", name, *extra]) == 0
    return next(p for p in out.rglob(name) if p.is_dir())


def test_eval_writes_results_samples_and_rescore_agrees(tiny_model_dir, corpus_file, tmp_path, capsys):
    run = _eval(tiny_model_dir, corpus_file, tmp_path, "r")
    res = json.loads((run / "results.json").read_text())
    assert set(res["tasks"]["continuation"]) == set(LANGS.split(","))
    assert {"acc", "acc_norm", "acc_bytes", "acc_stderr", "n"} <= set(res["tasks"]["continuation"]["fra_Latn"])
    assert res["consistency"]["continuation"]["matrix"]["eng_Latn"]["eng_Latn"] == 1.0
    rec = json.loads((run / "samples" / "continuation.zho_Hans.jsonl").read_text().splitlines()[0])
    for key in ("item_id", "logprobs", "n_chars", "n_bytes", "n_tokens", "gold", "pred", "flipped_vs_reference"):
        assert key in rec
    assert (run / "config.yaml").is_file() and (run / "README.md").is_file()
    capsys.readouterr()
    assert main(["rescore", str(run)]) == 0
    assert "identical" in capsys.readouterr().out
    assert json.loads((run / "rescore.json").read_text())["tasks"] == res["tasks"]


def test_resume_flag_reuses_records(tiny_model_dir, corpus_file, tmp_path):
    run = _eval(tiny_model_dir, corpus_file, tmp_path, "r")
    before = json.loads((run / "results.json").read_text())["tasks"]
    samples = run / "samples" / "continuation.deu_Latn.jsonl"
    samples.write_text(samples.read_text().splitlines()[0] + "\n")
    assert main([*_eval_args(tiny_model_dir, corpus_file), "--resume", str(run)]) == 0
    assert json.loads((run / "results.json").read_text())["tasks"] == before
    assert len(samples.read_text().splitlines()) == 6


@pytest.mark.parametrize(
    ("argv", "message"),
    [
        (["--tasks", "contination"], "Available: belebele, bpc, continuation"),
        (["--languages", "eng_Latn,spa_Latn"], "available: deu_Latn, eng_Latn, fra_Latn, zho_Hans"),
    ],
)
def test_unavailable_task_or_language_is_one_line(corpus_file, tmp_path, capsys, argv, message):
    base = ["eval", "--source", corpus_file, "--output_path", str(tmp_path), "--languages", "eng_Latn"]
    assert main(base + argv) == 2
    err = capsys.readouterr().err.strip()
    assert message in err and len(err.splitlines()) == 1


def test_torchrun_two_gloo_processes_equal_one(tiny_model_dir, corpus_file, tmp_path):
    one = _eval(tiny_model_dir, corpus_file, tmp_path, "one")
    args = [*_eval_args(tiny_model_dir, corpus_file), "--output_path", str(tmp_path), "--run_name", "two"]
    run_cli(args, nproc=2, port=29547)
    two = next(p for p in tmp_path.rglob("two") if p.is_dir())
    r1, r2 = (json.loads((p / "results.json").read_text()) for p in (one, two))
    for lang in LANGS.split(","):
        assert r1["tasks"]["continuation"][lang]["acc"] == r2["tasks"]["continuation"][lang]["acc"]
        assert r1["tasks"]["bpc"][lang]["bits_per_char"] == pytest.approx(
            r2["tasks"]["bpc"][lang]["bits_per_char"], rel=1e-6
        )
        s1 = [json.loads(x) for x in (one / "samples" / f"continuation.{lang}.jsonl").read_text().splitlines()]
        s2 = [json.loads(x) for x in (two / "samples" / f"continuation.{lang}.jsonl").read_text().splitlines()]
        assert [r["item_id"] for r in s1] == [r["item_id"] for r in s2]
        for a, b in zip(s1, s2, strict=True):
            assert a["logprobs"] == pytest.approx(b["logprobs"], abs=1e-5)
    assert r1["consistency"]["continuation"]["matrix"] == r2["consistency"]["continuation"]["matrix"]
