"""Training throughput and peak memory: layer-targeted finetuning vs full finetuning.

Each setting runs in its own subprocess (so peak RSS is its own) on the same packed sequences of
Just Go Parallel documents from the built-in corpus, with the same optimizer and schedule:

* ``layers``   : only the chosen layers trainable (``--method full`` on ``--layers``), AdamW on them;
* ``lora``     : PEFT LoRA on the chosen layers only (``--method lora``);
* ``full``     : every parameter trainable (classic full finetuning; the baseline).

The first ``--warmup_steps`` steps are not timed. Prints a table and the ratios against ``full``.

    python benchmarks/finetune.py --model default --layers 0-3 --steps 4
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import subprocess
import sys
import time

SETTINGS = ("layers", "lora", "full")


def child(cfg: dict) -> dict:
    import torch

    torch.set_num_threads(cfg["threads"])
    from babelscope.data.corpus import load_corpus
    from babelscope.data.parallel import pack, parallel_docs
    from babelscope.improve import layer_finetune as lf
    from babelscope.improve.train_loop import TrainConfig, lm_loss_sum, micro_batches
    from babelscope.models.load import load_model

    loaded = load_model(cfg["model"])
    layers = lf.parse_layers(cfg["layers"], loaded.adapter.n_layers)
    items = load_corpus(cfg["corpus"], languages=["eng_Latn", "fra_Latn"]).aligned(["eng_Latn", "fra_Latn"])
    chunks = pack(parallel_docs(items[:400], "eng_Latn", ["fra_Latn"]), loaded.tokenizer, cfg["max_length"])
    if cfg["setting"] == "lora":
        model = lf.add_lora(loaded, layers)
    else:
        model = loaded.model
        lf.freeze_except(loaded, layers, everything=cfg["setting"] == "full")
    share = lf.trainable_share(model)
    params = [p for p in model.parameters() if p.requires_grad]
    opt = torch.optim.AdamW(params, lr=1e-5)
    tcfg = TrainConfig(max_steps=cfg["steps"] + cfg["warmup_steps"], batch_size=cfg["batch_size"])
    model.train()
    tokens, seconds = 0, 0.0
    for step in range(tcfg.max_steps):
        t0, counted = time.perf_counter(), 0
        for ids, labels, mask in micro_batches(chunks, step, tcfg):
            n = int((labels[:, 1:] != -100).sum())
            (lm_loss_sum(model, ids, labels, mask) / n).backward()
            counted += int(mask.sum())
        opt.step()
        opt.zero_grad(set_to_none=True)
        if step >= cfg["warmup_steps"]:
            seconds += time.perf_counter() - t0
            tokens += counted
    rss = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024  # KiB on Linux -> MiB
    return {
        "setting": cfg["setting"],
        "load_average": round(os.getloadavg()[0], 1),
        "trainable": share["trainable"],
        "share": round(share["share"], 4),
        "tokens": tokens,
        "seconds": round(seconds, 2),
        "tokens_per_second": round(tokens / seconds, 2),
        "peak_rss_mib": round(rss),
    }


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--model", default="default", help="model spec for load_model (default: default)")
    p.add_argument("--corpus", default="builtin", help="aligned corpus with eng_Latn and fra_Latn (default: builtin)")
    p.add_argument("--layers", default="0-3", help="layers of the layer-targeted settings (default: 0-3)")
    p.add_argument("--steps", type=int, default=4, help="timed optimizer steps per setting (default: 4)")
    p.add_argument("--warmup_steps", type=int, default=1, help="untimed steps first (default: 1)")
    p.add_argument("--batch_size", type=int, default=2, help="sequences per step (default: 2)")
    p.add_argument("--max_length", type=int, default=64, help="tokens per sequence (default: 64)")
    p.add_argument("--threads", type=int, default=2, help="torch threads per run (default: 2)")
    p.add_argument("--settings", default=",".join(SETTINGS), help=f"subset of {','.join(SETTINGS)}")
    p.add_argument("--child", default=None, help=argparse.SUPPRESS)
    args = p.parse_args()
    if args.child:
        print("RESULT " + json.dumps(child(json.loads(args.child))), flush=True)
        return
    rows = []
    for setting in args.settings.split(","):
        cfg = {
            k: getattr(args, k)
            for k in ("model", "corpus", "layers", "steps", "warmup_steps", "batch_size", "max_length", "threads")
        } | {"setting": setting}
        env = {**os.environ, "HF_HUB_OFFLINE": "1", "TQDM_DISABLE": "1"}
        out = subprocess.run(
            [sys.executable, __file__, "--child", json.dumps(cfg)], capture_output=True, text=True, env=env, check=False
        )
        line = [s for s in out.stdout.splitlines() if s.startswith("RESULT ")]
        if not line:
            sys.exit(f"{setting} failed:\n{out.stderr[-2000:]}")
        rows.append(json.loads(line[0][7:]))
        print(rows[-1], flush=True)
    base = next((r for r in rows if r["setting"] == "full"), rows[0])
    print(
        f"\nmodel {args.model}, layers {args.layers}, {args.steps} timed steps of {args.batch_size}x"
        f"{args.max_length} tokens, {args.threads} threads"
    )
    print("| setting | trainable params | share | tokens/s | speed vs full | peak RSS MiB | memory vs full | load |")
    print("|---|---|---|---|---|---|---|---|")
    for r in rows:
        print(
            f"| {r['setting']} | {r['trainable']:,} | {100 * r['share']:.2f}% | {r['tokens_per_second']} | "
            f"{r['tokens_per_second'] / base['tokens_per_second']:.2f}x | {r['peak_rss_mib']} | "
            f"{r['peak_rss_mib'] / base['peak_rss_mib']:.2f}x | {r['load_average']} |"
        )


if __name__ == "__main__":
    main()
