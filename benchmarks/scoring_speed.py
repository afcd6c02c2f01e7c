"""Multiple-choice scoring speed of babelscope's engine against a bare full forward, on any device.

The baseline does what lm-eval's ``HFLM`` does per request: the whole ``context + continuation``
row through the model, full logits, ``log_softmax`` over the vocabulary, sum of the continuation
tokens' log-probs; rows sorted by length and right-padded in batches of ``--batch_size``. The
items are synthetic token ids (seeded) with the lengths of short-context multiple choice: a
context of 8-48 tokens and 4 choices of 4-82 tokens each. ``benchmarks/mc_eval.py`` compares with
lm-eval itself; this script needs neither lm-eval nor a tokenizer for the model, so it also runs
on a machine that has only torch and transformers (e.g. a GPU box), with random weights::

    python benchmarks/scoring_speed.py                                    # default model, CPU
    python benchmarks/scoring_speed.py --random_config config.json --device cuda --items 512
"""

from __future__ import annotations

import argparse
import os
import random
import sys
import time

os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TRANSFORMERS_VERBOSITY", "error")

DEFAULT_ITEMS = 64  # multiple-choice items (4 choices each)


def main() -> int:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--model_args", default="pretrained=default,dtype=float32")
    p.add_argument("--random_config", default=None, help="a config.json: random weights of that architecture")
    p.add_argument("--device", default="cpu")
    p.add_argument("--items", type=int, default=DEFAULT_ITEMS)
    p.add_argument("--batch_size", type=int, default=8, help="contexts per pass (ours), rows per pass (baseline)")
    p.add_argument("--vocab_block", type=int, default=None, help="override engine.VOCAB_BLOCK")
    p.add_argument("--pad_slack", type=float, default=None, help="override engine.PAD_SLACK")
    args = p.parse_args()

    import torch

    import babelscope.measure.engine as engine_mod

    loaded = _load(args)
    if args.vocab_block:
        engine_mod.VOCAB_BLOCK = engine_mod.ACCELERATOR_VOCAB_BLOCK = args.vocab_block
    if args.pad_slack:
        engine_mod.PAD_SLACK = engine_mod.ACCELERATOR_PAD_SLACK = args.pad_slack
    engine = engine_mod.Engine(loaded, batch_size=args.batch_size, progress=False)
    vocab = loaded.model.get_output_embeddings().weight.shape[0]
    pairs = _pairs(args.items, vocab)
    n_tokens = sum(len(c) + len(t) for c, t in pairs)
    cpu = engine.on_cpu
    block = engine_mod.VOCAB_BLOCK if cpu else engine_mod.ACCELERATOR_VOCAB_BLOCK
    slack = engine_mod.PAD_SLACK if cpu else engine_mod.ACCELERATOR_PAD_SLACK
    print(
        f"{args.items} items, {len(pairs)} choices, {n_tokens} tokens; {loaded.name} on {engine.device}; "
        f"vocabulary block {block or vocab}, padding slack {slack}",
        flush=True,
    )
    engine.score_tokens(pairs[:8])  # warm-up
    _baseline(loaded.model, pairs[:8], args.batch_size)
    seconds = {"babelscope": 0.0, "baseline": 0.0}
    for name in ["babelscope", "baseline", "baseline", "babelscope"]:  # A B B A: linear drift cancels
        _sync(torch)
        start = time.perf_counter()
        out = engine.score_tokens(pairs) if name == "babelscope" else _baseline(loaded.model, pairs, args.batch_size)
        _sync(torch)
        seconds[name] += (time.perf_counter() - start) / 2
        if name == "babelscope":
            ours = out
        else:
            ref = out
    diff = max(abs(a[0] - b[0]) for a, b in zip(ours, ref, strict=True))
    same_greedy = all(a[1] == b[1] for a, b in zip(ours, ref, strict=True))
    print(f"babelscope: {seconds['babelscope']:.3f} s per pass; full-forward baseline: {seconds['baseline']:.3f} s")
    print(f"ratio (babelscope / baseline speed): {seconds['baseline'] / seconds['babelscope']:.2f}x")
    print(f"largest per-choice log-likelihood difference: {diff:.2e}; greedy flags equal: {same_greedy}")
    return 0


def _load(args):
    if not args.random_config:
        from babelscope.models.load import load_from_args

        return load_from_args(args.model_args, device=args.device)
    import torch
    from transformers import AutoConfig, AutoModelForCausalLM

    from babelscope.models.load import LoadedModel
    from babelscope.testing import train_tiny_tokenizer

    config = AutoConfig.from_pretrained(args.random_config)
    torch.manual_seed(0)
    model = AutoModelForCausalLM.from_config(config, dtype=torch.float32).to(args.device).eval()
    tokenizer = train_tiny_tokenizer()  # only its BOS/pad ids are used: the items are token ids
    return LoadedModel(model, tokenizer, f"random {config.model_type}", source="random")


def _pairs(n_items: int, vocab: int) -> list[tuple[list[int], list[int]]]:
    rng = random.Random(0)
    out = []
    for _ in range(n_items):
        ctx = [rng.randrange(4, vocab) for _ in range(rng.randint(8, 48))]
        out += [(ctx, [rng.randrange(4, vocab) for _ in range(rng.randint(4, 82))]) for _ in range(4)]
    return out


def _baseline(model, pairs, batch_size: int) -> list[tuple[float, bool]]:
    """HFLM's way: whole rows, full logits and log_softmax, longest rows first."""
    import torch

    order = sorted(range(len(pairs)), key=lambda i: -(len(pairs[i][0]) + len(pairs[i][1])))
    results: list = [None] * len(pairs)
    device = next(model.parameters()).device
    with torch.inference_mode():
        for b in range(0, len(order), batch_size):
            idx = order[b : b + batch_size]
            rows = [(pairs[i][0] + pairs[i][1])[:-1] for i in idx]
            width = max(len(r) for r in rows)
            ids = torch.zeros((len(rows), width), dtype=torch.long)  # [B, T] right-padded
            for r, row in enumerate(rows):
                ids[r, : len(row)] = torch.tensor(row)
            logp = torch.log_softmax(model(ids.to(device)).logits.float(), -1)  # [B, T, V]
            for r, i in enumerate(idx):
                ctx, cont = pairs[i]
                span = logp[r, len(ctx) - 1 : len(ctx) - 1 + len(cont)]  # [n_cont, V]
                target = torch.tensor(cont, device=device)
                lp = float(span.gather(1, target[:, None]).sum())
                results[i] = (lp, bool((span.argmax(-1) == target).all()))
    return results


def _sync(torch) -> None:
    if torch.cuda.is_available():
        torch.cuda.synchronize()


if __name__ == "__main__":
    sys.exit(main())
