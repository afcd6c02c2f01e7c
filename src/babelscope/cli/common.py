"""Shared CLI pieces: the ``Verb`` record, shared flags (spelled as lm-eval spells them), and
``--config`` precedence (CLI > YAML > defaults)."""

from __future__ import annotations

import argparse
from collections.abc import Callable
from dataclasses import dataclass


@dataclass(frozen=True)
class Verb:
    name: str
    group: str  # one of GROUPS
    help: str  # one line for the verb list
    add_arguments: Callable[[argparse.ArgumentParser], None]
    run: Callable[[argparse.Namespace], int]
    description: str = ""  # longer text for `babelscope VERB --help`


def add_model_args(p: argparse.ArgumentParser, default_model: str = "default") -> None:
    g = p.add_argument_group("model")
    g.add_argument("--model_args", "-a", default=f"pretrained={default_model}",
                   help="comma-separated key=value, as in lm-eval: pretrained=default|smollm2-135m|"
                        "<folder>|<file.gguf>|<hub id>, dtype=float32|bfloat16|float16, revision=..., "
                        "device=cpu|cuda, parallelize=True (device_map=auto), trust_remote_code=True, "
                        f"allow_pickle=True (default: pretrained={default_model})")
    g.add_argument("--device", default=None, help="cpu, cuda, cuda:0 or mps (default: cpu)")
    g.add_argument("--batch_size", "-b", type=int, default=8, help="sequences per forward pass (default: 8)")


def add_language_args(p: argparse.ArgumentParser, default: str | None = None, help_extra: str = "") -> None:
    p.add_argument("--languages", "-l", default=default, required=default is None,
                   help="comma-separated codes (FLORES-200 like deu_Latn, or de / deu / German), or `all`"
                        + (f" (default: {default})" if default else "") + help_extra)


def add_source_args(p: argparse.ArgumentParser) -> None:
    p.add_argument("--source", default="builtin",
                   help="text source: builtin (the built-in aligned corpus), a JSONL/CSV/TSV file in wide "
                        "(one column per language) or long (item_id, language, text) form, or "
                        "hf:<dataset>[:<config>][@<split>] in FLORES layout (default: builtin)")


def add_output_args(p: argparse.ArgumentParser) -> None:
    g = p.add_argument_group("output")
    g.add_argument("--output_path", "-o", default="runs",
                   help="root of run folders; the run goes to <output_path>/<model>/<verb>-<UTC time>/ "
                        "(default: runs)")
    g.add_argument("--run_name", default=None, help="fixed run folder name instead of <verb>-<UTC time>")
    g.add_argument("--seed", type=int, default=1234, help="random seed (default: 1234)")


def add_limit_args(p: argparse.ArgumentParser, what: str = "items per language") -> None:
    p.add_argument("--limit", "-L", type=int, default=None, help=f"at most this many {what} (for quick runs)")


INTERNAL_KEYS = ("func", "verb", "config", "verbose")


def config_of(args: argparse.Namespace) -> dict:
    """The resolved flags as a dict whose keys equal the long flags (re-runnable with --config)."""
    return {k: v for k, v in vars(args).items() if k not in INTERNAL_KEYS}


def start_run(args: argparse.Namespace, verb: str, model_name: str):
    """Create and announce the run folder, writing the resolved config.yaml."""
    from babelscope.runs import RunFolder

    return RunFolder.create(args.output_path, model_name, verb, config_of(args), run_name=args.run_name)


def model_name_of(args: argparse.Namespace) -> str:
    from babelscope.models.load import parse_model_args

    return str(parse_model_args(args.model_args).get("pretrained", "default"))


def load_from_args(args: argparse.Namespace):
    """Load the model named by ``--model_args`` (and ``--device``)."""
    from babelscope.models.load import load_from_args as _load

    return _load(args.model_args, device=getattr(args, "device", None))


def seed_everything(seed: int) -> None:
    import random

    import numpy as np
    import torch

    random.seed(seed)
    np.random.seed(seed)
    torch.manual_seed(seed)
