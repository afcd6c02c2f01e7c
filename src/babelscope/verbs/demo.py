"""``babelscope demo``: the main job on the embedded default model and the built-in corpus.

It runs the ``fertility`` and ``eval`` verbs (their ``run`` with a config object) into sub-folders
of its own run folder and writes an HTML report of both::

    import babelscope as bs
    r = bs.demo(languages="eng_Latn,fra_Latn", limit=4)
    r.results["runs"]   # the fertility and eval run folders
"""

from __future__ import annotations

import time
from dataclasses import dataclass

from rich.table import Table

from babelscope.data.corpus import load_corpus
from babelscope.languages import DEFAULT_LANGUAGES, resolve_many
from babelscope.report import write_report
from babelscope.verbs import VerbSpec
from babelscope.verbs import eval as eval_verb
from babelscope.verbs import fertility as fertility_verb
from babelscope.verbs.common import bind_model, finish, start_run
from babelscope.verbs.config import LanguageOptions, ModelOptions, OutputOptions, option
from babelscope.verbs.result import Result
from babelscope.verbs.text import as_text

DEMO_TASKS = "continuation,translation"  # built-in aligned multiple-choice tasks
DEMO_TOKENIZERS = "default,smollm2-135m,tekken"  # fertility side by side
DEMO_FERTILITY_ITEMS = 1000  # aligned texts per language for the fertility table
DEMO_EVAL_LIMIT = 16  # items per task and language; keeps the demo within minutes on 2 cores


@dataclass
class DemoConfig(OutputOptions, LanguageOptions, ModelOptions):
    languages: str = option(DEFAULT_LANGUAGES, "languages of the fertility table and the evaluation (1,600+ "
                            "shared items in the default set)", short="-l")
    tokenizers: str = option(DEMO_TOKENIZERS, "tokenizers for the fertility table")
    limit: int = option(DEMO_EVAL_LIMIT, "items per task and language for the evaluation", short="-L", minimum=1)


def card_table(card: dict) -> Table:
    table = Table(title=f"model card: {card['name']}", show_header=False)
    for key, value in card.items():
        table.add_row(key, f"{value:,}" if isinstance(value, int) else str(value))
    return table


def _fertility(config: DemoConfig, languages: list[str], root: str) -> Result:
    sub = fertility_verb.FertilityConfig(
        model=config.model, model_args=config.model_args, tokenizers=config.tokenizers,
        languages=",".join(languages), source="builtin", limit=DEMO_FERTILITY_ITEMS, output_path=root,
        run_name="fertility", seed=config.seed)
    sub.validate()
    return fertility_verb.run(sub)


def _eval(config: DemoConfig, languages: list[str], root: str) -> Result:
    sub = eval_verb.EvalConfig(
        model=config.model, model_args=config.model_args, device=config.device, batch_size=config.batch_size,
        tasks=DEMO_TASKS, languages=",".join(languages), limit=config.limit, source="builtin", output_path=root,
        run_name="eval", seed=config.seed)
    sub.validate()
    return eval_verb.run(sub)


def run(config: DemoConfig) -> Result:
    languages = resolve_many(config.languages, available=load_corpus("builtin").languages)
    demo = start_run(config, "demo")
    demo.languages = languages
    started = time.time()
    loaded = config.load()
    card = loaded.card()
    bind_model(demo, loaded, config.model_spec().get("revision"))
    del loaded  # the eval verb loads the model again
    print(as_text(card_table(card)), flush=True)
    fert = _fertility(config, languages, str(demo.path))
    print(fert.summary, flush=True)
    evaluation = _eval(config, languages, str(demo.path))
    print(evaluation.summary, flush=True)  # plain text: rich would wrap the wide table
    runs = [str(fert.path), str(evaluation.path)]
    demo.write_results({"card": card, "runs": runs})
    report = write_report(runs, demo.path / "report.html", title=f"babelscope demo: {config.model_name}")
    demo.write_readme(f"# babelscope demo\n\nModel: {config.model_name}. Languages: {', '.join(languages)}.\n\n"
                      f"Runs: {', '.join(runs)}. Report: {report}.\n")
    summary = (f"babelscope: demo finished in {time.time() - started:.1f} s; run folder {demo.path}\n"
               f"babelscope: report {report}")
    return finish("demo", demo, summary, report=report, fertility=fert, eval=evaluation)


SPEC = VerbSpec(
    "demo", "inspect", "the main job on the embedded model and built-in corpus, with a report", DemoConfig, run,
    description="Loads the embedded default model (Gemma 3 270M), prints its model card and the tokenizer "
    "fertility table, evaluates the built-in aligned tasks with cross-lingual consistency, and writes an HTML "
    "report of its runs (the fertility and eval runs are sub-folders of the demo's run folder).",
)
