"""``babelscope eval``: per-language accuracy, cross-lingual consistency, off-target rate."""

from __future__ import annotations

import argparse
import os
from dataclasses import dataclass

from babelscope import distributed as dist
from babelscope.errors import UsageError
from babelscope.languages import REFERENCE, resolve
from babelscope.measure.evaluate import ENGINES, evaluate, format_table
from babelscope.measure.lid import IDENTIFIERS, LID_HELP, LID_MODEL_HELP, identifier
from babelscope.measure.prompts import DEFAULT_TEMPLATE, GREEDY_KWARGS, PromptFormat, check_limit, parse_gen_kwargs
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
                        "(need `datasets` and hub access or --task_data); a task file (.jsonl items or .yaml "
                        "description; see docs/measure.md); or lm_eval:<task or group> (lm-eval's own multiple-choice "
                        "task definitions, its subtasks as languages; a+b joins several)", short="-t")
    source: str = option("builtin", f"{SOURCE_HELP}; read by the built-in tasks")
    limit: float | None = option(None, "at most this many items per language (for quick runs); as in lm-eval, a "
                                 "number below 1 is a fraction of each task's items (0.1: the first 10%%, the same "
                                 "aligned items in every language)", short="-L")
    engine: str = option("babelscope", "scoring engine: babelscope (shared-context KV cache, logits only where "
                         "scored) or lm_eval (lm-eval's HFLM on the same live model)", choices=ENGINES)
    reference: str = option(REFERENCE, "language the consistency columns compare against (without it among "
                            "--languages, only the language x language matrix is written)")
    resume: str | None = option(None, "continue an interrupted run in this folder (items with records are not "
                                "scored again); giving the same --run_name does the same", metavar="RUN")
    task_data: str | None = option(None, "folder with local copies of public benchmarks (<task>/<config>.jsonl in "
                                   "the public schema; for lm_eval: tasks <dataset_path>/<dataset_name>/<split>.jsonl) "
                                   "used instead of the hub", metavar="DIR")
    num_fewshot: int = option(0, "few-shot examples per prompt, as lm-eval spells it; babelscope's tasks are "
                              "zero-shot, so only 0 is accepted", minimum=0, maximum=0)
    log_samples: bool = option(False, "accepted as in lm-eval; babelscope always writes "
                               "samples/<task>.<language>.jsonl")
    write_lm_eval_results: bool = option(False, "also write lm-eval's results_<time>.json (results, groups, "
                                         "configs, versions, n-shot, ...) beside results.json; `babelscope "
                                         "report` reads it, and lm-eval's own output folders")
    apply_chat_template: bool | str = option(False, "wrap every prompt in the tokenizer's chat template as one user "
                                             "turn with the generation prompt, as lm-eval does (choices lose the "
                                             "task's target delimiter); a NAME picks one of several templates",
                                             cli=False)
    system_instruction: str | None = option(None, "text put before every prompt, as lm-eval does: the system turn "
                                            "under --apply_chat_template, else prepended as is", metavar="TEXT")
    fewshot_as_multiturn: bool = option(False, "as in lm-eval (needs --apply_chat_template); the prompts are "
                                        "zero-shot, so there are no few-shot turns and prompts stay the same")
    gen_kwargs: str | dict = option("", "generation settings of generation tasks as lm-eval's key=value list: "
                                    f"{GREEDY_KWARGS} (decoding is greedy), e.g. 'until=[\"\\n\"],max_gen_toks=32'",
                                    metavar="KEY=VALUE,...")

    @classmethod
    def add_to_parser(cls, parser: argparse.ArgumentParser) -> None:
        super().add_to_parser(parser)
        help_text = cls.__dataclass_fields__["apply_chat_template"].metadata["help"]
        parser.add_argument("--apply_chat_template", nargs="?", const=True, default=argparse.SUPPRESS,
                            metavar="NAME", help=help_text)

    def validate(self) -> None:
        super().validate()
        self.limit = check_limit(self.limit)
        self.prompt_format()  # bad --gen_kwargs: one line before anything loads
        if self.fewshot_as_multiturn and not self.apply_chat_template:
            raise UsageError("--fewshot_as_multiturn needs --apply_chat_template (as in lm-eval).")

    def prompt_format(self) -> PromptFormat:
        template = self.apply_chat_template
        return PromptFormat(chat_template=DEFAULT_TEMPLATE if template is True else template or None,
                            system_instruction=self.system_instruction or None,
                            fewshot_as_multiturn=self.fewshot_as_multiturn,
                            gen_kwargs=parse_gen_kwargs(self.gen_kwargs))
    lid: str | None = option(None, LID_HELP, metavar="|".join(IDENTIFIERS))
    lid_model: str | None = option(None, LID_MODEL_HELP, metavar="PATH")


def run(config: EvalConfig):
    if config.task_data:
        os.environ[TASK_DATA_ENV] = config.task_data
    tasks = get_tasks(config.tasks)  # unknown task: one-line error before anything loads
    lid = identifier(config.lid, config.lid_model)
    languages = config.language_list()
    if config.languages == "all":  # every language some task has (lm_eval:belebele's, not all of FLORES-200)
        have = [t.available_languages(config.source) for t in tasks]
        languages = languages if None in have else [g for g in languages if any(g in h for h in have)]
    if config.reference != REFERENCE and resolve(config.reference) not in languages:  # the default may be absent
        raise UsageError(f"--reference {config.reference} is not among --languages ({', '.join(languages)}); "
                         "add it there or pick one of them.")
    for task in tasks:  # languages the task cannot run in fail here, before the model loads
        task.load(languages, source=config.source, limit=1)
    run = reopen_run(config.resume, config, "eval") if config.resume else start_run(config, "eval")
    run.languages = languages
    seed_everything(config.seed)
    loaded = config.load()
    prompt = config.prompt_format()
    prompt.apply(loaded.tokenizer, [])  # a chat template the tokenizer lacks: one line, now
    bind_model(run, loaded, config.model_spec().get("revision"))
    result = evaluate(loaded, tasks, languages, limit=config.limit, source=config.source,
                      batch_size=config.batch_size, run=run, engine=config.engine, reference=config.reference,
                      prompt=prompt, lid=lid)
    if config.write_lm_eval_results and dist.is_main():
        from babelscope.measure.lm_eval_results import write_lm_eval_results

        write_lm_eval_results(run, tasks, loaded)
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
