"""Multiple-choice scoring speed: babelscope's engine vs lm-eval, same items, same model, one run.

The items are the built-in ``continuation`` and ``translation`` tasks (4 choices each). lm-eval runs them through its
own task pipeline (a local task YAML over a JSONL file, ``simple_evaluate`` with ``HFLM`` on
the same live model); babelscope through ``Engine.loglikelihood``. Prints items per second of
each, their ratio, both accuracies and the largest per-choice log-likelihood difference::

    python benchmarks/mc_eval.py                                   # Gemma 3 270M, fp32
    python benchmarks/mc_eval.py --languages eng_Latn,fra_Latn --limit 8 --batch_size 8
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import tempfile
import time

os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("HF_DATASETS_OFFLINE", "1")
os.environ.setdefault("TRANSFORMERS_VERBOSITY", "error")

DEFAULT_LANGUAGES = "eng_Latn,fra_Latn,rus_Cyrl,zho_Hans"  # four scripts
DEFAULT_LIMIT = 4  # items per language and task: 32 items, 128 choices in all
DEFAULT_TASKS = "continuation,translation"  # short contexts (continuation) and long ones (translation)


def main() -> int:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--model_args", default="pretrained=default,dtype=float32")
    p.add_argument("--languages", default=DEFAULT_LANGUAGES)
    p.add_argument("--limit", type=int, default=DEFAULT_LIMIT, help="items per language")
    p.add_argument("--batch_size", type=int, default=8, help="batch size of both engines")
    p.add_argument("--tasks", default=DEFAULT_TASKS, help=f"built-in MC tasks (default: {DEFAULT_TASKS})")
    p.add_argument("--source", default="builtin")
    p.add_argument(
        "--fp64_check",
        type=int,
        default=3,
        help="re-score the N choices where the two engines differ most in float64, as ground truth",
    )
    p.add_argument("--abba", type=int, default=1, help="1: run each engine twice in A B B A order (default); 0: once")
    p.add_argument("--json", default=None, help="also write the figures to this JSON file")
    args = p.parse_args()

    import torch

    from babelscope.languages import resolve_many
    from babelscope.measure.engine import Engine
    from babelscope.measure.lm_eval_engine import lm_eval_multiple_choice
    from babelscope.measure.tasks import get_task
    from babelscope.models.load import load_from_args

    loaded = load_from_args(args.model_args)
    langs = resolve_many(args.languages)
    items, labels = [], []
    for name in args.tasks.split(","):
        data = get_task(name).load(langs, source=args.source, limit=args.limit)
        items += [it for lang in langs for it in data[lang]]
        labels += [f"{name}:{lang}:{it.item_id}" for lang in langs for it in data[lang]]
    n_choices = sum(len(it.choices) for it in items)
    print(
        f"{len(items)} items ({n_choices} choices) in {len(langs)} languages; model {loaded.name}; "
        f"torch {torch.__version__}, {torch.get_num_threads()} threads",
        flush=True,
    )

    engine = Engine(loaded, batch_size=args.batch_size, progress=False)
    engine.loglikelihood([(items[0].context, items[0].choices[0])])  # warm-up (allocator, kernels)
    wall = {"babelscope": 0.0, "lm_eval": 0.0}
    cpu = {"babelscope": 0.0, "lm_eval": 0.0}
    with tempfile.TemporaryDirectory() as tmp:
        lm_eval_multiple_choice(loaded, items[:1], tmp, args.batch_size, name="warmup")  # warm-up
        # A B B A order: a load that drifts linearly (shared machine) cancels out of the sums
        for name in ["babelscope", "lm_eval", "lm_eval", "babelscope"][: 4 if args.abba else 2]:
            start, start_cpu = time.perf_counter(), time.process_time()
            if name == "babelscope":
                ours = _ours(engine, items)
            else:
                ref = lm_eval_multiple_choice(loaded, items, tmp, args.batch_size)
            wall[name] += time.perf_counter() - start
            cpu[name] += time.process_time() - start_cpu
            print(f"  {name}: {wall[name]:.1f} s wall, {cpu[name]:.1f} s CPU so far", flush=True)
    runs = 2 if args.abba else 1
    t_ours, t_ref = wall["babelscope"] / runs, wall["lm_eval"] / runs

    acc_ours = sum(max(range(len(s)), key=s.__getitem__) == it.gold for s, it in zip(ours, items, strict=True))
    acc_ours /= len(items)
    diff = max(abs(a - b) for s, r in zip(ours, ref["logprobs"], strict=True) for a, b in zip(s, r, strict=True))
    figures = {
        "items": len(items),
        "choices": n_choices,
        "languages": langs,
        "batch_size": args.batch_size,
        "babelscope_items_per_s": len(items) / t_ours,
        "lm_eval_items_per_s": len(items) / t_ref,
        "babelscope_s": t_ours,
        "lm_eval_s": t_ref,
        "ratio": t_ref / t_ours,
        "cpu_ratio": cpu["lm_eval"] / cpu["babelscope"],
        "babelscope_cpu_s": cpu["babelscope"] / runs,
        "lm_eval_cpu_s": cpu["lm_eval"] / runs,
        "abba": args.abba,
        "acc_babelscope": acc_ours,
        "acc_lm_eval": ref["acc"],
        "max_abs_logprob_diff": diff,
        "torch_threads": torch.get_num_threads(),
        "item_ids": [it.item_id for it in items],
        "logprobs_babelscope": ours,
        "logprobs_lm_eval": ref["logprobs"],
    }
    print(f"babelscope: {figures['babelscope_items_per_s']:.3f} items/s ({t_ours:.1f} s per pass)")
    print(f"lm-eval:    {figures['lm_eval_items_per_s']:.3f} items/s ({t_ref:.1f} s per pass)")
    print(
        f"ratio (babelscope / lm-eval speed): {figures['ratio']:.2f}x wall clock, "
        f"{figures['cpu_ratio']:.2f}x CPU time (process time of both threads; robust to other jobs)"
    )
    print(
        f"accuracy: babelscope {acc_ours:.4f}, lm-eval {ref['acc']:.4f} "
        f"({'identical' if abs(acc_ours - ref['acc']) < 1e-12 else 'DIFFERENT'})"
    )
    print(f"largest per-choice log-likelihood difference: {diff:.2e}")
    if args.fp64_check:
        figures["fp64_check"] = _fp64_check(loaded, engine, items, labels, ours, ref["logprobs"], args.fp64_check)
    if args.json:
        with open(args.json, "w", encoding="utf-8") as f:
            json.dump(figures, f, indent=2)
    return 0 if abs(acc_ours - ref["acc"]) < 1e-12 else 1


def _fp64_check(loaded, engine, items, labels, ours, theirs, n: int) -> list[dict]:
    """Distance of each engine from a float64 full forward on the ``n`` most different choices."""
    import torch

    gaps = sorted(
        (
            (abs(a - b), i, j)
            for i, (s, r) in enumerate(zip(ours, theirs, strict=True))
            for j, (a, b) in enumerate(zip(s, r, strict=True))
        ),
        reverse=True,
    )[:n]
    loaded.model.double()
    out = []
    for _, i, j in gaps:
        ctx, cont = engine.encode_pair(items[i].context, items[i].choices[j])
        with torch.no_grad():
            logits = loaded.model(torch.tensor([(ctx + cont)[:-1]])).logits[0, -len(cont) :]  # [n_cont, V]
        truth = float(torch.log_softmax(logits, -1).gather(1, torch.tensor(cont)[:, None]).sum())
        out.append(
            {
                "item_id": items[i].item_id,
                "choice": j,
                "float64": truth,
                "babelscope_error": ours[i][j] - truth,
                "lm_eval_error": theirs[i][j] - truth,
            }
        )
        print(
            f"float64 check {labels[i]} choice {j}: babelscope {ours[i][j] - truth:+.2e}, "
            f"lm-eval {theirs[i][j] - truth:+.2e} (difference from the float64 score)"
        )
    loaded.model.float()
    return out


def _ours(engine, items) -> list[list[float]]:
    """All choices of all items in one call: contexts are shared and items batched together."""
    scores = engine.loglikelihood([(it.context, c) for it in items for c in it.choices])
    out, k = [], 0
    for it in items:
        out.append([lp for lp, _ in scores[k : k + len(it.choices)]])
        k += len(it.choices)
    return out


if __name__ == "__main__":
    sys.exit(main())
