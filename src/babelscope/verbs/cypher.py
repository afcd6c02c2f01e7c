"""``babelscope cypher``: Text2Cypher across languages on the built-in graph (or a public set)."""

from __future__ import annotations

import argparse
import os
import sys
from collections import Counter
from dataclasses import dataclass

from babelscope.cypher.engine import open_engine
from babelscope.cypher.evaluate import evaluate_cypher, markdown_table, public_aliases, public_items
from babelscope.cypher.graph import ensure_graph, graph_counts
from babelscope.cypher.prompts import DEFAULT_SHOTS, MAX_GEN_TOKS
from babelscope.cypher.prompts import labels as prompt_labels
from babelscope.cypher.public import AliasExecutor, load_text2cypher
from babelscope.cypher.questions import load_questions, question_languages, select_items
from babelscope.cypher.schema import builtin_schema_text
from babelscope.errors import UsageError
from babelscope.languages import resolve, resolve_many
from babelscope.measure.engine import Engine
from babelscope.verbs import VerbSpec
from babelscope.verbs.common import bind_model, finish, start_run
from babelscope.verbs.config import LanguageOptions, ModelOptions, OutputOptions, option
from babelscope.verbs.result import Result

ACTIONS = ("evaluate", "build-graph", "schema", "questions")
CYPHER_LANGUAGES = "eng_Latn,spa_Latn,tur_Latn"  # the paper's languages
FEWSHOT_HELP = "few-shot examples per prompt, taken from other items in the same language"
GENERATION = "greedy (babelscope.measure.engine.Engine.generate_until)"


@dataclass
class CypherConfig(OutputOptions, LanguageOptions, ModelOptions):
    AUTO_BATCH_SIZE = True  # every batch goes through the engine, which sizes "auto"
    action: str = option("evaluate", "evaluate (default): prompt, generate, execute safely and score; build-graph: "
                         "build the built-in graph (LadybugDB) into the cache; schema: print the schema text used in "
                         "prompts; questions: print the question set's counts per kind and language "
                         f"(one of {', '.join(ACTIONS)})", positional=True, metavar="ACTION")
    batch_size: int | str = option("auto", "queries decoded together; auto (the default): as many as half the free "
                                   "memory holds, at most 64 (the weights are read once per step for all of them; "
                                   "the queries are the same at any batch size)", short="-b", metavar="N|auto",
                                   group="model")
    languages: str = option(CYPHER_LANGUAGES, "comma-separated codes (eng_Latn, es, tr, German, ...) or `all` "
                            "(the built-in set has eng, spa, tur, deu, fra)", short="-l")
    limit: int | None = option(None, "at most this many items per language, spread over the five kinds (for "
                               "quick runs)", short="-L", minimum=1)
    fewshot: int = option(0, FEWSHOT_HELP, minimum=0, cli=False)  # `--fewshot` alone means 3 (add_to_parser)
    source: str = option("builtin", "questions: builtin (the built-in multilingual set over the built-in graph), "
                         "or a neo4j/text2cypher-2024v1 style file (.jsonl/.json/.csv/.parquet) or "
                         "hf:<dataset>[:<split>]")
    question_column: str = option("question", "column holding the question in a public file (e.g. a translated "
                                  "column)")
    database: str | None = option(None, "where queries run: bolt://... or neo4j://... (a Neo4j server, needs pip "
                                  "install 'babelscope[neo4j]'; user/password from --db_user and NEO4J_PASSWORD) "
                                  "or a LadybugDB file, or a folder of them named <database_reference_alias>.lbug "
                                  "or a .json/.yaml mapping {alias: database path} (each public item then runs on its "
                                  "alias's database) (default: the built-in graph; a public source without "
                                  "--database gets text metrics only)")
    db_user: str = option("neo4j", "Neo4j user")
    db_name: str | None = option(None, "Neo4j database name (default: the server's default)")
    graph: str | None = option(None, "path of the built-in graph (default: <cache>/cypher/countries-v2.lbug, "
                               "cache = $BABELSCOPE_CACHE or the user cache folder)")
    rebuild: bool = option(False, "with build-graph: rebuild even if the graph exists")
    timeout: float = option(5.0, "seconds per query (the database's timeout; the worker is killed 5 s later)",
                            minimum=0.001)
    memory_mb: int = option(1536, "memory limit of the query worker process in MiB (RLIMIT_AS)", minimum=64)
    apply_chat_template: bool = option(False, "wrap each prompt in the tokenizer's chat template as one user turn "
                                       "with the generation prompt (for instruct models)")
    max_gen_toks: int = option(MAX_GEN_TOKS, "tokens generated per query at most (the built-in set's longest gold "
                               "query is 54 Gemma 3 tokens; public queries are longer)", minimum=1)
    translate_prompt: bool = option(False, "the instruction and labels in the question's language (the paper's "
                                    "prompt-translation experiment; deu, eng, fra, spa, tur); the schema and "
                                    "Cypher stay English")

    @classmethod
    def add_to_parser(cls, parser: argparse.ArgumentParser) -> None:
        super().add_to_parser(parser)
        parser.add_argument("--fewshot", type=int, nargs="?", const=DEFAULT_SHOTS, default=argparse.SUPPRESS,
                            help=f"{FEWSHOT_HELP} (`--fewshot` alone: {DEFAULT_SHOTS}; default: 0, zero-shot)")

    def validate(self) -> None:
        super().validate()
        if self.action not in ACTIONS:  # checked here, not by argparse (an optional positional)
            raise UsageError(f"cypher: action {self.action!r} is not one of {', '.join(ACTIONS)}.")
        if self.translate_prompt:
            for language in resolve_many(self.languages):
                prompt_labels(language)


def run(config: CypherConfig) -> Result:
    if config.action == "build-graph":
        return _text_result(_graph_text(config))
    if config.action == "schema":
        return _text_result(builtin_schema_text())
    if config.action == "questions":
        return _text_result(_questions_text())
    return _evaluate(config)


def _text_result(text: str) -> Result:
    """The helper actions print text and write no run folder."""
    return Result("cypher", {}, None, text)


def _graph_text(config: CypherConfig) -> str:
    path = ensure_graph(config.graph, rebuild=config.rebuild)
    return "\n".join([f"babelscope: graph {path}", *(f"  {t:<14} {n}" for t, n in graph_counts(path).items())])


def _questions_text() -> str:
    items = load_questions()
    counts = sorted(Counter(i.kind for i in items).items())
    return "\n".join([f"{len(items)} items in {', '.join(question_languages(items))}",
                      *(f"  {kind:<12} {n}" for kind, n in counts)])


def _executor(config: CypherConfig, builtin: bool):
    return open_engine(config.database, graph=config.graph, builtin=builtin, timeout_s=config.timeout,
                       memory_mb=config.memory_mb, user=config.db_user, password=os.environ.get("NEO4J_PASSWORD"),
                       db_name=config.db_name)


def _load_items(config: CypherConfig):
    """(items, schema text or {item_id: schema}, languages, {item_id: alias}, builtin?); unknown languages
    fail here."""
    if config.source == "builtin":
        items = load_questions()
        langs = resolve_many(config.languages, available=question_languages(items))
        return items, builtin_schema_text(), langs, {}, True
    lang = resolve(config.languages.split(",")[0])
    records = load_text2cypher(config.source, config.question_column)
    items, schemas = public_items(records, lang)
    return items, schemas, [lang], public_aliases(records), False


def _chat_formatter(config: CypherConfig, tokenizer):
    """The prompt as one user turn of the tokenizer's chat template, or None without --apply_chat_template."""
    if not config.apply_chat_template:
        return None
    if not getattr(tokenizer, "chat_template", None):
        raise UsageError(f"cypher: --apply_chat_template: the tokenizer of {config.model_args} has no chat template.")

    def format_prompt(prompt: str) -> str:
        return tokenizer.apply_chat_template([{"role": "user", "content": prompt}], tokenize=False,
                                             add_generation_prompt=True)

    return format_prompt


def _evaluate(config: CypherConfig) -> Result:
    items, schema, languages, aliases, builtin = _load_items(config)
    items = select_items(items, config.limit)
    run = start_run(config, "cypher")
    run.languages = languages
    executor = _executor(config, builtin)
    sandbox = executor.guard if executor is not None else "not executed (no database for this source)"
    print(f"babelscope: generated queries: {sandbox}", file=sys.stderr)
    done = {lang: run.read_samples("cypher", lang) for lang in languages}  # resume a named run
    loaded = config.load()
    bind_model(run, loaded, config.model_spec().get("revision"))
    engine = Engine(loaded, batch_size=config.batch_size)  # greedy generate_until, lm-eval semantics
    try:
        format_prompt = _chat_formatter(config, engine.tokenizer)
        result = evaluate_cypher(engine.generate_until, items, languages, executor, schema, config.fewshot, done,
                                 on_language=lambda lang, recs: run.write_samples("cypher", lang, recs),
                                 aliases=aliases, format_prompt=format_prompt, max_gen_toks=config.max_gen_toks,
                                 translate_prompt=config.translate_prompt)
    finally:
        if executor is not None:
            executor.close()
    records = result.pop("records")
    result.update(source=config.source, items=len(items), fewshot=config.fewshot, generation=GENERATION,
                  database=config.database or "builtin ladybug", sandbox=sandbox,
                  chat_template=bool(config.apply_chat_template),
                  prompt_language="question's language" if config.translate_prompt else "English")
    if isinstance(executor, AliasExecutor):
        result["routing"] = {"databases": sorted(executor.databases), "missing_aliases": sorted(executor.missing)}
    run.write_results(result)
    table = markdown_table(result["per_language"])
    run.write_readme(_readme(config, loaded.name, len(items), languages, table, result.get("consistency") or {},
                             result["gold_failures_excluded"]))
    cons = result.get("consistency") or {}
    summary = "\n".join([table, *([f"consistency (all languages): {cons['all_languages']}"] if cons else []),
                         f"gold queries that failed (items excluded from every metric): "
                         f"{result['gold_failures_excluded']}",
                         f"babelscope: wrote {run.path / 'results.json'} "
                         f"({sum(len(r) for r in records.values())} samples)"])
    return finish("cypher", run, summary)


def _readme(config: CypherConfig, model: str, n_items: int, languages: list[str], table: str, cons: dict,
            excluded: int = 0) -> str:
    shots = f"{config.fewshot}-shot" if config.fewshot else "zero-shot"
    return (f"# cypher\n\nModel {model}; {n_items} items x {len(languages)} languages; {shots}; source "
            f"{config.source}.\n\n{table}\n\nCross-lingual consistency (same successful execution result in every "
            f"language): {cons.get('all_languages')}\n\nPer-item records: samples/cypher.<language>.jsonl. "
            "Execution accuracy compares result rows as multisets (as lists when the gold query orders). Execution EM "
            "and execution Google-BLEU are the published procedure: both results as strings in one order and format, "
            "scored with the text metrics. EM raw compares the query strings case-sensitively. Items whose gold query "
            f"fails are excluded from every metric ({excluded} here).\n")


def rows(results: dict) -> list[dict]:
    """language, metric, value (per-language Text2Cypher metrics)."""
    return [{"language": lang, "metric": k, "value": v} for lang, m in results.get("per_language", {}).items()
            for k, v in m.items() if isinstance(v, (int, float)) and not isinstance(v, bool)]


SPEC = VerbSpec(
    "cypher", "measure", "Text2Cypher across languages: exact match, Google-BLEU, ROUGE-L, execution acc.",
    CypherConfig, run,
    description="Text2Cypher across languages (Ozsoy & Tai): prompt with the schema and a question, generate "
    "greedily, extract the query, run it read-only in a memory- and time-limited worker on the built-in LadybugDB "
    "graph (countries, languages, scripts, currencies from pycountry + CLDR), and score per language. "
    "Examples: babelscope cypher build-graph; babelscope cypher --model_args pretrained=default --languages "
    "eng_Latn,spa_Latn,tur_Latn --limit 30; babelscope cypher --languages all --fewshot; babelscope cypher "
    "--source test.parquet --database bolt://localhost:7687",
)
