"""Text2Cypher metrics (against nltk and rouge_score), query extraction, result comparison,
consistency, the public text2cypher loader and the Neo4j path's failure modes."""

from __future__ import annotations

import json
import random

import pytest
from tests.cypher_fixtures import executor, graph_path  # noqa: F401  (pytest fixtures)

from babelscope.cypher import metrics
from babelscope.cypher.prompts import build_prompt, extract_query, fewshot_examples
from babelscope.cypher.public import load_text2cypher
from babelscope.cypher.questions import load_questions
from babelscope.errors import DataError

GOLD = "MATCH (c:Country {name: 'Spain'})-[:USES_CURRENCY]->(cu:Currency) RETURN cu.name"


def _random_queries(n=40, seed=0):
    rng = random.Random(seed)
    golds = [i.cypher for i in load_questions()]
    out = []
    for _ in range(n):
        gold = rng.choice(golds)
        toks = metrics.query_tokens(rng.choice(golds))
        rng.shuffle(toks)
        pred = " ".join(toks[: rng.randint(0, len(toks))]) if rng.random() < 0.5 else rng.choice(golds)
        out.append((pred, gold))
    return out


def test_google_bleu_equals_nltk_gleu_sentence_and_corpus():
    from nltk.translate.gleu_score import corpus_gleu, sentence_gleu

    pairs = _random_queries()
    for pred, gold in pairs:
        ours = metrics.google_bleu(pred, gold)
        ref = sentence_gleu([metrics.query_tokens(gold)], metrics.query_tokens(pred))
        assert ours == pytest.approx(ref, abs=1e-12)
    counts = [metrics.gleu_counts(metrics.query_tokens(p), metrics.query_tokens(g)) for p, g in pairs]
    ref = corpus_gleu([[metrics.query_tokens(g)] for _, g in pairs], [metrics.query_tokens(p) for p, _ in pairs])
    assert metrics.corpus_google_bleu(counts) == pytest.approx(ref, abs=1e-12)


def test_rouge_l_equals_rouge_score_on_the_same_tokens():
    from rouge_score import rouge_scorer

    class Tok:
        def tokenize(self, text):
            return text.split("\x1f")

    scorer = rouge_scorer.RougeScorer(["rougeL"], tokenizer=Tok())
    for pred, gold in _random_queries(seed=1):
        p, g = metrics.query_tokens(pred), metrics.query_tokens(gold)
        if not p:
            continue
        ref = scorer.score("\x1f".join(g), "\x1f".join(p))["rougeL"].fmeasure
        assert metrics.rouge_l(pred, gold) == pytest.approx(ref, abs=1e-12)


def test_normalised_exact_match():
    assert metrics.exact_match("match (c:Country {name: \"Spain\"})-[:USES_CURRENCY]->(cu:Currency)\n"
                               "RETURN   cu.name ;", GOLD) == 1.0  # fmt: skip
    assert metrics.exact_match(GOLD.replace("'Spain'", "'spain'"), GOLD) == 0.0  # literals keep their case
    assert metrics.exact_match(GOLD.replace("cu.name", "cu.code"), GOLD) == 0.0


@pytest.mark.parametrize(
    "output,syntax",
    [
        ("1.0000000", True),  # not Cypher at all
        ("Country: Spain Language: Spanish", True),
        ("MATCH (c:Country)", True),  # no RETURN
        ("MATCH (c:Country RETURN c", True),  # unbalanced
        ("", True),
        ("MATCH (c:Country) DETACH DELETE c", False),  # valid but unsafe: rejected, not a syntax error
        ("MATCH (c:Country) RETURN c.nam", False),  # valid syntax, unknown property (binder error)
    ],
)
def test_syntax_error_classification(executor, output, syntax):  # noqa: F811
    res = executor.run(output)
    assert res.status != "ok"
    assert metrics.is_syntax_error(res.status, res.error) is syntax, res


def test_execution_comparison_orders_only_when_gold_orders():
    assert metrics.has_order_by("MATCH (c) RETURN c.name ORDER BY c.name")
    assert not metrics.has_order_by("MATCH (c) WITH c ORDER BY c.x LIMIT 3 RETURN c.name")  # only the final one
    assert not metrics.has_order_by("MATCH (c) RETURN c.name")
    a, b = [["x", 1], ["y", 2]], [["y", 2], ["x", 1]]
    assert metrics.results_equal(a, b, ordered=False)
    assert not metrics.results_equal(a, b, ordered=True)
    assert not metrics.results_equal(a, a + a, ordered=False)  # multisets, not sets
    assert metrics.results_equal([[3]], [[3.0]], ordered=False)
    assert metrics.results_equal([[0.1 + 0.2]], [[0.3]], ordered=True)


def test_consistency_counts_items_with_the_same_successful_result_everywhere():
    keys = {"eng_Latn": {"a": "r1", "b": "r2", "c": None}, "spa_Latn": {"a": "r1", "b": "r3", "c": None}}
    out = metrics.consistency(keys)
    assert out["items"] == 3 and out["all_languages"] == pytest.approx(1 / 3)
    assert out["pairwise"]["eng_Latn|spa_Latn"] == pytest.approx(1 / 3)
    assert out["matrix"]["spa_Latn"]["eng_Latn"] == pytest.approx(1 / 3)
    assert out["matrix"]["eng_Latn"]["eng_Latn"] == pytest.approx(2 / 3)  # items that executed


@pytest.mark.parametrize(
    "raw",
    [
        f" {GOLD}\n\nQuestion: next",
        f"```cypher\n{GOLD}\n```",
        f"Cypher output: {GOLD}<end_of_turn>",
        f"<|im_start|>```\n{GOLD}\n```<|im_end|>",
    ],
)
def test_extract_query_strips_fences_prefixes_and_chat_tokens(raw):
    assert extract_query(raw) == GOLD


def test_prompt_and_fewshot_never_show_the_item_or_its_template():
    items = load_questions()
    target = items[0]
    shots = fewshot_examples(items, target.item_id, "tur_Latn", 3)
    assert len(shots) == 3
    same_template = {i.cypher for i in items if i.item_id.split(".")[:2] == target.item_id.split(".")[:2]}
    assert not same_template & {c for _, c in shots}
    prompt = build_prompt(target.questions["tur_Latn"], "SCHEMA", shots)
    assert prompt.index("SCHEMA") < prompt.index(shots[0][0]) < prompt.index(target.questions["tur_Latn"])
    assert prompt.endswith("Cypher output:")


PUBLIC_ROWS = [
    {"question": "Which movies did Tom Hanks act in?", "schema": "Node properties:\nPerson {name: STRING}",
     "cypher": "MATCH (p:Person {name: 'Tom Hanks'})-[:ACTED_IN]->(m:Movie) RETURN m.title",
     "data_source": "neo4jLabs_synthetic_gpt4o", "instance_id": "instance_id_1",
     "database_reference_alias": "neo4jlabs_demo_db_movies", "question_es": "¿En qué películas actuó Tom Hanks?"},
    {"question": "How many people are there?", "schema": "Node properties:\nPerson {name: STRING}",
     "cypher": "MATCH (p:Person) RETURN count(p)", "data_source": "functional_cypher",
     "instance_id": "instance_id_2", "database_reference_alias": None, "question_es": "¿Cuántas personas hay?"},
]  # fmt: skip


@pytest.mark.parametrize("suffix", [".jsonl", ".csv", ".parquet"])
def test_public_loader_reads_the_text2cypher_layout(tmp_path, suffix):
    import pandas as pd

    path = tmp_path / f"t2c{suffix}"
    if suffix == ".jsonl":
        path.write_text("".join(json.dumps(r) + "\n" for r in PUBLIC_ROWS))
    elif suffix == ".csv":
        pd.DataFrame(PUBLIC_ROWS).to_csv(path, index=False)
    else:
        pd.DataFrame(PUBLIC_ROWS).to_parquet(path)
    recs = load_text2cypher(str(path))
    assert [r.instance_id for r in recs] == ["instance_id_1", "instance_id_2"]
    assert recs[0].database_reference_alias == "neo4jlabs_demo_db_movies"
    assert recs[1].database_reference_alias is None
    assert recs[0].extra == {"question_es": "¿En qué películas actuó Tom Hanks?"}
    es = load_text2cypher(str(path), question_column="question_es")
    assert es[1].question == "¿Cuántas personas hay?" and es[1].cypher == PUBLIC_ROWS[1]["cypher"]


def test_public_loader_errors_name_the_problem(tmp_path):
    bad = tmp_path / "bad.jsonl"
    bad.write_text(json.dumps({"question": "q", "schema": "s"}) + "\n")
    with pytest.raises(DataError, match="row 0 lacks cypher"):
        load_text2cypher(str(bad))
    with pytest.raises(DataError, match="does not exist"):
        load_text2cypher(str(tmp_path / "missing.jsonl"))


def test_neo4j_path_needs_the_driver_or_rejects_before_connecting():
    try:
        import neo4j  # noqa: F401
    except ImportError:
        from babelscope.cypher.bolt import Neo4jExecutor
        from babelscope.errors import MissingExtraError

        with pytest.raises(MissingExtraError, match="babelscope\\[neo4j\\]"):
            Neo4jExecutor("bolt://localhost:7687")
        return
    from babelscope.cypher.bolt import Neo4jExecutor

    ex = Neo4jExecutor("bolt://127.0.0.1:9", password="x")  # nothing listens: a rejected query never connects
    assert ex.run("MATCH (n) DETACH DELETE n").status == "rejected"
    ex.close()
