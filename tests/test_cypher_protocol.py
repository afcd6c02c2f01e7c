"""The published Text2Cypher scoring: execution-based EM / Google-BLEU (golden test against the metric code the
papers used), raw-string EM, gold-failure exclusion, routing by database_reference_alias, the chat template.

The oracle below ports, in a few lines, Hugging Face evaluate's `google_bleu` (13a tokens, then nltk's
`corpus_gleu`) and `exact_match`; tests/fixtures/official/text2cypher/README.md names the commits followed.
"""

from __future__ import annotations

import json
import re
from collections import Counter
from pathlib import Path

import pytest
from tests.cypher_fixtures import graph_path  # noqa: F401  (pytest fixture)

from babelscope.cli.main import main
from babelscope.cypher import metrics
from babelscope.cypher.evaluate import evaluate_cypher, public_aliases, public_items
from babelscope.cypher.public import AliasExecutor, database_map, load_text2cypher
from cypher_fixtures import make_db

FIXTURES = Path(__file__).parent / "fixtures" / "official" / "text2cypher"


# --- the oracle: huggingface/evaluate metrics/google_bleu (261842f) + tokenizer_13a.py (2bbd42a), nltk
# gleu_score.corpus_gleu (031a862), metrics/exact_match (2d0b5c2) with default arguments -------------------
_ORACLE_RE = [
    (re.compile(r"([\{-\~\[-\` -\&\(-\+\:-\@\/])"), r" \1 "),
    (re.compile(r"([^0-9])([\.,])"), r"\1 \2 "),
    (re.compile(r"([\.,])([^0-9])"), r" \1 \2"),
    (re.compile(r"([0-9])(-)"), r"\1 \2 "),
]


def oracle_tokenizer_13a(line: str) -> list[str]:
    line = line.replace("<skipped>", "").replace("-\n", "").replace("\n", " ")
    if "&" in line:
        line = line.replace("&quot;", '"').replace("&amp;", "&").replace("&lt;", "<").replace("&gt;", ">")
    line = f" {line} "
    for pattern, repl in _ORACLE_RE:
        line = pattern.sub(repl, line)
    return line.split()


def _everygrams(tokens, min_len=1, max_len=4):
    return [tuple(tokens[i : i + n]) for n in range(min_len, max_len + 1) for i in range(len(tokens) - n + 1)]


def oracle_corpus_gleu(list_of_references, hypotheses, min_len=1, max_len=4) -> float:
    corpus_n_match = corpus_n_all = 0
    for references, hypothesis in zip(list_of_references, hypotheses):
        hyp_ngrams = Counter(_everygrams(hypothesis, min_len, max_len))
        tpfp = sum(hyp_ngrams.values())
        scores_by_ref = []
        for reference in references:
            ref_ngrams = Counter(_everygrams(reference, min_len, max_len))
            tp = sum((ref_ngrams & hyp_ngrams).values())
            n_all = max(tpfp, sum(ref_ngrams.values()))
            if n_all > 0:
                scores_by_ref.append((tp / n_all, tp, n_all))
        if scores_by_ref:
            _, n_match, n_all = max(scores_by_ref)
            corpus_n_match += n_match
            corpus_n_all += n_all
    return corpus_n_match / corpus_n_all if corpus_n_all else 0.0


def oracle_google_bleu(predictions: list[str], references: list[str]) -> float:
    refs = [[oracle_tokenizer_13a(r)] for r in references]
    return oracle_corpus_gleu(refs, [oracle_tokenizer_13a(p) for p in predictions])


def oracle_exact_match(predictions: list[str], references: list[str]) -> float:
    return sum(p == r for p, r in zip(predictions, references)) / len(predictions)


# --- golden tests -----------------------------------------------------------------------------------------


def test_oracle_reproduces_the_published_google_bleu_example():
    ex = json.loads((FIXTURES / "google_bleu_example1.json").read_text())
    assert round(oracle_google_bleu(ex["predictions"], ex["references"]), 2) == ex["google_bleu_2dp"]
    counts = [metrics.gleu_counts(metrics.tokenize_13a(p), metrics.tokenize_13a(r))
              for p, r in zip(ex["predictions"], ex["references"])]  # fmt: skip
    assert metrics.corpus_google_bleu(counts) == pytest.approx(oracle_google_bleu(ex["predictions"], ex["references"]))


def test_tokenize_13a_equals_the_oracle_and_sacrebleu():
    from sacrebleu.tokenizers.tokenizer_13a import Tokenizer13a

    sacre = Tokenizer13a()
    texts = ['["Tom Hanks", 1956]\n["Meg Ryan", 1961]', "MATCH (m:Movie {title: 'Apollo 13'}) RETURN m.released",
             "a-1, b.2 3.5 -4 x&amp;y &lt;z&gt;", "[{\"name\": \"Ünïcode\"}, null]", "", "10-20 1,000 e.g. end."]
    for text in texts:
        assert metrics.tokenize_13a(text) == oracle_tokenizer_13a(text) == sacre(text.replace("\n", " ")).split()


def test_execution_based_metrics_equal_the_published_metrics_on_stringified_results():
    cases = json.loads((FIXTURES / "execution_cases.json").read_text())["cases"]
    records = [metrics.execution_text_scores(c["pred"], c["gold"]) for c in cases]
    # the oracle: both results as strings (a failed prediction as the empty string), then evaluate's metrics
    golds = [metrics.result_string(c["gold"]) for c in cases]
    preds = [metrics.result_string(c["pred"]) or "" for c in cases]
    assert sum(r["exec_exact_match"] for r in records) / len(records) == pytest.approx(oracle_exact_match(preds, golds))
    ours = metrics.corpus_google_bleu([tuple(r["exec_gleu_counts"]) for r in records])
    assert ours == pytest.approx(oracle_google_bleu(preds, golds))
    # same order and format: row order, map key order and int/float spelling do not matter; values do
    assert [r["exec_exact_match"] for r in records] == [1.0, 0.0, 1.0, 1.0, 1.0, 0.0, 0.0, 0.0]
    for c, r in zip(cases, records):
        if c["pred"] is not None:
            one = metrics.gleu_counts(metrics.tokenize_13a(metrics.result_string(c["pred"])),
                                      metrics.tokenize_13a(metrics.result_string(c["gold"])))  # fmt: skip
            assert tuple(r["exec_gleu_counts"]) == one


def test_raw_exact_match_keeps_case_and_the_normalised_one_does_not():
    queries = json.loads((FIXTURES / "execution_cases.json").read_text())["queries"]
    raw = [metrics.exact_match_raw(p, g) for p, g in queries]
    norm = [metrics.exact_match(p, g) for p, g in queries]
    assert raw == [1.0, 0.0, 0.0, 0.0] and norm == [1.0, 1.0, 1.0, 0.0]
    assert raw == [oracle_exact_match([" ".join(p.split())], [" ".join(g.split())]) for p, g in queries]
    preds, golds = [p for p, _ in queries], [g for _, g in queries]
    counts = [metrics.gleu_counts(metrics.tokenize_13a(p), metrics.tokenize_13a(g)) for p, g in queries]
    assert metrics.corpus_google_bleu(counts) == pytest.approx(oracle_google_bleu(preds, golds))


# --- routing by alias and gold-failure exclusion ------------------------------------------------------------


@pytest.fixture(scope="module")
def two_databases(tmp_path_factory):
    """A folder with movies.lbug (Movie nodes) and people.lbug (Person nodes), and a public-layout file."""
    root = tmp_path_factory.mktemp("t2c")
    folder = root / "dbs"
    folder.mkdir()
    make_db(folder / "movies.lbug", "Movie", ["Apollo 13", "Heat"])
    make_db(folder / "people.lbug", "Person", ["Tom Hanks", "Meg Ryan", "Al Pacino"])
    rows = [
        {"question": "List the movies", "schema": "Movie {name: STRING}", "cypher": "MATCH (m:Movie) RETURN m.name",
         "instance_id": "q-movies", "database_reference_alias": "movies", "data_source": "t"},
        {"question": "List the people", "schema": "Person {name: STRING}", "cypher": "MATCH (p:Person) RETURN p.name",
         "instance_id": "q-people", "database_reference_alias": "people", "data_source": "t"},
        {"question": "Count people", "schema": "Person {name: STRING}", "cypher": "MATCH (p:Person) RETURN count(p)",
         "instance_id": "q-count", "database_reference_alias": "people", "data_source": "t"},
        {"question": "Broken gold", "schema": "Movie {name: STRING}", "cypher": "MATCH (x:Nope) RETURN x.name",
         "instance_id": "q-broken", "database_reference_alias": "movies", "data_source": "t"},
        {"question": "Unknown db", "schema": "Movie {name: STRING}", "cypher": "MATCH (m:Movie) RETURN m.name",
         "instance_id": "q-nodb", "database_reference_alias": "recommendations", "data_source": "t"},
    ]  # fmt: skip
    source = root / "test.jsonl"
    source.write_text("".join(json.dumps(r) + "\n" for r in rows))
    return folder, source


def test_each_item_runs_on_its_alias_database_and_failed_golds_are_excluded(two_databases):
    folder, source = two_databases
    records = load_text2cypher(str(source))
    items, schemas = public_items(records)
    aliases = public_aliases(records)
    assert set(database_map(folder)) == {"movies", "people"}
    answers = {"List the movies": "MATCH (m:Movie) RETURN m.name",  # right database: right rows
               "List the people": "MATCH (p:Person) RETURN p.name ORDER BY p.name DESC",  # rows in another order
               "Count people": "MATCH (p:Person) RETURN count(*) + 1",  # wrong value
               "Broken gold": "MATCH (m:Movie) RETURN m.name", "Unknown db": "MATCH (m:Movie) RETURN m.name"}

    def generate(requests):
        return [" " + answers[ctx.rsplit("Question: ", 1)[1].split("\n")[0]] for ctx, _ in requests]

    with AliasExecutor(database_map(folder), timeout_s=3.0) as ex:
        out = evaluate_cypher(generate, items, ["eng_Latn"], ex, schemas, aliases=aliases)
        assert ex.missing == {"recommendations"} and set(ex._executors) == {"movies", "people"}
    recs = {r["item_id"]: r for r in out["records"]["eng_Latn"]}
    assert sorted(recs["q-movies"]["rows"]) == [["Apollo 13"], ["Heat"]]  # Movie exists only in movies.lbug
    assert sorted(recs["q-people"]["rows"]) == [["Al Pacino"], ["Meg Ryan"], ["Tom Hanks"]]
    assert out["gold_failures"] == ["q-broken", "q-nodb"] and out["gold_failures_excluded"] == 2
    assert recs["q-broken"]["gold_failed"] and recs["q-broken"]["execution_match"] is None
    s = out["per_language"]["eng_Latn"]
    assert s["n"] == 3  # the two failed golds are left out of every metric, text metrics included
    assert s["execution_exact_match"] == pytest.approx(2 / 3) and s["execution_accuracy"] == pytest.approx(2 / 3)
    assert s["exact_match"] == pytest.approx(1 / 3) and s["exact_match_raw"] == pytest.approx(1 / 3)
    assert 0.0 < s["execution_google_bleu"] < 1.0 and s["google_bleu_raw"] < 1.0


def test_mapping_file_routes_like_a_folder(two_databases, tmp_path):
    folder, _ = two_databases
    mapping = tmp_path / "dbs.yaml"
    mapping.write_text(f"movies: {folder / 'movies.lbug'}\nneo4jlabs_demo_db_people: {folder / 'people.lbug'}\n")
    with AliasExecutor(database_map(mapping), timeout_s=3.0) as ex:
        assert ex.run("MATCH (p:Person) RETURN count(p)", "neo4jlabs_demo_db_people").rows == [[3]]
        assert ex.run("MATCH (p:Person) RETURN count(p)", "movies").status == "error"  # no Person table there
        assert ex.run("RETURN 1", None).status == "error"


def test_cypher_verb_on_a_public_file_with_a_folder_of_databases(tiny_model_dir, two_databases, tmp_path):
    folder, source = two_databases
    rc = main(["cypher", "--model_args", f"pretrained={tiny_model_dir}", "--source", str(source), "--database",
               str(folder), "--output_path", str(tmp_path), "--run_name", "pub"])  # fmt: skip
    assert rc == 0
    results = json.loads(next(tmp_path.glob("*/pub")).joinpath("results.json").read_text())
    assert results["gold_failures_excluded"] == 2 and results["routing"]["missing_aliases"] == ["recommendations"]
    s = results["per_language"]["eng_Latn"]
    assert s["n"] == 3
    for key in ("execution_exact_match", "execution_google_bleu", "exact_match_raw", "google_bleu_raw"):
        assert 0.0 <= s[key] <= 1.0
    assert results["chat_template"] is False


def test_apply_chat_template_wraps_the_prompt_or_fails_in_one_line(tiny_model_dir, graph_path, tmp_path,  # noqa: F811
                                                                   capsys):
    from babelscope.verbs.cypher import CypherConfig, _chat_formatter

    rc = main(["cypher", "--model_args", f"pretrained={tiny_model_dir}", "--limit", "1", "--languages", "en",
               "--graph", str(graph_path), "--apply_chat_template", "--output_path", str(tmp_path)])  # fmt: skip
    err = capsys.readouterr().err
    assert rc == 2 and "no chat template" in err

    class Tok:
        chat_template = "{{ messages }}"

        def apply_chat_template(self, messages, tokenize, add_generation_prompt):
            assert not tokenize and add_generation_prompt
            return f"<user>{messages[0]['content']}</user><model>"

    fmt = _chat_formatter(CypherConfig(apply_chat_template=True), Tok())
    assert fmt("Question: q\nCypher output:") == "<user>Question: q\nCypher output:</user><model>"
    assert _chat_formatter(CypherConfig(), Tok()) is None



def test_text2cypher_paper_protocol_sets_the_papers_options_and_the_command_line_wins():
    from babelscope.verbs.cypher import CypherConfig

    config = CypherConfig.from_mapping({"protocol": "text2cypher-paper"}, verb="cypher")
    assert config.apply_chat_template and config.fewshot == 0 and config.max_gen_toks == 512
    assert config.source == "hf:neo4j/text2cypher-2024v1:test"
    local = CypherConfig.from_mapping({"protocol": "text2cypher-paper", "source": "test.parquet",
                                       "question_column": "question_es", "languages": "spa_Latn"}, verb="cypher")
    assert local.source == "test.parquet" and local.apply_chat_template


def test_translate_prompt_puts_instruction_and_labels_in_the_question_language():
    from babelscope.cypher.prompts import build_prompt, labels, stop_strings
    from babelscope.cypher.questions import load_questions
    from babelscope.errors import UsageError

    prompt = build_prompt("¿Cuántos países hay?", "SCHEMA", [("¿Qué idioma?", "MATCH (l:Language) RETURN l")],
                          language="spa_Latn")
    assert prompt.startswith("Genera una consulta Cypher") and "Esquema:\nSCHEMA" in prompt
    assert prompt.endswith("Pregunta: ¿Cuántos países hay?\nSalida Cypher:")
    assert "Pregunta:" in stop_strings("spa_Latn") and "Question:" in stop_strings("spa_Latn")
    assert "Question: Q?\nCypher output:" in build_prompt("Q?", "S")  # English without a language
    with pytest.raises(UsageError, match="--translate_prompt"):
        labels("jpn_Jpan")
    seen = []

    def generate(requests):
        seen.extend(requests)
        return ["MATCH (c:Country) RETURN count(c)"] * len(requests)

    items = load_questions()[:2]
    evaluate_cypher(generate, items, ["tur_Latn", "eng_Latn"], None, "SCHEMA", translate_prompt=True)
    assert seen[0][0].startswith("Bir graf veritabanını") and "Soru:" in seen[0][1]["until"]
    assert seen[2][0].startswith("Generate Cypher statement")
