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
    peak = matmul_throughput(loaded)
    print(f"measured fp32 matmul throughput: {peak / 1e9:.1f} G multiply-adds per CPU second", flush=True)
    work = {"babelscope": WorkCounter(loaded, engine), "lm_eval": WorkCounter(loaded)}
    wall = {"babelscope": 0.0, "lm_eval": 0.0}
    cpu = {"babelscope": 0.0, "lm_eval": 0.0}
    with tempfile.TemporaryDirectory() as tmp:
        lm_eval_multiple_choice(loaded, items[:1], tmp, args.batch_size, name="warmup")  # warm-up
        # A B B A order: a load that drifts linearly (shared machine) cancels out of the sums
        for name in ["babelscope", "lm_eval", "lm_eval", "babelscope"][: 4 if args.abba else 2]:
            start, start_cpu = time.perf_counter(), time.process_time()
            with work[name]:
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
        "matmul_peak_macs_per_s": peak,
        **{f"{k}_{w}": v / runs for k, c in work.items() for w, v in c.figures().items()},
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
    report_work(figures, peak)
    if args.fp64_check:
        figures["fp64_check"] = _fp64_check(loaded, engine, items, labels, ours, ref["logprobs"], args.fp64_check)
    if args.json:
        with open(args.json, "w", encoding="utf-8") as f:
            json.dump(figures, f, indent=2)
    return 0 if abs(acc_ours - ref["acc"]) < 1e-12 else 1


class WorkCounter:
    """Multiply-adds an engine executes while active: decoder positions x body cost (its linear layers)
    plus unembedded positions x head cost (hidden size x vocabulary rows computed)."""

    def __init__(self, loaded, engine=None):
        import torch

        self.loaded, self.engine = loaded, engine
        body = loaded.adapter.body(loaded.model)
        head = loaded.model.get_output_embeddings()
        embed = loaded.model.get_input_embeddings()
        self.body, self.head = body, head
        skip = {id(embed.weight), id(head.weight)}
        self.body_cost = sum(m.weight.numel() for m in body.modules()  # multiply-adds per position
                             if isinstance(m, torch.nn.Linear) and id(m.weight) not in skip)
        self.positions = self.head_macs = 0

    def __enter__(self):
        def count_body(module, args, kwargs):
            ids = kwargs.get("input_ids", args[0] if args else None)
            self.positions += ids.numel()  # padded positions are computed too

        self.handles = [self.body.register_forward_pre_hook(count_body, with_kwargs=True)]
        if self.engine is None:  # HF's forward: lm_head over every position
            self.handles.append(self.head.register_forward_pre_hook(
                lambda m, a: setattr(self, "head_macs", self.head_macs + a[0].shape[:-1].numel() * m.weight.numel())))
        else:  # babelscope's head: blocks of vocabulary rows at the scored positions only
            plain = self.engine.head

            def head(hidden, vocab=None):
                rows = self.head.weight[vocab].shape[0] if vocab is not None else self.head.weight.shape[0]
                self.head_macs += hidden.shape[:-1].numel() * rows * hidden.shape[-1]
                return plain(hidden, vocab)

            self.engine.head = head
        return self

    def __exit__(self, *exc):
        for h in self.handles:
            h.remove()
        if self.engine is not None:
            del self.engine.head  # the class's method again

    def figures(self) -> dict:
        return {"positions": self.positions, "body_macs": self.positions * self.body_cost, "head_macs": self.head_macs,
                "macs": self.positions * self.body_cost + self.head_macs}


def matmul_throughput(loaded, bursts: int = 8, seconds: float = 0.25) -> float:
    """Multiply-adds per CPU second of the model's own fp32 matmuls on this machine: the best burst of
    the MLP shape ([512, D] x [D, F]) and the head-block shape ([512, D] x [D, 8192]). CPU time, not
    wall time, so other jobs on a shared machine do not lower it (nor the engines' figures)."""
    import torch

    a = loaded.adapter
    x = torch.randn(512, a.d_model)
    best = 0.0
    for w in (torch.randn(a.d_mlp, a.d_model), torch.randn(8192, a.d_model)):
        torch.nn.functional.linear(x, w)
        for _ in range(bursts):
            n, start = 0, time.process_time()
            while time.process_time() - start < seconds:
                torch.nn.functional.linear(x, w)
                n += 1
            best = max(best, n * x.shape[0] * w.numel() / (time.process_time() - start))
    return best


def report_work(figures: dict, peak: float) -> None:
    """Work of each engine, the work ratio (the speed-up equal efficiency would give) and babelscope's
    fraction of the measured matmul throughput."""
    ours, theirs = figures["babelscope_macs"], figures["lm_eval_macs"]
    for name in ("babelscope", "lm_eval"):
        g = {k: figures[f"{name}_{k}"] / 1e9 for k in ("macs", "body_macs", "head_macs")}
        print(f"work {name}: {g['macs']:.1f} G multiply-adds ({figures[f'{name}_positions']:.0f} decoder "
              f"positions, body {g['body_macs']:.1f} G, head {g['head_macs']:.1f} G)")
    figures["work_ratio"] = theirs / ours
    figures["babelscope_fraction_of_peak"] = ours / figures["babelscope_cpu_s"] / peak  # per CPU second, as peak
    figures["lm_eval_fraction_of_peak"] = theirs / figures["lm_eval_cpu_s"] / peak
    bound = figures["work_ratio"]
    print(f"work ratio (lm-eval / babelscope): {bound:.2f}x; measured speed ratio {figures['ratio']:.2f}x wall, "
          f"{figures['cpu_ratio']:.2f}x CPU = {figures['ratio'] / bound:.0%} / {figures['cpu_ratio'] / bound:.0%} "
          "of the work-ratio bound")
    print(f"fraction of the measured matmul throughput (per CPU second): babelscope "
          f"{figures['babelscope_fraction_of_peak']:.0%}, lm-eval {figures['lm_eval_fraction_of_peak']:.0%}")


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
