"""Bad input over every verb: exit code 2, exactly one line on stderr that names the problem, and no
run folder left behind. Each case fails before any model is loaded, so the table runs in seconds."""

from __future__ import annotations

import json
import os

import pytest
import torch
import yaml

from babelscope.cli.main import main

ITEM = {"item_id": "a", "language": "eng_Latn", "context": "Two plus two is", "choices": [" four", " five"],
        "gold": 0}
GEN = {"item_id": "g", "language": "eng_Latn", "context": "Q: 2+2?\nA:", "references": ["4"]}


def _jsonl(rows) -> str:
    return "".join((r if isinstance(r, str) else json.dumps(r)) + "\n" for r in rows)


FILES = {  # name -> content (str is written as UTF-8, bytes as they are)
    "binary.jsonl": bytes(range(256)) * 4,
    "latin1.jsonl": json.dumps(dict(ITEM, context="Deux plus deux égale"), ensure_ascii=False).encode("latin-1"),
    "not_object.jsonl": _jsonl(["[1, 2]"]),
    "not_json.jsonl": _jsonl(["{item_id: a"]),
    "empty.jsonl": "\n\n",
    "until_int.jsonl": _jsonl([dict(GEN, until=5)]),
    "gen_toks_text.jsonl": _jsonl([dict(GEN, max_gen_toks="lots")]),
    "gen_toks_zero.jsonl": _jsonl([dict(GEN, max_gen_toks=0)]),
    "refs_int.jsonl": _jsonl([dict(GEN, references=4)]),
    "gold_out.jsonl": _jsonl([dict(ITEM, gold=7)]),
    "choices_int.jsonl": _jsonl([dict(ITEM, choices=3)]),
    "context_list.jsonl": _jsonl([dict(ITEM, context=["x"])]),
    "no_language.jsonl": _jsonl([{"item_id": "a", "context": "x", "choices": ["a"], "gold": 0}]),
    "bad_language.jsonl": _jsonl([dict(ITEM, language="Klingonish")]),
    "duplicate.jsonl": _jsonl([ITEM, ITEM]),
    "items.jsonl": _jsonl([ITEM, dict(ITEM, language="fra_Latn", context="Deux plus deux font")]),
    "template_pos.yaml": "data: items.jsonl\ncontext: 'Q: {0}'\n",
    "template_brace.yaml": "data: items.jsonl\ncontext: 'Q: {'\n",
    "template_missing.yaml": "data: items.jsonl\ncontext: 'Q: {question}'\n",
    "task_no_data.yaml": "name: t\n",
    "task_bad.yaml": "data: [items.jsonl\n",
    "task_list.yaml": "- data: items.jsonl\n",
    "task_kind.yaml": "data: items.jsonl\nkind: essay\n",
    "task_metric.yaml": "data: items.jsonl\nkind: generate\nmetrics: [bleurt]\n",
    "task_missing_items.yaml": "data: nowhere.jsonl\n",
    "config_list.yaml": "- languages: eng_Latn\n",
    "config_bad.yaml": "limit: [\n",
    "config_unknown.yaml": "langs: eng_Latn\n",
    "config_types.yaml": "limit: lots\n",
    "config_escape.yaml": "run_name: ../../escape\n",
    "config_binary.yaml": b"\xff\xfe\x00\x01limit: 3",
    "recipe_heavy.yaml": yaml.safe_dump({"merge_method": "linear", "models": [
        {"model": "{model_a}", "parameters": {"weight": "heavy"}},
        {"model": "{model_b}", "parameters": {"weight": 0.5}}]}),
    "recipe_list.yaml": "- merge_method: linear\n",
    "recipe_bad.yaml": "merge_method: [\n",
    "recipe_method.yaml": yaml.safe_dump({"merge_method": "blend", "models": [{"model": "{model_a}"},
                                                                          {"model": "{model_b}"}]}),
    "corpus_bom.tsv": "\ufeffitem_id\teng_Latn\n",
    "plain.txt": "not a run\n",
}
FOLDERS = {  # name -> {relative file: content}
    "not_a_run": {},
    "corrupt_run": {"config.yaml": "verb: eval\n", "results.json": "{"},
    "fertility_run": {"config.yaml": "verb: fertility\n",
                      "results.json": json.dumps({"verb": "fertility", "fertility": {}})},
    "model_a": {},  # filled with a tiny model by the fixture (merge recipes name them)
    "model_b": {},
}


def _case(verb, *argv, why, marks=()):
    return pytest.param([verb, *argv], why, id=f"{verb}:{' '.join(argv)[:60]}", marks=marks)


NO_CUDA = pytest.mark.skipif(torch.cuda.is_available(), reason="a CUDA device is available here")


CASES = [
    # eval ----------------------------------------------------------------------------------------
    _case("eval", "--limit", "0", why="--limit must be at least 1"),
    _case("eval", "--limit", "-3", why="--limit must be at least 1"),
    _case("eval", "--limit", "lots", why="invalid float value"),
    _case("eval", "--batch_size", "0", why="--batch_size must be a number of at least 1 or auto"),
    _case("eval", "--tasks", "contination", why="Available:"),
    _case("eval", "--languages", "eng_Latn,Germn", why="Did you mean deu_Latn"),
    _case("eval", "--languages", "", why="no language given"),
    _case("eval", "--engine", "vllm", why="invalid choice"),
    _case("eval", "--reference", "kor_Hang", "--languages", "eng_Latn,fra_Latn", why="--reference kor_Hang"),
    _case("eval", "--reference", "Klingonish", "--languages", "eng_Latn", why="Klingonish"),
    _case("eval", "--model_args", "nokeyvalue", why="not key=value"),
    _case("eval", "--model_args", "pretrained=default,bogus=1", why="unknown model argument(s) bogus"),
    _case("eval", "--model_args", "pretrained=default,dtype=float8", why="unknown dtype"),
    _case("eval", "--model_args", "pretrained=/nonexistent/model", why="does not exist"),
    _case("eval", "--model", "./missing.gguf", why="does not exist"),
    _case("eval", "--device", "quantum", why="--device 'quantum'"),
    _case("eval", "--device", "cuda", why="--device cuda: not available", marks=NO_CUDA),
    _case("eval", "--model_args", "pretrained=default,device=cuda:0", why="--device cuda:0: not available",
          marks=NO_CUDA),
    _case("eval", "--run_name", "../escape", why="--run_name"),
    _case("eval", "--run_name", "/tmp/abs", why="--run_name"),
    _case("eval", "--resume", "{not_a_run}", why="not a babelscope run folder"),
    _case("eval", "--resume", "{missing}", why="does not exist"),
    _case("eval", "--output_path", "{plain.txt}/runs", why="cannot create a run folder"),
    _case("eval", "--tasks", "{binary.jsonl}", "--languages", "eng_Latn", why="not UTF-8"),
    _case("eval", "--tasks", "{latin1.jsonl}", "--languages", "eng_Latn", why="not UTF-8"),
    _case("eval", "--tasks", "{not_object.jsonl}", "--languages", "eng_Latn", why="JSON object"),
    _case("eval", "--tasks", "{not_json.jsonl}", "--languages", "eng_Latn", why="line 1 is not JSON"),
    _case("eval", "--tasks", "{empty.jsonl}", "--languages", "eng_Latn", why="has no items"),
    _case("eval", "--tasks", "{until_int.jsonl}", "--languages", "eng_Latn", why="until must be"),
    _case("eval", "--tasks", "{gen_toks_text.jsonl}", "--languages", "eng_Latn", why="max_gen_toks must be"),
    _case("eval", "--tasks", "{gen_toks_zero.jsonl}", "--languages", "eng_Latn", why="max_gen_toks must be"),
    _case("eval", "--tasks", "{refs_int.jsonl}", "--languages", "eng_Latn", why="references must be"),
    _case("eval", "--tasks", "{gold_out.jsonl}", "--languages", "eng_Latn", why="gold"),
    _case("eval", "--tasks", "{choices_int.jsonl}", "--languages", "eng_Latn", why="line 1"),
    _case("eval", "--tasks", "{context_list.jsonl}", "--languages", "eng_Latn", why="context must be a string"),
    _case("eval", "--tasks", "{no_language.jsonl}", "--languages", "eng_Latn", why="item_id and language"),
    _case("eval", "--tasks", "{bad_language.jsonl}", "--languages", "eng_Latn", why="Klingonish"),
    _case("eval", "--tasks", "{duplicate.jsonl}", "--languages", "eng_Latn", why="repeats line 1"),
    _case("eval", "--tasks", "{items.jsonl}", "--languages", "deu_Latn", "--reference", "deu_Latn",
          why="no items in deu_Latn"),
    _case("eval", "--tasks", "{template_pos.yaml}", "--languages", "eng_Latn", why="context template"),
    _case("eval", "--tasks", "{template_brace.yaml}", "--languages", "eng_Latn", why="context template"),
    _case("eval", "--tasks", "{template_missing.yaml}", "--languages", "eng_Latn", why="no field 'question'"),
    _case("eval", "--tasks", "{task_no_data.yaml}", "--languages", "eng_Latn", why="data: items.jsonl"),
    _case("eval", "--tasks", "{task_bad.yaml}", "--languages", "eng_Latn", why="not valid YAML"),
    _case("eval", "--tasks", "{task_list.yaml}", "--languages", "eng_Latn", why="must be a YAML mapping"),
    _case("eval", "--tasks", "{task_kind.yaml}", "--languages", "eng_Latn", why="kind must be"),
    _case("eval", "--tasks", "{task_metric.yaml}", "--languages", "eng_Latn", why="unknown metric"),
    _case("eval", "--tasks", "{task_missing_items.yaml}", "--languages", "eng_Latn", why="does not exist"),
    _case("eval", "--tasks", "{missing}.jsonl", "--languages", "eng_Latn", why="does not exist"),
    _case("eval", "--source", "{binary.jsonl}", why="binary.jsonl"),
    _case("eval", "--source", "{missing}.jsonl", why="is neither 'builtin', an existing file"),
    _case("eval", "--config", "{config_list.yaml}", why="must be a YAML mapping"),
    _case("eval", "--config", "{config_bad.yaml}", why="not valid YAML"),
    _case("eval", "--config", "{config_unknown.yaml}", why="unknown option(s) langs"),
    _case("eval", "--config", "{config_types.yaml}", why="--limit must be a number"),
    _case("eval", "--config", "{config_escape.yaml}", why="--run_name"),
    _case("eval", "--config", "{config_binary.yaml}", why="not UTF-8"),
    _case("eval", "--config", "{missing}.yaml", why="cannot read --config"),
    _case("eval", "--unknown_flag", "1", why="unrecognized arguments"),
    _case("eval", "--num_fewshot", "5", why="--num_fewshot must be at most 0"),
    # rescore -------------------------------------------------------------------------------------
    _case("rescore", "{missing}", why="does not exist"),
    _case("rescore", "{not_a_run}", why="has no results.json"),
    _case("rescore", "{corrupt_run}", why="not valid JSON"),
    _case("rescore", "{fertility_run}", why="not an eval run"),
    _case("rescore", why="missing required option"),
    # fertility -----------------------------------------------------------------------------------
    _case("fertility", "--limit", "0", why="--limit must be at least 1"),
    _case("fertility", "--languages", "Germn", why="Did you mean deu_Latn"),
    _case("fertility", "--source", "{binary.jsonl}", why="binary.jsonl"),
    _case("fertility", "--source", "{missing}.tsv", why="is neither 'builtin', an existing file"),
    _case("fertility", "--source", "{corpus_bom.tsv}", why="corpus_bom.tsv"),
    # heads / mask --------------------------------------------------------------------------------
    _case("heads", "--num_items", "0", why="--num_items must be at least 1"),
    _case("heads", "--quantile", "1.5", why="--quantile must be at most"),
    _case("heads", "--quantile", "-0.1", why="--quantile must be at least"),
    _case("heads", "--max_length", "1", why="--max_length must be at least"),
    _case("heads", "--min_languages", "0", why="--min_languages must be at least 1"),
    _case("heads", "--num_prompts", "-1", why="--num_prompts must be at least 0"),
    _case("heads", "--max_new_tokens", "0", why="--max_new_tokens must be at least 1"),
    _case("heads", "--languages", "eng_Latn,Klingonish", why="Klingonish"),
    _case("heads", "--source", "{binary.jsonl}", why="binary.jsonl"),
    _case("mask", why="missing required option --languages"),
    _case("mask", "--languages", "eng_Latn", "--top_rate", "2", why="--top_rate must be at most"),
    _case("mask", "--languages", "eng_Latn", "--top_rate", "-1", why="--top_rate must be at least"),
    _case("mask", "--languages", "eng_Latn", "--epochs", "0", why="--epochs must be at least 1"),
    _case("mask", "--languages", "eng_Latn", "--lr", "-1", why="--lr must be at least"),
    _case("mask", "--languages", "eng_Latn", "--num_heads", "0", why="--num_heads must be at least 1"),
    _case("mask", "--languages", "eng_Latn", "--scores", "{missing}", why="does not exist"),
    _case("mask", "--languages", "eng_Latn", "--train_data", "{binary.jsonl}", why="binary.jsonl"),
    _case("mask", "--languages", "eng_Latn", "--tasks", "contination", why="--tasks contination"),
    # neurons / compare-neurons / layers ---------------------------------------------------------
    _case("neurons", "--top_rate", "2", why="--top_rate must be at most"),
    _case("neurons", "--top_rate", "-1", why="--top_rate must be at least"),
    _case("neurons", "--method", "pca", why="invalid choice"),
    _case("neurons", "--count", "some", why="invalid choice"),
    _case("neurons", "--max_tokens", "0", why="--max_tokens must be at least 1"),
    _case("neurons", "--bar_rate", "1.5", why="--bar_rate must be at most"),
    _case("neurons", "--filter_rate", "-0.5", why="--filter_rate must be at least"),
    _case("neurons", "--lambda", "-1", why="must be at least"),
    _case("neurons", "--threads", "0", why="--threads must be at least 1"),
    _case("neurons", "--source", "{missing}.jsonl", why="is neither 'builtin', an existing file"),
    _case("neurons", "--compare", "/nonexistent/model", why="does not exist"),
    _case("compare-neurons", "{missing}", "{missing}", why="does not exist"),
    _case("compare-neurons", "{not_a_run}", "{not_a_run}", why="not_a_run"),
    _case("layers", "--budget", "2", why="--budget must be at most"),
    _case("layers", "--max_depth", "1.5", why="--max_depth must be at most"),
    _case("layers", "--lens_positions", "0", why="--lens_positions must be at least 1"),
    _case("layers", "--neurons_run", "{missing}", why="does not exist"),
    # loop and agree ------------------------------------------------------------------------------
    _case("loop", "--improve", "dance", why="invalid choice"),
    _case("loop", "--limit", "0", why="--limit must be at least 1"),
    _case("loop", "--languages", "xx_Zzzz", why="unknown language"),
    _case("loop", "--n_boot", "2", why="--n_boot must be at least 10"),
    _case("agree", "{missing}", why="is not a folder"),
    _case("agree", "{not_a_run}", why="no `babelscope heads` run"),
    # finetune ------------------------------------------------------------------------------------
    _case("finetune", why="missing required option --languages"),
    _case("finetune", "--languages", "fra_Latn", "--max_steps", "0", why="--max_steps must be at least 1"),
    _case("finetune", "--languages", "fra_Latn", "--lr", "-1", why="--lr must be at least"),
    _case("finetune", "--languages", "fra_Latn", "--warmup", "2", why="--warmup must be at most"),
    _case("finetune", "--languages", "fra_Latn", "--method", "qlora", why="invalid choice"),
    _case("finetune", "--languages", "fra_Latn", "--parallel_location", "middle", why="invalid choice"),
    _case("finetune", "--languages", "fra_Latn", "--layers", "abc", why="--layers"),
    _case("finetune", "--languages", "fra_Latn", "--layers_json", "{missing}", why="does not exist"),
    _case("finetune", "--languages", "fra_Latn", "--block_size", "0", why="--block_size must be at least 1"),
    _case("finetune", "--languages", "fra_Latn", "--lora_r", "0", why="--lora_r must be at least 1"),
    _case("finetune", "--languages", "fra_Latn", "--pivot", "Klingonish", why="Klingonish"),
    _case("finetune", "--languages", "fra_Latn", "--data", "parallel:{binary.jsonl}", why="binary.jsonl"),
    _case("finetune", "--languages", "fra_Latn", "--data", "parallel:{missing}.tsv", why="does not exist"),
    _case("finetune", "--languages", "fra_Latn", "--data", "{items.jsonl}", why="<kind>:<source>"),
    _case("finetune", "--languages", "fra_Latn", "--eval_tasks", "contination", why="Available:"),
    # merge ---------------------------------------------------------------------------------------
    _case("merge", why="missing required option --recipe"),
    _case("merge", "{missing}.yaml", why="not found"),
    _case("merge", "{recipe_heavy.yaml}", why="heavy"),
    _case("merge", "{recipe_heavy.yaml}", "--dry_run", why="heavy"),
    _case("merge", "{recipe_list.yaml}", why="recipe_list.yaml"),
    _case("merge", "{recipe_bad.yaml}", why="recipe_bad.yaml"),
    _case("merge", "{recipe_method.yaml}", why="blend"),
    _case("merge", "{binary.jsonl}", why="binary.jsonl"),
    _case("merge", "{recipe_heavy.yaml}", "--layers", "some", why="invalid choice"),
    # cypher --------------------------------------------------------------------------------------
    _case("cypher", "--memory_mb", "1", why="--memory_mb must be at least"),
    _case("cypher", "--timeout", "0", why="--timeout must be at least"),
    _case("cypher", "--fewshot", "-1", why="--fewshot must be at least 0"),
    _case("cypher", "--limit", "0", why="--limit must be at least 1"),
    _case("cypher", "--languages", "Klingonish", why="Klingonish"),
    _case("cypher", "--source", "{binary.jsonl}", why="binary.jsonl"),
    _case("cypher", "--source", "{missing}.jsonl", why="does not exist"),
    # report / compare / ls / demo ----------------------------------------------------------------
    _case("report", "{missing}", why="does not exist"),
    _case("report", "{not_a_run}", why="not_a_run"),
    _case("report", "{corrupt_run}", why="corrupt_run"),
    _case("compare", "{missing}", "{missing}", why="does not exist"),
    _case("compare", "{not_a_run}", "{not_a_run}", why="not_a_run"),
    _case("compare", "{corrupt_run}", "{corrupt_run}", why="corrupt_run"),
    _case("ls", "colours", why="is not one of languages"),
    _case("ls", why="missing required option --what"),
    _case("demo", "--limit", "0", why="--limit must be at least 1"),
    _case("demo", "--languages", "Germn", why="Did you mean deu_Latn"),
]


@pytest.fixture(scope="module")
def inputs(tmp_path_factory, tiny_tokenizer):
    from babelscope.testing import make_tiny_model

    root = tmp_path_factory.mktemp("inputs")
    for name, content in FILES.items():
        content = content if isinstance(content, bytes) else _fill(content, root).encode("utf-8")
        (root / name).write_bytes(content)
    for name, files in FOLDERS.items():
        (root / name).mkdir()
        for rel, text in files.items():
            (root / name / rel).write_text(text)
    for seed, name in enumerate(("model_a", "model_b")):
        make_tiny_model("llama", len(tiny_tokenizer), seed=seed).save_pretrained(root / name)
    return root


def _fill(arg: str, root) -> str:
    for name in [*FILES, *FOLDERS, "missing"]:
        arg = arg.replace("{" + name + "}", str(root / name))
    return arg


def test_the_table_is_large_and_covers_every_verb():
    from babelscope.verbs import MODULES

    assert len(CASES) >= 100
    assert set(MODULES) <= {c.values[0][0] for c in CASES}


@pytest.mark.parametrize(("argv", "why"), CASES)
def test_malformed_input_is_one_line_exit_2_and_no_run_folder(inputs, tmp_path, monkeypatch, capsys, argv, why):
    monkeypatch.chdir(tmp_path)
    out = tmp_path / "out"
    argv = [_fill(a, inputs) for a in argv]
    has_output = argv[0] not in ("rescore", "compare", "compare-neurons", "report", "ls", "agree")
    before = sorted(os.listdir(inputs))
    with pytest.raises(SystemExit) if _is_argparse_error(argv) else _no_raise() as exit_info:
        code = main([*argv, *(["--output_path", str(out)] if has_output and "--output_path" not in argv else [])])
    if exit_info is not None and hasattr(exit_info, "value"):
        code = exit_info.value.code
    err = capsys.readouterr().err.strip().splitlines()
    assert code == 2, f"exit {code}: {err}"
    assert len(err) == 1, err
    assert why in err[0], err[0]
    assert not out.exists() or not any(p.is_dir() and (p / "config.yaml").exists() for p in out.rglob("*"))
    assert sorted(os.listdir(inputs)) == before  # nothing written beside the inputs
    assert sorted(os.listdir(tmp_path)) == ["out"] if out.exists() else sorted(os.listdir(tmp_path)) == []


def _is_argparse_error(argv) -> bool:
    return any(w in " ".join(argv) for w in ("lots", "vllm", "pca", "some", "qlora", "middle", "dance",
                                             "--unknown_flag")) and "config" not in " ".join(argv)


class _no_raise:
    def __enter__(self):
        return None

    def __exit__(self, *exc):
        return False


def test_a_byte_order_mark_is_read_not_rejected(tmp_path):
    from babelscope.data.files import read_corpus
    from babelscope.measure.tasks.user import load_user_task

    corpus = tmp_path / "bom.tsv"
    corpus.write_text("\ufeffitem_id\teng_Latn\tfra_Latn\na\tHello\tBonjour\n", encoding="utf-8")
    assert [it.texts for it in read_corpus(str(corpus)).items] == [{"eng_Latn": "Hello", "fra_Latn": "Bonjour"}]
    items = tmp_path / "items.jsonl"
    items.write_text("\ufeff" + _jsonl([ITEM]), encoding="utf-8")
    assert load_user_task(str(items)).available_languages() == ["eng_Latn"]
