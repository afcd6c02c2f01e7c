"""LAHIS scoring cost against a bare forward + backward of the same loss, and peak memory.

Both sides run the same batches (same texts, same length-sorted batching, same per-sample loss
summed) with frozen parameters (no parameter gradients) in the same process, alternating A/B
rounds so that machine noise hits both. The baseline has no hooks: its backward starts from
the loss and reaches a leaf made of the input embeddings (so it does slightly *more* backward
work than LAHIS, whose gradient stops at layer 0's o_proj input). LAHIS adds the per-sample
[B, L, H] mask, the hooks and the streaming sums.

Peak memory (max RSS) of LAHIS scoring is measured in fresh subprocesses at N and 4N items
(the 4N items cycle the same N texts, so the longest batch is the same): streaming sums keep it
flat. The children run with glibc's mmap threshold fixed at 1 MiB
(``GLIBC_TUNABLES=glibc.malloc.mmap_threshold=1048576``) so that freed activation buffers go back
to the OS and max RSS measures live memory rather than the allocator's growing cache (with the
dynamic threshold, RSS creeps up over the first batches whatever the algorithm does).

    python benchmarks/lahis_overhead.py                 # default model, N = 16 English items
    python benchmarks/lahis_overhead.py --items 8 --rounds 2 --model smollm2-135m
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import statistics
import subprocess
import sys
import time

os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TQDM_DISABLE", "1")


def texts(n: int, pool_size: int, language: str = "eng_Latn") -> list[str]:
    """``n`` texts cycling the first ``pool_size`` built-in corpus items (training side); the
    package's sample texts as fallback."""
    try:
        from babelscope.data.split import split_for_eval, texts_of

        train, _ = split_for_eval("builtin")
        pool = texts_of(train, [language], pool_size)[language]
    except Exception:  # no built-in corpus in this checkout
        from babelscope.testing import SAMPLE_TEXTS

        pool = list(SAMPLE_TEXTS)
    return [pool[i % len(pool)] for i in range(n)]


def bare_forward_backward(loaded, seqs, batch_size: int) -> None:
    """The same per-sample loss, summed, backward to an input-embedding leaf; no hooks, no mask."""
    import torch

    from babelscope.interpret.lahis import per_sample_loss
    from babelscope.models.forward import frozen, length_batches, pad_id_of

    emb = loaded.model.get_input_embeddings()
    handle = emb.register_forward_hook(lambda m, a, out: out.detach().requires_grad_(True))
    try:
        with frozen(loaded.model):
            for batch in length_batches(seqs, batch_size, pad_id_of(loaded.tokenizer)):
                loss = per_sample_loss(loaded.model, batch)  # [B]
                torch.autograd.backward(loss.sum())
    finally:
        handle.remove()


def child(args) -> None:
    """Score ``--child`` items with LAHIS and print the peak RSS (MiB) as JSON."""
    import torch

    from babelscope.interpret.lahis import score_texts
    from babelscope.models import load_model

    torch.set_num_threads(args.threads)
    loaded = load_model(args.model)
    rss_loaded = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    sums = score_texts(loaded, texts(args.child, args.items), batch_size=args.batch_size)
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    print(json.dumps({"items": sums.n, "peak_rss_mib": peak, "after_load_mib": rss_loaded}))


def timing(args) -> None:
    import torch

    from babelscope.interpret.lahis import encode, score_encoded
    from babelscope.models import load_model

    torch.set_num_threads(args.threads)
    loaded = load_model(args.model)
    seqs = encode(loaded.tokenizer, texts(args.items, args.items))
    n_tokens = sum(len(s) for s in seqs)
    score_encoded(loaded, seqs[: args.batch_size], args.batch_size)  # warm-up (allocator, kernels)
    lahis_t, bare_t, cpu_l, cpu_b = [], [], [], []
    for _ in range(args.rounds):
        for name, fn in (
            ("lahis", lambda: score_encoded(loaded, seqs, args.batch_size)),
            ("bare", lambda: bare_forward_backward(loaded, seqs, args.batch_size)),
        ):
            c0, t0 = time.process_time(), time.perf_counter()
            fn()
            wall, cpu = time.perf_counter() - t0, time.process_time() - c0
            (lahis_t if name == "lahis" else bare_t).append(wall)
            (cpu_l if name == "lahis" else cpu_b).append(cpu)
    ratio = statistics.median(a / b for a, b in zip(lahis_t, bare_t, strict=True))
    cpu_ratio = statistics.median(a / b for a, b in zip(cpu_l, cpu_b, strict=True))
    print(
        f"model {loaded.name}, {len(seqs)} items, {n_tokens} tokens, batch {args.batch_size}, "
        f"{args.threads} threads, load average {os.getloadavg()[0]:.1f}"
    )
    print(f"LAHIS scoring     wall {statistics.median(lahis_t):.2f} s (rounds {[round(x, 2) for x in lahis_t]})")
    print(f"bare fwd+bwd      wall {statistics.median(bare_t):.2f} s (rounds {[round(x, 2) for x in bare_t]})")
    print(f"ratio LAHIS / bare: {ratio:.3f} (wall, median of per-round ratios); {cpu_ratio:.3f} (CPU time)")


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--model", default="default")
    p.add_argument("--items", type=int, default=16, help="N items (memory also at 4N)")
    p.add_argument("--batch_size", type=int, default=8)
    p.add_argument("--rounds", type=int, default=3, help="alternating A/B timing rounds")
    p.add_argument("--threads", type=int, default=2)
    p.add_argument("--memory_only", action="store_true", help="skip the timing rounds")
    p.add_argument("--child", type=int, default=None, help=argparse.SUPPRESS)
    args = p.parse_args()
    if args.child is not None:
        return child(args)

    if not args.memory_only:
        timing(args)
    mem = {}
    for n in (args.items, 4 * args.items):
        out = subprocess.run(
            [
                sys.executable,
                __file__,
                "--model",
                args.model,
                "--child",
                str(n),
                "--items",
                str(args.items),
                "--batch_size",
                str(args.batch_size),
                "--threads",
                str(args.threads),
            ],
            capture_output=True,
            text=True,
            check=True,
            env=dict(os.environ, GLIBC_TUNABLES="glibc.malloc.mmap_threshold=1048576"),
        )
        mem[n] = json.loads(out.stdout.strip().splitlines()[-1])
    a, b = mem[args.items], mem[4 * args.items]
    print(
        f"peak RSS at N={args.items}: {a['peak_rss_mib']:.0f} MiB; at 4N={4 * args.items}: "
        f"{b['peak_rss_mib']:.0f} MiB (ratio {b['peak_rss_mib'] / a['peak_rss_mib']:.3f}; "
        f"after model load {a['after_load_mib']:.0f} MiB)"
    )


if __name__ == "__main__":
    main()
