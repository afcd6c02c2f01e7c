"""bs.cypher, bs.report and bs.compare on run folders that the real verbs wrote on a tiny model: cypher's
results.json follows its schema; the report and the comparison read the results envelope and the
before/after shape, and show the numbers results.json holds."""

from __future__ import annotations

import json

import pytest
import yaml
from tests.cypher_fixtures import graph_path  # noqa: F401  (pytest fixture)

import babelscope as bs
from babelscope.errors import UsageError
from babelscope.report.build import build_report
from babelscope.report.collect import load_run
from babelscope.schema import validate
from measure_fixtures import small_corpus
from merge_fixtures import build_models
from report_fixtures import finetune_run

LANGS = ["eng_Latn", "fra_Latn", "deu_Latn"]


@pytest.fixture(scope="module")
def corpus_file(tmp_path_factory):
    path = tmp_path_factory.mktemp("corpus") / "aligned.jsonl"
    small_corpus().save(str(path))
    return str(path)


@pytest.fixture(scope="module")
def eval_runs(tiny_model_dir, corpus_file, tmp_path_factory):
    """Two evals of the tiny model on different item counts (A: 3 items, B: 5 items per language)."""
    out = tmp_path_factory.mktemp("evals")
    return [bs.eval(model=str(tiny_model_dir), tasks="continuation", languages=LANGS, limit=n, source=corpus_file,
                    output_path=str(out), run_name=name) for name, n in (("a", 3), ("b", 5))]


@pytest.fixture(scope="module")
def finetuned(tiny_model_dir, corpus_file, tmp_path_factory):
    out = tmp_path_factory.mktemp("finetune")
    return bs.finetune(model=str(tiny_model_dir), languages="eng_Latn,fra_Latn", data=f"parallel:{corpus_file}",
                       eval_source=corpus_file, eval_languages="eng_Latn,fra_Latn", layers="0", max_steps=2,
                       train_batch_size=2, max_length=32, eval_limit=2, no_save=True, output_path=str(out),
                       run_name="ft")


def test_cypher_api_results_follow_the_schema(tiny_model_dir, graph_path, tmp_path):  # noqa: F811
    r = bs.cypher(model=str(tiny_model_dir), languages="en,es", limit=2, graph=str(graph_path),
                  output_path=str(tmp_path), run_name="c")
    on_disk = json.loads((r.path / "results.json").read_text())
    assert on_disk == r.results
    validate(on_disk)
    assert on_disk["verb"] == "cypher" and on_disk["languages"] == ["eng_Latn", "spa_Latn"]
    assert on_disk["model"]["source"] == "folder" and on_disk["items"] == 2 and on_disk["fewshot"] == 0
    assert {lang: s["n"] for lang, s in on_disk["per_language"].items()} == {"eng_Latn": 2, "spa_Latn": 2}
    assert on_disk["database"] == "builtin ladybug" and on_disk["consistency"]["items"] == 2
    assert on_disk["sandbox"].startswith("local worker, ")
    frame = r.to_frame()
    assert set(frame["language"]) == {"eng_Latn", "spa_Latn"} and "execution_accuracy" in set(frame["metric"])
    assert "| eng_Latn | 2 |" in r.summary
    helper = bs.cypher(action="questions")
    assert helper.path is None and "multi-hop" in helper.summary
    with pytest.raises(UsageError, match="action 'drop'"):
        bs.cypher(action="drop")
    with pytest.raises(UsageError, match="--fewshot must be at least 0"):
        bs.cypher(fewshot=-1)


def test_report_reads_the_envelope_of_real_eval_runs(eval_runs, tmp_path):
    a = eval_runs[0]
    out = tmp_path / "r.html"
    r = bs.report(runs=[str(a.path)], output=str(out), title="tiny")
    assert out.is_file() and str(out.resolve()) in r.summary and r.path is None
    run = load_run(a.path)
    assert not run.legacy and run.verb == "eval" and run.languages == LANGS
    assert run.model == a.results["model"]["name"].rstrip("/").split("/")[-1]
    context = build_report([a.path], strict=True)
    summary, overview = context["across"][0], context["across"][-1]  # results per language come first
    assert summary.title == "Results per language" and overview.title == "Runs in this report"
    (first,) = summary.tables
    head = first.columns.index("continuation: accuracy")
    for row in first.rows:
        assert float(row[head].text) == pytest.approx(a.results["tasks"]["continuation"][row[0].text]["acc"], abs=1e-4)
    cons = first.columns.index("continuation: consistency")
    assert "answered as eng_Latn does" in first.caption
    vs = a.results["consistency"]["continuation"]["vs_reference"]
    assert [r[cons].text for r in first.rows][1:] == [f"{vs[lang]['consistency']:.4g}" for lang in LANGS[1:]]
    assert overview.tables[0].rows[0][1].text == "eval" and overview.tables[0].rows[0][3].text == ", ".join(LANGS)
    (sec,) = [s for _, secs in context["runs"] for s in secs if s.title == "Per-language results: continuation"]
    table = sec.figures[0].table
    col = table.columns.index("accuracy")
    acc = {row[0].text: row[col].text for row in table.rows}
    assert list(acc) == LANGS
    for lang in LANGS:
        assert float(acc[lang]) == pytest.approx(a.results["tasks"]["continuation"][lang]["acc"], abs=1e-4)
    kinds = {s.kind for _, secs in context["runs"] for s in secs}
    assert {"run", "languages", "consistency"} <= kinds and "error" not in kinds
    assert not [s for _, secs in context["runs"] for s in secs if "config" in s.title or "environment" in s.title]


def _records(run, lang) -> list[dict]:
    path = run.path / "samples" / f"continuation.{lang}.jsonl"
    return [json.loads(line) for line in path.read_text().splitlines()]


def test_compare_real_eval_runs(eval_runs, tmp_path):
    """A scored 3 items per language and B 5: both are compared on the 3 items both scored, with a warning."""
    a, b = eval_runs
    r = bs.compare(run_a=str(a.path), run_b=str(b.path), metrics="acc", output=str(tmp_path / "c.html"))
    diffs = {d["language"]: d for d in r.results["diffs"] if d["table"] == "tasks / continuation"}
    assert sorted(diffs) == sorted(LANGS)
    for lang, d in diffs.items():
        shared = {x["item_id"] for x in _records(a, lang)}
        on_shared = [x["acc"] for x in _records(b, lang) if x["item_id"] in shared]
        assert len(shared) == 3 and len(on_shared) == 3
        assert d["a"] == a.results["tasks"]["continuation"][lang]["acc"]
        assert d["b"] == pytest.approx(sum(on_shared) / 3)  # B's accuracy on A's items, not on all 5
        assert d["delta"] == pytest.approx(d["b"] - d["a"])
    assert sorted(r.results["item_sets"], key=lambda d: d["language"]) == [
        {"task": "continuation", "language": lang, "a": 3, "b": 5, "shared": 3} for lang in sorted(LANGS)]
    (warning,) = r.results["warnings"]
    assert "dropping 0 of A's 9 and 6 of B's 15" in warning and r.summary.startswith("babelscope: warning: ")
    html = (tmp_path / "c.html").read_text(encoding="utf-8")
    assert "the runs scored different items" in html and "dropping 0 of A&#39;s 9 and 6 of B&#39;s 15" in html
    assert "B − A" in r.summary and "macro mean" in r.summary
    assert set(r.to_frame()["metric"]) == {"acc"}
    with pytest.raises(UsageError, match="none of the metrics nope"):
        bs.compare(run_a=str(a.path), run_b=str(b.path), metrics="nope")


def test_report_before_after_from_a_real_finetune_run(finetuned):
    validate(finetuned.results)
    stages, table = finetuned.results["stages"], finetuned.results["before_after"]
    assert stages == ["before", "after"] and set(table["bpc"]) == {"eng_Latn", "fra_Latn"}
    context = build_report([finetuned.path], strict=True)
    secs = {s.title: s for _, ss in context["runs"] for s in ss if s.kind == "before_after"}
    assert set(secs) == {f"Before and after, per language: {task}" for task in table}
    for task, by_lang in table.items():
        tab = secs[f"Before and after, per language: {task}"].figures[0].table
        assert tab.columns == ["language", *stages, f"{stages[-1]} − {stages[0]}"]
        for row in tab.rows:
            cells = by_lang[row[0].text]
            assert float(row[1].text) == pytest.approx(cells[stages[0]], rel=1e-3)
            assert float(row[-1].text) == pytest.approx(cells[stages[-1]] - cells[stages[0]], rel=1e-3, abs=1e-6)
    kinds = {s.kind for _, ss in context["runs"] for s in ss}
    assert "provenance" in kinds and "error" not in kinds
    per_language = [s.title for _, ss in context["runs"] for s in ss if s.kind == "languages"]
    assert not [t for t in per_language if t.split(": ")[-1].split(" / ")[0] in ("before", "after", "delta")]


def test_an_old_layout_folder_is_upgraded_when_read(tmp_path):
    old = load_run(finetune_run(tmp_path).path)  # written as before the envelope: no schema_version
    assert old.legacy and old.verb == "finetune" and old.results["stages"] == ["before", "after"]
    assert set(old.results["before_after"]) == {"bpc", "continuation"}
    assert old.results["before_after"]["bpc"]["eng_Latn"] == {"before": 2.0, "after": 1.8}
    assert old.languages == ["eng_Latn", "fra_Latn", "deu_Latn", "rus_Cyrl", "zho_Hans"]
    assert "before_after_tasks" not in old.results
    (header,) = [s for _, ss in build_report([old.path], strict=True)["runs"] for s in ss if s.kind == "run"]
    assert "previous results.json layout" in header.blocks[0].text


def test_report_and_compare_options_are_checked():
    with pytest.raises(UsageError, match="missing required option --runs"):
        bs.report()
    with pytest.raises(UsageError, match="--max_rows must be at least 1"):
        bs.compare(run_a="a", run_b="b", max_rows=0)


@pytest.fixture(scope="module")
def more_runs(tiny_model_dir, corpus_file, tmp_path_factory):
    """heads (with its checks), mask on its scores, merge --evaluate, fertility, neurons and layers."""
    root = tmp_path_factory.mktemp("more")
    out, model = str(root / "runs"), str(tiny_model_dir)
    heads = bs.heads(model=model, languages=LANGS, source=corpus_file, num_items=6, batch_size=4, max_length=32,
                     quantile=0.75, validate=True, num_eval_items=2, num_prompts=1, max_new_tokens=2, output_path=out)
    mask = bs.mask(model=model, languages="eng_Latn,fra_Latn", scores=str(heads.path), tasks="continuation",
                   train_limit=2, eval_limit=2, epochs=1, num_heads=2, batch_size=4, output_path=out)
    models = build_models(root / "models")
    recipe = {"name": "lin", "merge_method": "linear",
              "models": [{"model": str(models[m]), "parameters": {"weight": 1}} for m in ("A", "B")]}
    (root / "recipe.yaml").write_text(yaml.safe_dump(recipe))
    merge = bs.merge(recipe=str(root / "recipe.yaml"), evaluate=True, tasks="continuation",
                     languages="eng_Latn,fra_Latn", limit=3, source=corpus_file, output_path=out)
    fertility = bs.fertility(model=model, languages=LANGS, source=corpus_file, limit=10, output_path=out)
    neurons = bs.neurons(model=model, source=corpus_file, languages=LANGS, max_tokens=160, eval_tokens=48,
                         top_rate=0.05, batch_size=4, threads=1, output_path=out)
    layers = bs.layers(model=model, source=corpus_file, languages="fra_Latn,deu_Latn", max_tokens=160,
                       lens_positions=8, budget=0.5, threads=1, output_path=out)
    return {r.verb: r for r in (heads, mask, merge, fertility, neurons, layers)}


EXPECTED_KINDS = {  # what the tiny runs hold (heads: its 2-token off-target check judges nothing)
    "eval": {"languages", "consistency"},
    "finetune": {"provenance", "before_after", "training"},
    "heads": {"head_classes"},
    "mask": {"provenance", "before_after", "head_mask", "training"},
    "merge": {"provenance", "before_after"},
    "fertility": {"fertility"},
    "neurons": {"neurons"},
    "layers": {"layers"},
}


def test_report_renders_real_runs_of_every_verb(eval_runs, finetuned, more_runs):
    runs = [eval_runs[0], finetuned, *more_runs.values()]
    context = build_report([r.path for r in runs], strict=True)
    kinds: dict[str, set] = {}
    for run, secs in context["runs"]:
        assert not run.legacy and run.model and run.languages is not None
        kinds.setdefault(run.verb, set()).update(s.kind for s in secs)
    for verb, expected in EXPECTED_KINDS.items():
        assert expected <= kinds[verb], (verb, kinds[verb])
        assert "error" not in kinds[verb]
    merge = more_runs["merge"].results
    nested = [run for run, _ in context["runs"] if more_runs["merge"].path in run.path.parents]
    assert {run.path.name for run in nested} == set(merge["stages"])  # each model's eval, a run of its own
    (sec,) = [s for run, ss in context["runs"] if run.verb == "merge" for s in ss if s.kind == "before_after"]
    stages = merge["stages"]
    assert sec.figures[0].table.columns == ["language", *stages, f"{stages[-1]} − {stages[0]}"]
    mask = [s for run, ss in context["runs"] if run.verb == "mask" for s in ss]
    assert [s.title for s in mask if s.kind == "before_after"] == ["Before and after, per language: continuation"]
    assert not [s for s in mask if s.kind == "languages" and s.title.endswith(("before", "after"))]
