"""``babelscope finetune``: train only chosen layers (PLAST) on parallel / question-translation /
monolingual / Text2Cypher data (Just Go Parallel), optionally revert layers, and measure bits
per character before and after on held-out items of the target and other languages."""

from __future__ import annotations

import argparse

from babelscope.cli.common import Verb, add_model_args, add_output_args

DEFAULT_DATA = ["parallel:builtin"]  # Just Go Parallel pairs from the built-in corpus (train split)
DEFAULT_EVAL_TASKS = "bpc"  # held-out bits per character (forgetting shows in the other languages)
DEFAULT_EVAL_LIMIT = 16  # held-out items per language for before/after
DEFAULT_TRAIN_BATCH = 2  # sequences per micro-batch: 50 steps stay within minutes on 2 CPU cores
DEFAULT_MAX_LENGTH = 64  # tokens per packed training sequence
OTHER_LANGUAGES = ("deu_Latn", "spa_Latn", "rus_Cyrl", "zho_Hans", "ita_Latn", "por_Latn", "jpn_Jpan", "arb_Arab")
MIN_OTHERS = 3  # languages outside training that the before/after table always includes


def add_arguments(p: argparse.ArgumentParser) -> None:
    from babelscope.data.parallel import DEFAULT_BLOCK_SIZE, DEFAULT_PIVOT, KINDS, PLACEMENTS
    from babelscope.improve.layer_finetune import DEFAULT_LORA_ALPHA, DEFAULT_LORA_R, METHODS
    from babelscope.improve.train_loop import TrainConfig

    add_model_args(p)
    d = TrainConfig()
    p.add_argument(
        "--languages",
        "-l",
        required=True,
        help="training languages, e.g. eng_Latn,fra_Latn; those other than --pivot are the targets",
    )
    p.add_argument(
        "--pivot", default=DEFAULT_PIVOT, help=f"language every target is paired with (default: {DEFAULT_PIVOT})"
    )
    g = p.add_argument_group("data")
    g.add_argument(
        "--data",
        nargs="+",
        default=DEFAULT_DATA,
        help=f"one or more <kind>:<source>, kind in {', '.join(KINDS)}; source builtin (train split "
        "only), a corpus file (JSONL/CSV/TSV), or hf:<dataset>; cypher:builtin for Text2Cypher "
        "pairs (default: parallel:builtin)",
    )
    g.add_argument(
        "--parallel_location",
        choices=PLACEMENTS,
        default="end",
        help="where parallel documents sit in the schedule: end (Parallel Last, the paper's best), "
        "start, or interleave (default: end)",
    )
    g.add_argument(
        "--block_size",
        type=int,
        default=DEFAULT_BLOCK_SIZE,
        help=f"parallel pairs per direction block before the order flips (default: {DEFAULT_BLOCK_SIZE})",
    )
    g.add_argument(
        "--max_length",
        type=int,
        default=DEFAULT_MAX_LENGTH,
        help=f"tokens per packed training sequence (default: {DEFAULT_MAX_LENGTH})",
    )
    g = p.add_argument_group("layers and method")
    g.add_argument(
        "--layers",
        default="auto",
        help="layers to train: auto (recommended.layers of a `babelscope layers` run: --layers_json, "
        "else the newest layers run of this model under --output_path, else a quick LAPE layer "
        "selection), a spec like 0-3,16-17, or all (default: auto)",
    )
    g.add_argument("--layers_json", default=None, help="a `babelscope layers` run folder or its layers.json")
    g.add_argument(
        "--method",
        choices=METHODS,
        default="full",
        help="full: the chosen layers are trainable, all else frozen; lora: PEFT LoRA adapters on "
        "the chosen layers only (default: full)",
    )
    g.add_argument("--lora_r", type=int, default=DEFAULT_LORA_R, help=f"LoRA rank (default: {DEFAULT_LORA_R})")
    g.add_argument(
        "--lora_alpha", type=int, default=DEFAULT_LORA_ALPHA, help=f"LoRA alpha (default: {DEFAULT_LORA_ALPHA})"
    )
    g.add_argument(
        "--revert_layers",
        default=None,
        help="after training, set these layers (spec like 4-13) back to the base weights",
    )
    g = p.add_argument_group("optimisation")
    g.add_argument(
        "--train_batch_size",
        type=int,
        default=DEFAULT_TRAIN_BATCH,
        help=f"sequences per training micro-batch (--batch_size is for evaluation) (default: {DEFAULT_TRAIN_BATCH})",
    )
    g.add_argument("--max_steps", type=int, default=d.max_steps, help=f"optimizer steps (default: {d.max_steps})")
    g.add_argument(
        "--grad_accum",
        type=int,
        default=d.grad_accum,
        help=f"micro-batches per optimizer step (default: {d.grad_accum})",
    )
    g.add_argument("--lr", type=float, default=d.lr, help=f"peak AdamW learning rate (default: {d.lr})")
    g.add_argument(
        "--warmup",
        type=float,
        default=d.warmup,
        help=f"share of steps with linear warmup, then linear decay (default: {d.warmup})",
    )
    g.add_argument("--weight_decay", type=float, default=d.weight_decay, help="AdamW weight decay (default: 0)")
    g.add_argument(
        "--max_grad_norm",
        type=float,
        default=d.max_grad_norm,
        help=f"gradient clipping norm, 0 = off (default: {d.max_grad_norm})",
    )
    g.add_argument(
        "--checkpoint_every",
        type=int,
        default=d.checkpoint_every,
        help="steps between checkpoints in <run>/checkpoints (0: only at the end); re-running with "
        "the same --run_name resumes exactly from the last one",
    )
    g = p.add_argument_group("before/after evaluation")
    g.add_argument(
        "--eval_languages",
        default=None,
        help=f"languages measured before and after (default: the training languages plus "
        f"{MIN_OTHERS} others from {', '.join(OTHER_LANGUAGES)})",
    )
    g.add_argument(
        "--eval_source",
        default="builtin",
        help="aligned corpus whose held-out split is measured (and never trained on): builtin, a corpus file, "
        "or hf:<dataset> (default: builtin)",
    )
    g.add_argument(
        "--eval_tasks",
        default=DEFAULT_EVAL_TASKS,
        help=f"measure tasks run before and after, comma-separated (default: {DEFAULT_EVAL_TASKS})",
    )
    g.add_argument(
        "--eval_limit",
        type=int,
        default=DEFAULT_EVAL_LIMIT,
        help=f"held-out items per language (default: {DEFAULT_EVAL_LIMIT})",
    )
    g.add_argument("--no_save", action="store_true", help="do not write the trained model / adapter")
    add_output_args(p)


def run(args: argparse.Namespace) -> int:
    from babelscope.improve.finetune_run import finetune_from_args

    finetune_from_args(args)
    return 0


VERBS = [
    Verb(
        name="finetune",
        group="improve",
        help="train only chosen (language-specific) layers on parallel data; bpc before/after",
        add_arguments=add_arguments,
        run=run,
        description="PLAST-style layer-targeted finetuning with Just Go Parallel data formats. Example: "
        "babelscope finetune --layers auto --data parallel:builtin --languages eng_Latn,fra_Latn "
        "--max_steps 50",
    )
]
