"""The built-in graph, its schema text, the multilingual question set and the finetuning pairs."""

from __future__ import annotations

import json
from collections import Counter

import pytest
from tests.cypher_fixtures import executor, graph_path  # noqa: F401  (pytest fixtures)

from babelscope.cypher.graph import NODE_TABLES, REL_TABLES, graph_counts
from babelscope.cypher.metrics import has_order_by
from babelscope.cypher.questions import KINDS, finetune_pairs, is_heldout, load_questions, question_languages
from babelscope.cypher.schema import builtin_schema_text

LANGS = ["eng_Latn", "spa_Latn", "tur_Latn", "deu_Latn", "fra_Latn"]


def test_graph_has_four_plus_node_and_relationship_tables_all_filled(graph_path):  # noqa: F811
    counts = graph_counts(graph_path)
    assert len(NODE_TABLES) >= 4 and len(REL_TABLES) >= 4
    assert all(counts[t] > 0 for t in list(NODE_TABLES) + list(REL_TABLES)), counts
    assert counts["Country"] == 249  # ISO 3166-1 in pycountry


def test_graph_facts_come_from_cldr(executor):  # noqa: F811
    res = executor.run(
        "MATCH (c:Country {code: 'ES'})-[s:SPEAKS]->(l:Language {code: 'es'}) RETURN s.population_percent, "
        "s.official_status"
    )
    from babel.core import get_global

    cldr = get_global("territory_languages")["ES"]["es"]
    assert res.rows == [[cldr["population_percent"], cldr["official_status"]]]
    res = executor.run("MATCH (c:Country {code: 'JP'})-[:USES_CURRENCY]->(cu:Currency) RETURN cu.code, cu.digits")
    assert res.rows == [["JPY", 0]]


def test_schema_text_lists_every_table_in_text2cypher_layout():
    text = builtin_schema_text()
    assert text.startswith("Node properties:\n")
    assert "Relationship properties:\n" in text and "The relationships:\n" in text
    for table in NODE_TABLES:
        assert f"\n{table} {{" in text
    for rel, (src, dst, _) in REL_TABLES.items():
        assert f"(:{src})-[:{rel}]->(:{dst})" in text
    assert "population_percent: FLOAT" in text


def test_question_set_size_languages_kinds_alignment():
    items = load_questions()
    assert len(items) >= 150
    assert len({i.item_id for i in items}) == len(items)
    assert set(LANGS) <= set(question_languages(items))
    assert set(Counter(i.kind for i in items)) == set(KINDS)
    for item in items:
        texts = [item.questions[lang] for lang in LANGS]
        assert all(t.strip() for t in texts)
        assert len(set(texts)) >= 4, item.item_id  # real translations, not copies
        assert item.questions["spa_Latn"].startswith(("¿", "Enumera")), item.item_id
        assert "{" not in "".join(texts)  # no unfilled template slot


def test_every_gold_query_executes_and_returns_rows(executor):  # noqa: F811
    failures = []
    for item in load_questions():
        res = executor.run(item.cypher)
        if not res.ok or not res.rows or res.rows == [[0]]:
            failures.append((item.item_id, res.status, res.error, res.rows))
    assert failures == []


def test_ordered_gold_queries_have_no_ties_at_the_cut(executor):  # noqa: F811
    """`ORDER BY ... LIMIT k` golds must have one right answer: the k-th and (k+1)-th keys differ."""
    for item in load_questions():
        q = item.cypher
        if not has_order_by(q) or " LIMIT " not in q:
            continue
        body, limit = q.rsplit(" LIMIT ", 1)
        head, order = body.rsplit(" ORDER BY ", 1)
        key = order.split(",")[0].replace(" DESC", "").strip()
        probe = executor.run(f"{head}, {key} AS _key ORDER BY {order} LIMIT {int(limit) + 1}")
        assert probe.ok, (item.item_id, probe.error)
        keys = [row[-1] for row in probe.rows]
        if len(keys) > int(limit):
            assert keys[int(limit) - 1] != keys[int(limit)], item.item_id


def test_question_file_is_what_the_templates_generate():
    from babelscope.cypher.question_templates import generate_items

    generated = {i["item_id"]: i for i in generate_items()}
    for item in load_questions():
        rec = generated[item.item_id]
        assert (rec["cypher"], rec["kind"], rec["questions"]) == (item.cypher, item.kind, item.questions)


def test_finetune_pairs_split_by_item_with_no_leak_across_languages():
    train = finetune_pairs(["eng_Latn", "spa_Latn", "tur_Latn"], "train")
    held = finetune_pairs("eng_Latn,spa_Latn,tur_Latn", "heldout")
    train_ids, held_ids = {p["item_id"] for p in train}, {p["item_id"] for p in held}
    assert train_ids and held_ids and not train_ids & held_ids
    assert len(train_ids | held_ids) == len(load_questions())
    assert 0.1 < len(held_ids) / len(train_ids | held_ids) < 0.3
    per_item = Counter(p["item_id"] for p in train)
    assert set(per_item.values()) == {3}  # every train item in all three languages
    pair = train[0]
    assert pair["text"] == pair["prompt"] + pair["completion"]
    assert pair["prompt"].endswith("Cypher output:") and "Node properties:" in pair["prompt"]
    assert all(is_heldout(p["item_id"]) for p in held)
    json.dumps(train)  # plain data, ready for a datasets.Dataset


def test_finetune_pairs_bad_input():
    with pytest.raises(ValueError, match="no Cypher questions in zul_Latn"):
        finetune_pairs(["zul_Latn"])
    with pytest.raises(ValueError, match="split"):
        finetune_pairs(None, "validation")
