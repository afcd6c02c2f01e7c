"""``babelscope eval`` and ``babelscope rescore``: per-language accuracy, consistency, off-target rate."""

from __future__ import annotations

import argparse
import sys

from babelscope.cli.common import (
    Verb,
    add_language_args,
    add_limit_args,
    add_model_args,
    add_output_args,
    add_source_args,
    config_of,
)

EVAL_LANGUAGES = "eng_Latn,fra_Latn,deu_Latn,spa_Latn,rus_Cyrl,zho_Hans,jpn_Jpan,hin_Deva"  # --languages default
EVAL_TASKS = "continuation,translation"  # --tasks default


def add_eval_arguments(p: argparse.ArgumentParser) -> None:
    add_model_args(p)
    p.add_argument(
        "--tasks",
        "-t",
        default=EVAL_TASKS,
        help="comma-separated tasks: built-in continuation, translation, bpc (aligned, from the "
        "built-in corpus); public belebele, xnli, xcopa, xstorycloze, mgsm, xquad, flores, "
        "mubench (need `datasets` and hub access or --task_data); or a task file "
        f"(.jsonl items or .yaml description; see docs/measure.md) (default: {EVAL_TASKS})",
    )
    add_language_args(p, default=EVAL_LANGUAGES)
    add_source_args(p)
    add_limit_args(p)
    p.add_argument(
        "--engine",
        default="babelscope",
        choices=["babelscope", "lm_eval"],
        help="scoring engine: babelscope (shared-context KV cache, logits only where scored) or "
        "lm_eval (lm-eval's HFLM on the same live model); tables are babelscope's either way",
    )
    p.add_argument(
        "--reference", default="eng_Latn", help="language the consistency columns compare against (default: eng_Latn)"
    )
    p.add_argument(
        "--resume",
        default=None,
        metavar="RUN",
        help="continue an interrupted run in this folder (items with records are not scored "
        "again); giving the same --run_name does the same",
    )
    p.add_argument(
        "--task_data",
        default=None,
        metavar="DIR",
        help="folder with local copies of public benchmarks (<task>/<config>.jsonl in the public "
        "schema) used instead of the hub",
    )
    add_output_args(p)


def _run_folder(args, model_name: str):
    """Rank 0 creates (or reopens) the run folder; every rank gets its path."""
    from pathlib import Path

    from babelscope import distributed as dist
    from babelscope.runs import RunFolder

    if args.resume:
        return RunFolder.open(args.resume)
    if dist.world_size() > 1:
        path = None
        if dist.is_main():
            from babelscope.cli.common import start_run

            path = str(start_run(args, "eval", model_name).path)
        return RunFolder(Path(dist.gather_objects([path])[0]))
    from babelscope.cli.common import start_run

    return start_run(args, "eval", model_name)


def run_eval(args: argparse.Namespace) -> int:
    from babelscope import distributed as dist
    from babelscope.cli.common import load_from_args, model_name_of, seed_everything
    from babelscope.languages import resolve_many
    from babelscope.measure.evaluate import evaluate, format_table
    from babelscope.measure.tasks import get_tasks

    if args.task_data:
        import os

        os.environ["BABELSCOPE_TASK_DATA"] = args.task_data
    tasks = get_tasks(args.tasks)  # unknown task: one-line error before anything loads
    languages = resolve_many(args.languages)
    for task in tasks:  # languages the task cannot run in fail here, before the model loads
        task.load(languages, source=args.source, limit=1)
    run = _run_folder(args, model_name_of(args))
    if args.resume and dist.is_main():
        print(f"babelscope: resuming run folder {run.path}", file=sys.stderr)
        run.write_config({"verb": "eval", **config_of(args)})
    seed_everything(args.seed)
    loaded = load_from_args(args)
    result = evaluate(
        loaded,
        tasks,
        languages,
        limit=args.limit,
        source=args.source,
        batch_size=args.batch_size,
        run=run,
        engine=args.engine,
        reference=args.reference,
    )
    if dist.is_main():
        print(format_table(result))
        print(
            f"babelscope: wrote {run.path / 'results.json'} and samples/; recompute with "
            f"`babelscope rescore {run.path}`"
        )
    return 0


def add_rescore_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument("run_folder", metavar="RUN", help="folder of a finished `babelscope eval` run")


def run_rescore(args: argparse.Namespace) -> int:
    from babelscope.measure.evaluate import format_table, rescore
    from babelscope.runs import RunFolder

    result, same = rescore(args.run_folder)
    RunFolder.open(args.run_folder).write_json("rescore.json", result.results)
    print(format_table(result))
    if same:
        print(f"babelscope: rescored from samples/: identical to {args.run_folder}/results.json")
        return 0
    print(
        f"babelscope: rescored numbers DIFFER from {args.run_folder}/results.json (were the samples edited?); "
        "see rescore.json",
        file=sys.stderr,
    )
    return 1


VERBS = [
    Verb(
        "eval",
        "measure",
        "per-language accuracy, consistency across languages, off-target rate",
        add_eval_arguments,
        run_eval,
        description="Evaluates tasks in several languages on aligned items. Writes results.json (per "
        "language acc/acc_norm/acc_bytes or generation metrics, macro and item-weighted means, "
        "consistency matrices vs the reference language, off-target rate, fertility-vs-accuracy "
        "correlation) and samples/<task>.<language>.jsonl with per-choice log-probs. Example: "
        "babelscope eval --model_args pretrained=default --tasks continuation,translation "
        "--languages eng_Latn,fra_Latn,deu_Latn --limit 50",
    ),
    Verb(
        "rescore",
        "measure",
        "recompute every metric of an eval run from its samples (no model)",
        add_rescore_arguments,
        run_rescore,
        description="Reads samples/*.jsonl of a `babelscope eval` run, recomputes every metric, writes "
        "rescore.json and says whether the numbers equal results.json (exit 1 when not).",
    ),
]
