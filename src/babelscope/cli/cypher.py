"""``babelscope cypher``: Text2Cypher across languages on the built-in graph (or a public set)."""

from __future__ import annotations

import argparse
import os

from babelscope.cli.common import Verb, add_limit_args, add_model_args, add_output_args, start_run

ACTIONS = ("evaluate", "build-graph", "schema", "questions")
DEFAULT_LANGUAGES = "eng_Latn,spa_Latn,tur_Latn"  # the paper's languages


def add_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument(
        "action",
        nargs="?",
        choices=ACTIONS,
        default="evaluate",
        help="evaluate (default): prompt, generate, execute safely and score; build-graph: build "
        "the built-in Kùzu graph into the cache; schema: print the schema text used in prompts; "
        "questions: print the question set's counts per kind and language",
    )
    add_model_args(p)
    p.add_argument(
        "--languages",
        "-l",
        default=DEFAULT_LANGUAGES,
        help="comma-separated codes (eng_Latn, es, tr, German, ...) or `all` "
        f"(default: {DEFAULT_LANGUAGES}; the built-in set has eng, spa, tur, deu, fra)",
    )
    add_limit_args(p, "items per language (spread over the five kinds)")
    p.add_argument(
        "--fewshot",
        type=int,
        nargs="?",
        const=3,
        default=0,
        help="few-shot examples per prompt, taken from other items in the same language "
        "(`--fewshot` alone: 3; default: 0, zero-shot)",
    )
    p.add_argument(
        "--source",
        default="builtin",
        help="questions: builtin (the built-in multilingual set over the built-in graph), or a "
        "neo4j/text2cypher-2024v1 style file (.jsonl/.json/.csv/.parquet) or hf:<dataset>[:<split>]",
    )
    p.add_argument(
        "--question_column",
        default="question",
        help="column holding the question in a public file (e.g. a translated column)",
    )
    p.add_argument(
        "--database",
        default=None,
        help="where queries run: bolt://... or neo4j://... (a Neo4j server, needs "
        "pip install 'babelscope[neo4j]'; user/password from --db_user and NEO4J_PASSWORD) "
        "or a Kùzu file (default: the built-in graph; a public source without --database "
        "gets text metrics only)",
    )
    p.add_argument("--db_user", default="neo4j", help="Neo4j user (default: neo4j)")
    p.add_argument("--db_name", default=None, help="Neo4j database name (default: the server's default)")
    p.add_argument(
        "--graph",
        default=None,
        help="path of the built-in Kùzu graph (default: <cache>/cypher/countries-v1.kuzu, "
        "cache = $BABELSCOPE_CACHE or the user cache folder)",
    )
    p.add_argument("--rebuild", action="store_true", help="with build-graph: rebuild even if the graph exists")
    p.add_argument(
        "--timeout",
        type=float,
        default=5.0,
        help="seconds per query (Kùzu's timeout; the worker is killed 5 s later; default: 5)",
    )
    p.add_argument(
        "--memory_mb",
        type=int,
        default=1536,
        help="memory limit of the query worker process in MiB (RLIMIT_AS; default: 1536)",
    )
    add_output_args(p)


def select_items(items, limit: int | None):
    """The first `limit` items taken round-robin over kinds, so a small run covers every kind."""
    if not limit or limit >= len(items):
        return list(items)
    by_kind: dict[str, list] = {}
    for item in items:
        by_kind.setdefault(item.kind, []).append(item)
    queues = [list(v) for _, v in sorted(by_kind.items())]
    out = []
    while len(out) < limit:
        for q in queues:
            if q and len(out) < limit:
                out.append(q.pop(0))
    return out


def _executor(args, builtin: bool):
    from babelscope.cypher.execute import SafeExecutor
    from babelscope.cypher.graph import ensure_graph

    db = args.database
    if db and "://" in db:
        from babelscope.cypher.public import Neo4jExecutor

        return Neo4jExecutor(db, args.db_user, os.environ.get("NEO4J_PASSWORD"), args.db_name, args.timeout)
    if db:
        return SafeExecutor(db, args.timeout, args.memory_mb)
    if builtin:
        return SafeExecutor(ensure_graph(args.graph), args.timeout, args.memory_mb)
    return None


def _load_items(args):
    """(items, schema text or {item_id: schema}, languages available, builtin?)."""
    if args.source == "builtin":
        from babelscope.cypher.questions import load_questions, question_languages
        from babelscope.cypher.schema import builtin_schema_text

        items = load_questions()
        return items, builtin_schema_text(), question_languages(items), True
    from babelscope.cypher.evaluate import public_items
    from babelscope.cypher.public import load_text2cypher
    from babelscope.languages import resolve

    lang = resolve(args.languages.split(",")[0])
    records = load_text2cypher(args.source, args.question_column)
    items, schemas = public_items(records, lang)
    return items, schemas, [lang], False


def _build_graph(args) -> int:
    from babelscope.cypher.graph import ensure_graph, graph_counts

    path = ensure_graph(args.graph, rebuild=args.rebuild)
    counts = graph_counts(path)
    print(f"babelscope: graph {path}")
    for table, n in counts.items():
        print(f"  {table:<14} {n}")
    return 0


def _questions() -> int:
    from collections import Counter

    from babelscope.cypher.questions import load_questions, question_languages

    items = load_questions()
    print(f"{len(items)} items in {', '.join(question_languages(items))}")
    for kind, n in sorted(Counter(i.kind for i in items).items()):
        print(f"  {kind:<12} {n}")
    return 0


def run(args: argparse.Namespace) -> int:
    if args.action == "build-graph":
        return _build_graph(args)
    if args.action == "schema":
        from babelscope.cypher.schema import builtin_schema_text

        print(builtin_schema_text())
        return 0
    if args.action == "questions":
        return _questions()
    return _evaluate(args)


def _evaluate(args: argparse.Namespace) -> int:
    from rich.console import Console

    from babelscope.cli.common import load_from_args, model_name_of
    from babelscope.cypher.evaluate import evaluate_cypher, markdown_table
    from babelscope.errors import UsageError
    from babelscope.languages import resolve_many
    from babelscope.measure.engine import Engine

    items, schema, available, builtin = _load_items(args)
    languages = resolve_many(args.languages, available=available) if builtin else available
    if args.fewshot < 0:
        raise UsageError("--fewshot must be 0 or more")
    items = select_items(items, args.limit)
    run_folder = start_run(args, "cypher", model_name_of(args))
    executor = _executor(args, builtin)
    done = {lang: run_folder.read_samples("cypher", lang) for lang in languages}  # resume a named run
    loaded = load_from_args(args)
    engine = Engine(loaded, batch_size=args.batch_size)  # greedy generate_until, lm-eval semantics
    try:
        result = evaluate_cypher(
            engine.generate_until,
            items,
            languages,
            executor,
            schema,
            args.fewshot,
            done,
            on_language=lambda lang, recs: run_folder.write_samples("cypher", lang, recs),
        )
    finally:
        if executor is not None:
            executor.close()
    records = result.pop("records")
    result.update(
        verb="cypher",
        model=loaded.name,
        source=args.source,
        languages=languages,
        items=len(items),
        fewshot=args.fewshot,
        generation="greedy (babelscope.measure.engine.Engine.generate_until)",
        database=args.database or "builtin kuzu",
    )
    run_folder.write_results(result)
    table = markdown_table(result["per_language"])
    cons = result.get("consistency") or {}
    run_folder.write_readme(
        f"# cypher\n\nModel {loaded.name}; {len(items)} items x {len(languages)} languages; "
        f"{f'{args.fewshot}-shot' if args.fewshot else 'zero-shot'}; source {args.source}.\n\n{table}\n\n"
        f"Cross-lingual consistency (same successful execution result in every language): "
        f"{cons.get('all_languages')}\n\nPer-item records: samples/cypher.<language>.jsonl. "
        "Execution accuracy compares result rows as multisets (as lists when the gold query orders).\n"
    )
    Console().print(table)
    if cons:
        print(f"consistency (all languages): {cons['all_languages']}")
    print(f"babelscope: wrote {run_folder.path / 'results.json'} ({sum(len(r) for r in records.values())} samples)")
    return 0


VERBS = [Verb("cypher", "measure", "Text2Cypher across languages: exact match, Google-BLEU, ROUGE-L, execution acc.",
              add_arguments, run,
              description="Text2Cypher across languages (Ozsoy & Tai): prompt with the schema and a question, "
                          "generate\ngreedily, extract the query, run it read-only in a memory- and time-limited "
                          "worker on the\nbuilt-in Kùzu graph (countries, languages, scripts, currencies from "
                          "pycountry + CLDR),\nand score per language.\n\nExamples:\n"
                          "  babelscope cypher build-graph\n"
                          "  babelscope cypher --model_args pretrained=default --languages eng_Latn,spa_Latn,"
                          "tur_Latn --limit 30\n"
                          "  babelscope cypher --languages all --fewshot\n"
                          "  babelscope cypher --source test.parquet --database bolt://localhost:7687")]  # fmt: skip
