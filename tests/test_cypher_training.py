"""--data cypher:<file>: a text2cypher-layout training file becomes prompt -> query documents with
the evaluation's prompt; a language column picks rows; bs.finetune trains on it."""

import json

import pytest

import babelscope as bs
from babelscope.cypher.prompts import build_prompt
from babelscope.cypher.training import UNLABELLED, file_pairs, training_pairs
from babelscope.data.parallel import build_docs, pack_docs
from babelscope.errors import DataError
from babelscope.schema import validate
from finetune_fixtures import write_corpus

SCHEMA = "Node properties:\nPerson {name: STRING}\nRelationship properties:\n(:Person)-[:KNOWS]->(:Person)"
ROWS = [
    {"question": "Who knows Ada?", "cypher": "MATCH (p:Person)-[:KNOWS]->(:Person {name: 'Ada'}) RETURN p.name",
     "language": "en"},
    {"question": "¿Quién conoce a Ada?", "cypher": "MATCH (p:Person)-[:KNOWS]->(:Person {name: 'Ada'}) RETURN p.name",
     "language": "spa_Latn"},
    {"question": "Ada'yı kim tanıyor?", "cypher": "MATCH (p:Person)-[:KNOWS]->(:Person {name: 'Ada'}) RETURN p.name",
     "language": "Turkish"},
    {"question": "How many people are there?", "cypher": "MATCH (p:Person) RETURN count(p)", "language": "eng_Latn"},
]


def write(path, rows):
    path.write_text("".join(json.dumps({**r, "schema": SCHEMA}, ensure_ascii=False) + "\n" for r in rows),
                    encoding="utf-8")
    return str(path)


def test_file_rows_become_the_evaluation_prompt_and_the_query(tmp_path):
    path = write(tmp_path / "train.jsonl", ROWS)
    docs = build_docs([f"cypher:{path}"], ["eng_Latn", "spa_Latn"], cypher_pairs=training_pairs)
    assert {d.kind for d in docs} == {"cypher"} and {d.direction for d in docs} == {"eng_Latn", "spa_Latn"}
    wanted = {(build_prompt(r["question"], SCHEMA), " " + r["cypher"]) for r in ROWS if r["language"] != "Turkish"}
    assert {(d.prompt, d.completion) for d in docs} == wanted  # the Turkish row is not among --languages


def test_the_packed_schedule_holds_the_questions_and_queries(tmp_path, tiny_tokenizer):
    path = write(tmp_path / "train.jsonl", ROWS)
    docs = build_docs([f"cypher:{path}"], ["eng_Latn", "tur_Latn"], cypher_pairs=training_pairs)
    chunks, _ = pack_docs(docs, tiny_tokenizer, 4096)
    fed = tiny_tokenizer.decode([t for ids, _, mask in chunks for t, m in zip(ids, mask, strict=True) if m])
    trained = tiny_tokenizer.decode([t for _, labels, _ in chunks for t in labels if t != -100])
    for row in ROWS:
        if row["language"] in ("en", "eng_Latn", "Turkish"):
            assert row["question"] in fed and row["cypher"] in trained
    assert "conoce" not in fed and "Cypher output:" in fed and "Cypher output:" not in trained


def test_a_file_without_language_column_is_one_language(tmp_path):
    path = write(tmp_path / "train.tur.jsonl", [{k: v for k, v in r.items() if k != "language"} for r in ROWS])
    pairs = file_pairs(path, ["eng_Latn"])
    assert len(pairs) == len(ROWS) and {p["language"] for p in pairs} == {UNLABELLED}
    with pytest.raises(DataError, match="no rows"):
        build_docs([f"cypher:{write(tmp_path / 'x.jsonl', ROWS[2:3])}"], ["eng_Latn", "fra_Latn"],
                   cypher_pairs=training_pairs)
    with pytest.raises(DataError, match="does not exist"):
        build_docs([f"cypher:{tmp_path / 'missing.jsonl'}"], ["eng_Latn", "fra_Latn"], cypher_pairs=training_pairs)


def test_finetune_two_steps_on_a_cypher_file(tiny_model_dir, tmp_path):
    path = write(tmp_path / "train.jsonl", ROWS * 3)
    corpus = str(write_corpus(tmp_path))
    r = bs.finetune(model=str(tiny_model_dir), languages=["eng_Latn", "spa_Latn"], data=f"cypher:{path}",
                    eval_source=corpus, max_steps=2, train_batch_size=2, max_length=64, eval_limit=2, layers="0",
                    output_path=str(tmp_path / "out"), no_save=True)
    validate(r.results)
    data = r.results["data"]
    assert data["specs"] == [f"cypher:{path}"]
    assert data["by_kind"] == {"cypher": {"eng_Latn": 6, "spa_Latn": 3}}
    assert data["trained"]["cypher"] and len(r.results["training"]["losses"]) == 2
