"""``babelscope eval``: per-language accuracy, cross-lingual consistency, off-target rate."""

from __future__ import annotations

import os
from dataclasses import dataclass

from babelscope import distributed as dist
from babelscope.errors import UsageError
from babelscope.languages import REFERENCE, resolve
from babelscope.measure.evaluate import ENGINES, evaluate, format_table
from babelscope.measure.tasks import get_tasks
from babelscope.measure.tasks.public import TASK_DATA_ENV
from babelscope.verbs import VerbSpec
from babelscope.verbs.common import bind_model, finish, reopen_run, seed_everything, start_run
from babelscope.verbs.config import SOURCE_HELP, LanguageOptions, ModelOptions, OutputOptions, option

TASKS = "continuation,translation"


@dataclass
class EvalConfig(OutputOptions, LanguageOptions, ModelOptions):
    AUTO_BATCH_SIZE = True  # every batch goes through the engine, which sizes "auto"
    tasks: str = option(TASKS, "comma-separated tasks: built-in continuation, translation, bpc (aligned, from the "
                        "built-in corpus); public belebele, xnli, xcopa, xstorycloze, mgsm, xquad, flores, mubench "
                        "(need `datasets` and hub access or --task_data); or a task file (.jsonl items or .yaml "
                        "description; see docs/measure.md)", short="-t")
    source: str = option("builtin", f"{SOURCE_HELP}; read by the built-in tasks")
    limit: int | None = option(None, "at most this many items per language (for quick runs)", short="-L",
                               minimum=1)
    engine: str = option("babelscope", "scoring engine: babelscope (shared-context KV cache, logits only where "
                         "scored) or lm_eval (lm-eval's HFLM on the same live model)", choices=ENGINES)
    reference: str = option(REFERENCE, "language the consistency columns compare against")
    resume: str | None = option(None, "continue an interrupted run in this folder (items with records are not "
                                "scored again); giving the same --run_name does the same", metavar="RUN")
    task_data: str | None = option(None, "folder with local copies of public benchmarks (<task>/<config>.jsonl in "
                                   "the public schema) used instead of the hub", metavar="DIR")
    num_fewshot: int = option(0, "few-shot examples per prompt, as lm-eval spells it; babelscope's tasks are "
                              "zero-shot, so only 0 is accepted", minimum=0, maximum=0)
    log_samples: bool = option(False, "accepted as in lm-eval; babelscope always writes "
                               "samples/<task>.<language>.jsonl")


def run(config: EvalConfig):
    if config.task_data:
        os.environ[TASK_DATA_ENV] = config.task_data
    tasks = get_tasks(config.tasks)  # unknown task: one-line error before anything loads
    languages = config.language_list()
    if resolve(config.reference) not in languages:
        raise UsageError(f"--reference {config.reference} is not among --languages ({', '.join(languages)}); "
                         "add it there or pick one of them.")
    for task in tasks:  # languages the task cannot run in fail here, before the model loads
        task.load(languages, source=config.source, limit=1)
    run = reopen_run(config.resume, config, "eval") if config.resume else start_run(config, "eval")
    run.languages = languages
    seed_everything(config.seed)
    loaded = config.load()
    bind_model(run, loaded, config.model_spec().get("revision"))
    result = evaluate(loaded, tasks, languages, limit=config.limit, source=config.source,
                      batch_size=config.batch_size, run=run, engine=config.engine, reference=config.reference)
    summary = ""
    if dist.is_main():
        summary = (f"{format_table(result)}\nbabelscope: wrote {run.path / 'results.json'} and samples/; "
                   f"recompute with `babelscope rescore {run.path}`")
    return finish("eval", run, summary, evaluation=result)


def rows(results: dict) -> list[dict]:
    """task, language, metric, value."""
    return [{"task": t, "language": lang, "metric": k, "value": v}
            for t, per in results["tasks"].items() for lang, m in per.items()
            for k, v in m.items() if isinstance(v, (int, float)) and not isinstance(v, bool)]


SPEC = VerbSpec(
    "eval", "measure", "per-language accuracy, consistency across languages, off-target rate", EvalConfig, run,
    description="Evaluates tasks in several languages on aligned items. Writes results.json (per language "
    "acc/acc_norm/acc_bytes or generation metrics, macro and item-weighted means, consistency matrices vs the "
    "reference language, off-target rate, fertility-vs-accuracy correlation) and samples/<task>.<language>.jsonl "
    "with per-choice log-probs. Example: babelscope eval --model_args pretrained=default --tasks "
    "continuation,translation --languages eng_Latn,fra_Latn,deu_Latn --limit 50",
)
