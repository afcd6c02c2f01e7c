"""``babelscope demo``: the main job on the embedded default model and the built-in corpus."""

from __future__ import annotations

import argparse
import time

from babelscope.cli.common import Verb, add_output_args

DEMO_LANGUAGES = "eng_Latn,fra_Latn,deu_Latn,spa_Latn,rus_Cyrl,zho_Hans,jpn_Jpan,hin_Deva"  # 1,600+ shared items
DEMO_TASKS = "continuation,translation"  # built-in aligned multiple-choice tasks
DEMO_TOKENIZERS = "default,smollm2-135m,tekken"  # fertility side by side
DEMO_FERTILITY_ITEMS = 1000  # aligned texts per language for the fertility table
DEMO_EVAL_LIMIT = 16  # items per task and language; keeps the demo within minutes on 2 cores


def add_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument("--model_args", "-a", default="pretrained=default",
                   help="model to demo (default: pretrained=default, the embedded Gemma 3 270M)")
    p.add_argument("--languages", "-l", default=DEMO_LANGUAGES, help=f"languages (default: {DEMO_LANGUAGES})")
    p.add_argument("--tokenizers", default=DEMO_TOKENIZERS,
                   help=f"tokenizers for the fertility table (default: {DEMO_TOKENIZERS})")
    p.add_argument("--limit", "-L", type=int, default=DEMO_EVAL_LIMIT,
                   help=f"items per task and language for the evaluation (default: {DEMO_EVAL_LIMIT})")
    p.add_argument("--batch_size", "-b", type=int, default=8, help="sequences per forward pass (default: 8)")
    add_output_args(p)


def _card_table(card: dict):
    from rich.table import Table

    table = Table(title=f"model card: {card['name']}", show_header=False)
    for key, value in card.items():
        table.add_row(key, f"{value:,}" if isinstance(value, int) else str(value))
    return table


def run(args: argparse.Namespace) -> int:
    from rich.console import Console

    from babelscope.cli.common import start_run
    from babelscope.data.corpus import load_corpus
    from babelscope.languages import resolve_many
    from babelscope.measure import evaluate
    from babelscope.measure import format_table as format_eval
    from babelscope.measure.fertility import fertility, format_table
    from babelscope.models.load import load_from_args, parse_model_args
    from babelscope.report import write_report
    from babelscope.runs import RunFolder

    console = Console()
    corpus = load_corpus("builtin")
    languages = resolve_many(args.languages, available=corpus.languages)
    name = str(parse_model_args(args.model_args).get("pretrained", "default"))
    demo = start_run(args, "demo", name)
    started = time.time()

    loaded = load_from_args(args.model_args)
    card = loaded.card()
    console.print(_card_table(card))

    fert_run = RunFolder.create(demo.path, name, "fertility", {"tokenizers": args.tokenizers,
                                                               "languages": languages, "source": "builtin"},
                                run_name="fertility", announce=False)
    fert = fertility(args.tokenizers, languages, corpus, limit=DEMO_FERTILITY_ITEMS)
    fert_run.write_results({"verb": "fertility", "source": "builtin", "tokenizers": list(fert), "fertility": fert})
    console.print(format_table(fert))

    eval_run = RunFolder.create(demo.path, name, "eval", {"tasks": DEMO_TASKS, "languages": languages,
                                                          "limit": args.limit, "source": "builtin"},
                                run_name="eval", announce=False)
    result = evaluate(loaded, DEMO_TASKS, languages, limit=args.limit, batch_size=args.batch_size, run=eval_run)
    print(format_eval(result), flush=True)  # plain text: rich would wrap the wide table

    runs = [fert_run.path, eval_run.path]
    summary = {"verb": "demo", "card": card, "languages": languages, "runs": [str(p) for p in runs],
               "seconds": round(time.time() - started, 1)}
    demo.write_results(summary)
    report = write_report(runs, demo.path / "report.html", title=f"babelscope demo: {name}")
    demo.write_readme(f"# babelscope demo\n\nModel: {name}. Languages: {', '.join(languages)}.\n\n"
                      f"Runs: {', '.join(str(p) for p in runs)}. Report: {report}.\n")
    console.print(f"babelscope: demo finished in {summary['seconds']} s; run folder {demo.path}")
    print(f"babelscope: report {report}")
    return 0


VERBS = [Verb("demo", "inspect", "the main job on the embedded model and built-in corpus, with a report",
              add_arguments, run,
              description="Loads the embedded default model (Gemma 3 270M), prints its model card and the "
                          "tokenizer fertility table, evaluates the built-in aligned tasks with cross-lingual "
                          "consistency, and writes an HTML report of its runs.")]
