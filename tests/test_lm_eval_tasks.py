"""``--tasks lm_eval:<task>``: lm-eval's own task definitions on a local belebele copy, scored by babelscope.

The reference is lm-eval itself on the same local files, loaded the way lm-eval documents local data
(a task YAML that includes its belebele template and sets ``dataset_path: json``), independent of the
path babelscope's ``--task_data`` takes.
"""

import json
from pathlib import Path

import pytest

from babelscope.errors import BabelscopeError, UsageError
from babelscope.measure import evaluate
from babelscope.measure.tasks import get_task

LANGS = ["eng_Latn", "fra_Latn", "deu_Latn"]
N_DOCS = 8
TASK = "lm_eval-belebele"
_WORDS = {"eng_Latn": ("The river", "What flows?", ["water", "sand", "a long road", "light"]),
          "fra_Latn": ("La rivière", "Qu'est-ce qui coule ?", ["l'eau", "le sable", "une longue route", "la lumière"]),
          "deu_Latn": ("Der Fluss", "Was fließt?", ["Wasser", "Sand", "eine lange Straße", "Licht"])}


def belebele_rows(lang: str) -> list[dict]:
    """Rows in facebook/belebele's public schema (the same questions in every language)."""
    subject, question, answers = _WORDS[lang]
    return [{"link": f"https://example.org/{i}", "question_number": 1, "flores_passage": f"{subject} {i} runs far.",
             "question": f"{question} ({i}) ", "mc_answer1": answers[i % 4], "mc_answer2": answers[(i + 1) % 4],
             "mc_answer3": answers[(i + 2) % 4], "mc_answer4": answers[(i + 3) % 4],
             "correct_answer_num": str(i % 4 + 1), "dialect": lang, "ds": "2023-05-03"} for i in range(N_DOCS)]


@pytest.fixture(scope="module")
def task_data(tmp_path_factory):
    """DIR/facebook/belebele/<lang>/test.jsonl for three languages, and lm-eval's own YAMLs over them."""
    import lm_eval.tasks

    root = tmp_path_factory.mktemp("task_data")
    ref = tmp_path_factory.mktemp("lm_eval_yaml")
    template = Path(lm_eval.tasks.__file__).parent / "belebele" / "_default_template_yaml"
    for lang in LANGS:
        data = root / "facebook" / "belebele" / lang / "test.jsonl"
        data.parent.mkdir(parents=True)
        data.write_text("".join(json.dumps(r, ensure_ascii=False) + "\n" for r in belebele_rows(lang)),
                        encoding="utf-8")
        (ref / f"belebele_{lang}.yaml").write_text(
            f"include: {json.dumps(str(template))}\ntask: belebele_{lang}\ndataset_path: json\ndataset_name: null\n"
            f"dataset_kwargs:\n  data_files:\n    test: {json.dumps(str(data))}\ntest_split: test\n"
            "fewshot_split: test\n", encoding="utf-8")
    return root, ref


@pytest.fixture
def lm_task(task_data, monkeypatch):
    monkeypatch.setenv("BABELSCOPE_TASK_DATA", str(task_data[0]))
    return get_task("lm_eval:belebele")


def lm_eval_reference(ref_dir):
    """lm-eval's task objects over the local YAMLs (its own TaskManager, no babelscope code)."""
    from lm_eval.tasks import TaskManager

    tm = TaskManager(include_path=str(ref_dir), include_defaults=False)
    return tm, tm.load([f"belebele_{lang}" for lang in LANGS])["tasks"]


def test_requests_equal_the_ones_lm_eval_builds(lm_task, task_data):
    data = lm_task.load(LANGS)
    _, tasks = lm_eval_reference(task_data[1])
    for lang in LANGS:
        task = tasks[f"belebele_{lang}"]
        task.set_config(key="num_fewshot", value=0)
        task.build_all_requests(limit=None, rank=0, world_size=1)
        theirs = [inst.arguments for inst in sorted(task.instances, key=lambda i: (i.doc_id, i.idx))]
        ours = [(it.context, choice) for it in data[lang] for choice in it.choices]
        assert len(ours) == N_DOCS * 4
        assert ours == theirs  # contexts and continuations, byte for byte
        assert [it.gold for it in data[lang]] == [i % 4 for i in range(N_DOCS)]
    # aligned by document: the same ids in every language
    assert {it.item_id for it in data["eng_Latn"]} == {it.item_id for it in data["deu_Latn"]}


def test_accuracy_equals_lm_eval_evaluator(lm_task, task_data, tiny_loaded):
    from lm_eval import simple_evaluate
    from lm_eval.models.huggingface import HFLM

    loaded = tiny_loaded("llama")
    ours = evaluate(loaded, [lm_task], LANGS, progress=False, fertility=False)
    tm, _ = lm_eval_reference(task_data[1])
    lm = HFLM(pretrained=loaded.model, tokenizer=loaded.tokenizer, batch_size=4)
    theirs = simple_evaluate(model=lm, tasks=[f"belebele_{lang}" for lang in LANGS], task_manager=tm,
                             log_samples=True, bootstrap_iters=0)
    for lang in LANGS:
        name = f"belebele_{lang}"
        assert ours.results["tasks"][TASK][lang]["acc"] == theirs["results"][name]["acc,none"]
        assert ours.results["tasks"][TASK][lang]["acc_norm"] == theirs["results"][name]["acc_norm,none"]
        samples = sorted(theirs["samples"][name], key=lambda s: s["doc_id"])
        for rec, sample in zip(ours.records[TASK][lang], samples, strict=True):
            assert rec["logprobs"] == pytest.approx([float(r[0][0]) for r in sample["resps"]], abs=1e-4)
    cons = ours.results["consistency"][TASK]
    assert cons["vs_reference"]["fra_Latn"]["n"] == N_DOCS
    assert set(cons["matrix"]) == set(LANGS)


def test_single_lm_eval_task_name_gets_the_prefix_hint():
    with pytest.raises(UsageError, match="--tasks lm_eval:belebele_deu_Latn"):
        get_task("belebele_deu_Latn")


def test_generation_tasks_are_refused_before_any_data_loads():
    task = get_task("lm_eval:xnli_de")  # multiple choice: accepted
    assert task.available_languages() == ["deu_Latn"]
    with pytest.raises(UsageError, match="output_type generate_until"):
        get_task("lm_eval:mgsm_direct_de").load(["deu_Latn"], limit=1)


def test_missing_local_copy_is_one_line(lm_task):
    with pytest.raises(BabelscopeError, match="hau_Latn/test.jsonl") as err:
        lm_task.load(["hau_Latn"], limit=1)
    assert "\n" not in str(err.value)


def test_subtask_languages():
    from babelscope.languages import split_task_name

    def language_of(name):
        return split_task_name(name)[0]

    assert language_of("belebele_deu_Latn") == "deu_Latn"
    assert language_of("belebele_hin_Latn") is None  # a variety babelscope's table does not name
    assert language_of("xnli_de") == "deu_Latn"
    assert language_of("global_mmlu_full_de_abstract_algebra") == "deu_Latn"
    assert language_of("include_base_44_albanian_stem") == "als_Latn"


def lm_eval_tracker_file(ref_dir, loaded, out) -> dict:
    """What lm-eval itself writes (simple_evaluate + EvaluationTracker) for a group over the local YAMLs."""
    from lm_eval import simple_evaluate
    from lm_eval.loggers import EvaluationTracker
    from lm_eval.models.huggingface import HFLM
    from lm_eval.tasks import TaskManager

    (ref_dir / "_belebele_local.yaml").write_text(
        "group: belebele\ntask:\n" + "".join(f"  - belebele_{lang}\n" for lang in LANGS)
        + "aggregate_metric_list:\n  - metric: acc\n    weight_by_size: true\n"
        "  - metric: acc_norm\n    weight_by_size: true\nmetadata:\n  version: 0.0\n", encoding="utf-8")
    tracker = EvaluationTracker(output_path=str(out))
    lm = HFLM(pretrained=loaded.model, tokenizer=loaded.tokenizer, batch_size=4)
    res = simple_evaluate(model=lm, tasks=["belebele"], log_samples=True, evaluation_tracker=tracker,
                          task_manager=TaskManager(include_path=str(ref_dir), include_defaults=False))
    samples = res.pop("samples")
    tracker.save_results_aggregated(results=res, samples=samples)
    return json.loads(next(Path(out).rglob("results_*.json")).read_text(encoding="utf-8"))


def test_eval_verb_tables_consistency_and_lm_eval_results(task_data, tiny_model_dir, tiny_tokenizer, tmp_path,
                                                           capsys):
    from babelscope.cli.main import main
    from babelscope.models.load import load_model
    from babelscope.report.build import build_report
    from babelscope.report.lm_eval import read

    argv = ["eval", "--model_args", f"pretrained={tiny_model_dir}", "--tasks", "lm_eval:belebele", "--languages",
            ",".join(LANGS), "--task_data", str(task_data[0]), "--output_path", str(tmp_path / "runs"),
            "--run_name", "r", "--write_lm_eval_results"]
    assert main(argv) == 0
    run = next(p for p in (tmp_path / "runs").rglob("r") if p.is_dir())
    res = json.loads((run / "results.json").read_text(encoding="utf-8"))
    assert set(res["tasks"][TASK]) == set(LANGS) and res["tasks"][TASK]["deu_Latn"]["n"] == N_DOCS
    assert res["consistency"][TASK]["vs_reference"]["deu_Latn"]["n"] == N_DOCS
    assert res["task_info"][TASK]["lm_eval"]["subtasks"]["fra_Latn"] == ["belebele_fra_Latn"]
    assert (run / "samples" / f"{TASK}.fra_Latn.jsonl").is_file()
    capsys.readouterr()
    assert main(["rescore", str(run)]) == 0 and "identical" in capsys.readouterr().out

    ours = json.loads(next(run.glob("results_*.json")).read_text(encoding="utf-8"))
    theirs = lm_eval_tracker_file(task_data[1], load_model(str(tiny_model_dir)), tmp_path / "lm_eval_out")
    assert set(theirs) - {"pretty_env_info", "model_num_parameters"} <= set(ours)  # every key lm-eval writes
    for key in ("results", "configs", "versions", "n-shot", "higher_is_better", "n-samples"):
        assert set(ours[key]) == set(theirs[key]), key
    for sub, row in theirs["results"].items():
        assert set(row) == set(ours["results"][sub]), sub
        for metric, value in row.items():
            if "," in metric and metric != "sample_count":
                assert ours["results"][sub][metric] == pytest.approx(value), (sub, metric)
    assert set(ours["groups"]["belebele"]) >= set(theirs["groups"]["belebele"])
    assert ours["group_subtasks"] == {"belebele": [f"belebele_{lang}" for lang in LANGS]}
    mine = {k: v for k, v in ours["configs"]["belebele_deu_Latn"].items() if k not in ("metadata", "dataset_kwargs")}
    assert mine == {k: v for k, v in theirs["configs"]["belebele_deu_Latn"].items()
                    if k not in ("metadata", "dataset_kwargs")}

    # read back: our file and lm-eval's own folder give babelscope's per-language table
    back = read(next(run.glob("results_*.json")))
    for lang in LANGS:
        for metric in ("acc", "acc_norm", "acc_stderr", "n"):
            assert back["tasks"][TASK][lang][metric] == pytest.approx(res["tasks"][TASK][lang][metric])
    foreign = read(next((tmp_path / "lm_eval_out").rglob("results_*.json")))
    assert {lang: m["acc"] for lang, m in foreign["tasks"][TASK].items()} == {
        lang: m["acc"] for lang, m in res["tasks"][TASK].items()}
    build_report([str(run)], strict=True)  # the run renders like any eval run
    report = build_report([str(tmp_path / "lm_eval_out")], strict=True)
    assert [r.results["tasks"][TASK]["fra_Latn"]["acc"] for r, _ in report["runs"]] == [
        res["tasks"][TASK]["fra_Latn"]["acc"]]


CATEGORIES = ["Business", "Humanities", "Medical", "Other", "STEM", "Social Sciences"]


def global_mmlu_rows(lang: str) -> list[dict]:
    """Rows in CohereLabs/Global-MMLU-Lite's public schema, two per subject category."""
    return [{"sample_id": f"s/test/{i}", "subject": "s", "subject_category": CATEGORIES[i % 6],
             "question": f"[{lang}] question {i}?", "option_a": "one", "option_b": "two", "option_c": "three",
             "option_d": "four", "answer": "ABCD"[i % 4], "required_knowledge": "[]", "time_sensitive": "No",
             "reference": "", "culture": "[]", "region": "[]", "country": "[]", "cultural_sensitivity_label": "CA",
             "is_annotated": True} for i in range(12)]


def test_per_language_groups_joined_with_plus(tmp_path, monkeypatch, tiny_loaded):
    from babelscope.measure.lm_eval_results import to_lm_eval
    from babelscope.report.lm_eval import per_language

    for iso in ("de", "fr"):
        path = tmp_path / "CohereLabs" / "Global-MMLU-Lite" / iso / "test.jsonl"
        path.parent.mkdir(parents=True)
        path.write_text("".join(json.dumps(r) + "\n" for r in global_mmlu_rows(iso)), encoding="utf-8")
    monkeypatch.setenv("BABELSCOPE_TASK_DATA", str(tmp_path))
    task = get_task("lm_eval:global_mmlu_de+global_mmlu_fr")
    langs = ["deu_Latn", "fra_Latn"]
    data = task.load(langs)
    assert [len(data[lang]) for lang in langs] == [12, 12]  # six subject subtasks per language, concatenated
    assert {it.item_id for it in data["deu_Latn"]} == {it.item_id for it in data["fra_Latn"]}
    assert "global_mmlu_*_business#0" in {it.item_id for it in data["deu_Latn"]}
    first = next(it for it in data["fra_Latn"] if it.item_id == "global_mmlu_*_business#0")
    assert first.context == "[fr] question 0?\nA. one\nB. two\nC. three\nD. four\nAnswer:"
    assert (first.choices, first.gold) == ([" A", " B", " C", " D"], 0)

    res = evaluate(tiny_loaded("llama"), [task], langs, reference="deu_Latn", progress=False, fertility=False)
    assert res.results["consistency"][task.name]["vs_reference"]["fra_Latn"]["n"] == 12
    doc = to_lm_eval(res.results, [task])
    assert doc["group_subtasks"] == {task.lm_eval_name: ["global_mmlu_de", "global_mmlu_fr"]}
    assert len(doc["configs"]) == 12 and "global_mmlu_fr_stem" in doc["configs"]
    assert doc["n-samples"]["global_mmlu_de"] == {"original": 12, "effective": 12}
    back = per_language(doc)
    assert {lang: m["acc"] for lang, m in back[task.name].items()} == {
        lang: m["acc"] for lang, m in res.results["tasks"][task.name].items()}


def test_lm_eval_groups_of_one_language_read_as_that_language():
    from babelscope.report.lm_eval import per_language

    def row(name, acc, n):
        return {"name": name, "alias": name, "sample_len": n, "acc,none": acc, "acc_stderr,none": 0.1}

    doc = {"results": {}, "groups": {}, "group_subtasks": {}}
    for iso, accs in (("de", (0.5, 1.0)), ("fr", (0.0, 0.5))):
        leaves = [f"global_mmlu_{iso}_business", f"global_mmlu_{iso}_stem"]
        doc["results"].update({leaf: row(leaf, acc, 4) for leaf, acc in zip(leaves, accs, strict=True)})
        doc["results"][f"global_mmlu_{iso}"] = doc["groups"][f"global_mmlu_{iso}"] = row(
            f"global_mmlu_{iso}", sum(accs) / 2, 8)
        doc["group_subtasks"][f"global_mmlu_{iso}"] = leaves
    doc["results"]["arc_easy"] = row("arc_easy", 0.3, 10)  # no language: left out
    tables = per_language(doc)
    assert tables == {"lm_eval-global_mmlu_*": {
        "deu_Latn": {"n": 8, "acc": 0.75, "acc_stderr": 0.1}, "fra_Latn": {"n": 8, "acc": 0.25, "acc_stderr": 0.1}}}


XNLI = {"en": ["The cat sleeps.", "It rains a lot today.", "Tom bought three red apples.",
               "The old train left at noon.", "She writes long letters.", "We never eat fish."],
        "de": ["Die Katze schläft.", "Heute regnet es viel.", "Tom kaufte drei rote Äpfel.",
               "Der alte Zug fuhr mittags ab.", "Sie schreibt lange Briefe.", "Wir essen nie Fisch."]}


def test_xnli_whole_sentence_choices_match_lm_eval(tmp_path, monkeypatch, tiny_loaded):
    """xnli: empty context, choices of different lengths (acc_norm differs from acc), validation split."""
    import lm_eval.tasks
    from lm_eval import simple_evaluate
    from lm_eval.models.huggingface import HFLM
    from lm_eval.tasks import TaskManager

    ref = tmp_path / "yaml"
    ref.mkdir()
    for iso, pairs in XNLI.items():
        rows = [{"premise": p, "hypothesis": pairs[(i + 2) % 6][:-1] + " again.", "label": i * 7 % 3}
                for i, p in enumerate(pairs)]
        path = tmp_path / "data" / "facebook" / "xnli" / iso / "validation.jsonl"
        path.parent.mkdir(parents=True)
        path.write_text("".join(json.dumps(r, ensure_ascii=False) + "\n" for r in rows), encoding="utf-8")
        theirs_yaml = Path(lm_eval.tasks.__file__).parent / "xnli" / f"xnli_{iso}.yaml"
        (ref / f"xnli_{iso}.yaml").write_text(
            f"include: {json.dumps(str(theirs_yaml))}\ntask: xnli_{iso}\ndataset_path: json\ndataset_name: null\n"
            f"dataset_kwargs:\n  data_files:\n    validation: {json.dumps(str(path))}\ntraining_split: null\n"
            "metric_list:\n  - metric: acc\n  - metric: acc_norm\n", encoding="utf-8")
    monkeypatch.setenv("BABELSCOPE_TASK_DATA", str(tmp_path / "data"))
    task = get_task("lm_eval:xnli")
    langs = ["eng_Latn", "deu_Latn"]
    assert task.load(langs)["deu_Latn"][0].context == ""
    loaded = tiny_loaded("llama")
    ours = evaluate(loaded, [task], langs, progress=False, fertility=False)
    lm = HFLM(pretrained=loaded.model, tokenizer=loaded.tokenizer, batch_size=4)
    theirs = simple_evaluate(model=lm, tasks=["xnli_en", "xnli_de"], bootstrap_iters=0, log_samples=True,
                             task_manager=TaskManager(include_path=str(ref), include_defaults=False))
    for lang, iso in zip(langs, ("en", "de"), strict=True):
        samples = sorted(theirs["samples"][f"xnli_{iso}"], key=lambda s: s["doc_id"])
        requests = [[(r["context"], r["choices"][k]) for k in range(3)] for r in ours.records["lm_eval-xnli"][lang]]
        assert [[tuple(a) for a in s["arguments"]] for s in samples] == requests
        for rec, sample in zip(ours.records["lm_eval-xnli"][lang], samples, strict=True):  # item by item
            assert (rec["acc"], rec["acc_norm"]) == (sample["acc"], sample["acc_norm"])
            assert rec["n_chars"] == [len(c) - 1 for c in rec["choices"]]  # acc_norm: without target_delimiter
        assert ours.results["tasks"]["lm_eval-xnli"][lang]["acc"] == theirs["results"][f"xnli_{iso}"]["acc,none"]
        assert ours.results["tasks"]["lm_eval-xnli"][lang]["acc_norm"] == theirs["results"][f"xnli_{iso}"][
            "acc_norm,none"]
