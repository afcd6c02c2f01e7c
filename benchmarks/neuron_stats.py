"""Neuron statistics cost: collecting per-language counts vs a bare decoder-body forward.

Both run over the same batches in the same process, alternating (bare, stats, bare, stats, ...);
the best time of each is compared. Peak memory (max RSS) of statistics collection is then
measured in fresh subprocesses at N and 4N tokens: streaming reducers keep it flat.

    python benchmarks/neuron_stats.py                      # default model, N = 1024 tokens
    python benchmarks/neuron_stats.py --model smollm2-135m --tokens 2048
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import subprocess
import sys
import time

os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TRANSFORMERS_VERBOSITY", "error")

LANGS = ("eng_Latn", "fra_Latn", "rus_Cyrl", "hin_Deva")  # texts from babelscope.testing.SAMPLE_TEXTS


def batches_for(tokenizer, tokens: int, batch_size: int):
    from babelscope.interpret.activations import language_batches
    from babelscope.testing import SAMPLE_TEXTS

    texts = {lang: [SAMPLE_TEXTS[i]] * 2000 for lang, i in zip(LANGS, (0, 1, 4, 5), strict=True)}
    return language_batches(tokenizer, texts, tokens // len(LANGS), batch_size)


def compare(model_name: str, tokens: int, batch_size: int, repeats: int) -> dict:
    """Bare body vs body with statistics, interleaved batch by batch (alternating which goes first).

    On a shared machine the load changes from second to second; timing the two variants on the
    same batch back to back makes both see the same load. Wall and process CPU time are summed;
    hook registration is inside the timed statistics pass.
    """
    import torch

    from babelscope.interpret.activations import body_forward, collect
    from babelscope.models.load import load_model
    from babelscope.models.reducers import NeuronReducer

    loaded = load_model(model_name)
    a = loaded.adapter
    batches = batches_for(loaded.tokenizer, tokens, batch_size)
    reducer = NeuronReducer(list(LANGS), a.n_layers, a.d_mlp)
    variants = {
        "bare": lambda b: body_forward(loaded.model, a, b, loaded.device),
        "stats": lambda b: collect(loaded.model, a, [b], reducer),
    }
    wall = {"bare": 0.0, "stats": 0.0}
    cpu = {"bare": 0.0, "stats": 0.0}
    with torch.no_grad():
        for b in batches:  # warm-up
            variants["bare"](b)
        for r in range(repeats):
            for i, b in enumerate(batches):
                for name in ("bare", "stats") if (r + i) % 2 == 0 else ("stats", "bare"):
                    w, c = time.perf_counter(), time.process_time()
                    variants[name](b)
                    wall[name] += time.perf_counter() - w
                    cpu[name] += time.process_time() - c
    n = sum(int(b.attention_mask.sum()) for b in batches)
    return {
        "tokens": n,
        "repeats": repeats,
        "bare_s": wall["bare"],
        "stats_s": wall["stats"],
        "ratio": wall["stats"] / wall["bare"],
        "cpu_ratio": cpu["stats"] / cpu["bare"],
    }


def peak_child(model_name: str, tokens: int, batch_size: int) -> None:
    """Subprocess body: collect statistics over ``tokens`` tokens and print the max RSS (MiB)."""
    from babelscope.interpret.activations import collect
    from babelscope.models.load import load_model
    from babelscope.models.reducers import NeuronReducer

    loaded = load_model(model_name)
    a = loaded.adapter
    batches = batches_for(loaded.tokenizer, tokens, batch_size)
    before = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    red = collect(loaded.model, a, batches, NeuronReducer(list(LANGS), a.n_layers, a.d_mlp))
    after = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    print(json.dumps({"tokens": int(red.tokens.sum()), "peak_mib": after, "before_collect_mib": before}))


def peak(model_name: str, tokens: int, batch_size: int) -> dict:
    cmd = [
        sys.executable,
        __file__,
        "--child",
        "--model",
        model_name,
        "--tokens",
        str(tokens),
        "--batch_size",
        str(batch_size),
    ]
    out = subprocess.run(cmd, capture_output=True, text=True, check=True, env=os.environ)
    return json.loads(out.stdout.strip().splitlines()[-1])


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--model", default="default")
    p.add_argument("--tokens", type=int, default=1024, help="N: tokens for the timing and the first memory run")
    p.add_argument("--batch_size", type=int, default=8)
    p.add_argument("--repeats", type=int, default=3)
    p.add_argument("--threads", type=int, default=2)
    p.add_argument("--child", action="store_true", help=argparse.SUPPRESS)
    args = p.parse_args()
    import torch

    torch.set_num_threads(args.threads)
    if args.child:
        peak_child(args.model, args.tokens, args.batch_size)
        return
    res = compare(args.model, args.tokens, args.batch_size, args.repeats)
    print(
        f"timing over {res['tokens']} tokens x {res['repeats']} ({args.model}, batch {args.batch_size}, "
        f"{args.threads} threads, interleaved per batch): bare body {res['bare_s']:.2f} s, with statistics "
        f"{res['stats_s']:.2f} s, ratio {res['ratio']:.3f} (process CPU time ratio {res['cpu_ratio']:.3f})"
    )
    m1, m4 = peak(args.model, args.tokens, args.batch_size), peak(args.model, 4 * args.tokens, args.batch_size)
    print(
        f"peak RSS: {m1['peak_mib']:.0f} MiB at {m1['tokens']} tokens, {m4['peak_mib']:.0f} MiB at "
        f"{m4['tokens']} tokens (ratio {m4['peak_mib'] / m1['peak_mib']:.3f})"
    )
    print(
        json.dumps(
            {
                "ratio": res["ratio"],
                "cpu_ratio": res["cpu_ratio"],
                "peak_n_mib": m1["peak_mib"],
                "peak_4n_mib": m4["peak_mib"],
            }
        )
    )


if __name__ == "__main__":
    main()
