"""The evaluation loop with planted predictions, and `babelscope cypher` end to end on a tiny model."""

from __future__ import annotations

import json

import pytest
from tests.cypher_fixtures import executor, graph_path  # noqa: F401  (pytest fixtures)

from babelscope.cli.main import main
from babelscope.cypher.evaluate import evaluate_cypher
from babelscope.cypher.questions import KINDS, load_questions, select_items
from babelscope.cypher.schema import builtin_schema_text


def test_planted_predictions_give_the_expected_metrics(executor):  # noqa: F811
    items = [i for i in load_questions() if " LIMIT " not in i.cypher][:12]
    by_question = {}
    for item in items:
        by_question[item.questions["eng_Latn"]] = f" {item.cypher}\n\nQuestion: ignored"  # exact gold
        by_question[item.questions["spa_Latn"]] = f" {item.cypher} LIMIT 100000"  # same result, other text
        by_question[item.questions["tur_Latn"]] = " MATCH (c:Country RETURN"  # broken
    by_question[items[0].questions["tur_Latn"]] = " MATCH (c:Country) DETACH DELETE c"  # hostile: an error

    def generate(requests):
        assert all(r[1]["until"] and r[1]["max_gen_toks"] > 0 for r in requests)
        return [by_question[ctx.rsplit("Question: ", 1)[1].split("\n")[0]] for ctx, _ in requests]

    out = evaluate_cypher(generate, items, ["eng_Latn", "spa_Latn", "tur_Latn"], executor, builtin_schema_text())
    eng, spa, tur = (out["per_language"][lang] for lang in ("eng_Latn", "spa_Latn", "tur_Latn"))
    assert eng["n"] == 12 and eng["exact_match"] == 1.0 and eng["execution_accuracy"] == 1.0
    assert eng["google_bleu"] == 1.0 and eng["rouge_l"] == 1.0 and eng["syntax_error_rate"] == 0.0
    assert spa["exact_match"] == 0.0 and spa["execution_accuracy"] == 1.0 and 0.5 < spa["google_bleu"] < 1.0
    assert tur["execution_accuracy"] == 0.0 and tur["syntax_error_rate"] == pytest.approx(11 / 12)
    assert tur["rejected_rate"] == pytest.approx(1 / 12)
    cons = out["consistency"]
    assert cons["pairwise"]["eng_Latn|spa_Latn"] == 1.0 and cons["all_languages"] == 0.0
    assert out["macro_mean"]["execution_accuracy"] == pytest.approx(2 / 3)
    assert out["gold_failures"] == []
    rec = out["records"]["tur_Latn"][0]
    assert rec["status"] == "rejected" and "DELETE" in rec["error"]


def test_limit_spreads_items_over_the_kinds():
    chosen = select_items(load_questions(), 10)
    assert len(chosen) == 10 and {i.kind for i in chosen} == set(KINDS)


def test_cypher_verb_end_to_end_on_a_tiny_model(tiny_model_dir, graph_path, tmp_path, capsys):  # noqa: F811
    rc = main(["cypher", "--model_args", f"pretrained={tiny_model_dir}", "--languages", "en,es,tr",
               "--limit", "3", "--fewshot", "1", "--graph", str(graph_path), "--output_path", str(tmp_path),
               "--run_name", "run"])  # fmt: skip
    assert rc == 0
    run = next(tmp_path.glob("*/run"))
    results = json.loads((run / "results.json").read_text())
    for lang in ("eng_Latn", "spa_Latn", "tur_Latn"):
        s = results["per_language"][lang]
        assert s["n"] == 3
        for key in ("exact_match", "google_bleu", "rouge_l", "execution_accuracy", "syntax_error_rate",
                    "exact_match_raw", "google_bleu_raw", "execution_exact_match", "execution_google_bleu"):
            assert 0.0 <= s[key] <= 1.0
        samples = [json.loads(x) for x in (run / "samples" / f"cypher.{lang}.jsonl").read_text().splitlines()]
        assert [r["item_id"] for r in samples] == [i.item_id for i in select_items(load_questions(), 3)]
    assert results["consistency"]["items"] == 3
    assert results["gold_failures"] == [] and results["gold_failures_excluded"] == 0
    assert "execution acc." in (run / "README.md").read_text()
    assert "| eng_Latn | 3 |" in capsys.readouterr().out


def test_cypher_helper_actions(graph_path, capsys):  # noqa: F811
    assert main(["cypher", "build-graph", "--graph", str(graph_path)]) == 0
    assert "SPEAKS" in capsys.readouterr().out
    assert main(["cypher", "questions"]) == 0
    assert "multi-hop" in capsys.readouterr().out
    assert main(["cypher", "schema"]) == 0
    assert capsys.readouterr().out.startswith("Node properties:")


def test_unknown_language_is_a_one_line_error(capsys):
    assert main(["cypher", "--languages", "zul_Latn", "--limit", "1"]) == 2
    assert "error" in capsys.readouterr().err
