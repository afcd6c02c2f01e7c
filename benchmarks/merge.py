"""Benchmark: the same merge recipe through babelscope and mergekit 0.1.5, time and peak memory.

Builds two (three with ties) ~537 MB fp32 Llama checkpoints from a config (134M parameters:
hidden 768, 12 layers, vocab 32000, untied head) in a temporary folder, then runs each recipe
through each tool in its own subprocess (imports included), measuring wall time and the
subprocess's peak RSS (``os.wait4`` rusage). Outputs are compared tensor by tensor.

    python benchmarks/merge.py [--recipes layer_swap,linear,ties] [--repeats 2] [--keep DIR]

Prints one row per recipe and tool, and the ratios mergekit / babelscope (> 1: babelscope better).
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import yaml

CONFIG = dict(  # ~134M parameters, ~537 MB in fp32
    vocab_size=32000,
    hidden_size=768,
    intermediate_size=2048,
    num_hidden_layers=12,
    num_attention_heads=12,
    num_key_value_heads=12,
    max_position_embeddings=512,
    tie_word_embeddings=False,
)


def build_models(root: Path, names: list[str]) -> None:
    import torch
    from transformers import AutoModelForCausalLM, LlamaConfig

    from babelscope.testing import train_tiny_tokenizer

    tok = train_tiny_tokenizer()
    torch.manual_seed(0)
    model = AutoModelForCausalLM.from_config(LlamaConfig(**CONFIG), dtype=torch.float32)
    for i, name in enumerate(names):
        if i:
            with torch.no_grad():
                for p in model.parameters():
                    p.add_(0.01 * torch.randn_like(p))
        model.save_pretrained(root / name)
        tok.save_pretrained(root / name)
    n = sum(p.numel() for p in model.parameters())
    print(f"built {len(names)} models of {n / 1e6:.1f}M parameters ({n * 4 / 1e6:.0f} MB) in {root}")


def recipes(root: Path) -> dict[str, dict]:
    a, b, base = str(root / "A"), str(root / "B"), str(root / "base")
    return {
        "layer_swap": {
            "merge_method": "layer_swap",
            "task_expert": a,
            "language_expert": b,
            "parameters": {"bottom": 3, "top": 2, "transition_bottom": 1, "transition_top": 1},
        },
        "linear": {
            "merge_method": "linear",
            "models": [{"model": a, "parameters": {"weight": 0.5}}, {"model": b, "parameters": {"weight": 0.5}}],
        },
        "ties": {
            "merge_method": "ties",
            "base_model": base,
            "models": [
                {"model": a, "parameters": {"weight": 0.5, "density": 0.5}},
                {"model": b, "parameters": {"weight": 0.5, "density": 0.5}},
            ],
        },
    }


def worker(tool: str, recipe_file: str, out: str) -> None:
    """Runs inside the measured subprocess: import the tool, merge, report the merge-only time."""
    start = time.perf_counter()
    raw = yaml.safe_load(Path(recipe_file).read_text())
    if tool == "babelscope":
        from babelscope.improve.merge import merge

        merge(raw, out)
    else:
        from mergekit.config import MergeConfiguration
        from mergekit.merge import MergeOptions, run_merge

        run_merge(MergeConfiguration.model_validate(raw), out_path=out, options=MergeOptions(device="cpu"))
    print(json.dumps({"in_process_s": time.perf_counter() - start}))


def measure(tool: str, recipe_file: Path, out: Path) -> dict:
    env = {**os.environ, "HF_HUB_OFFLINE": "1", "TQDM_DISABLE": "1", "OMP_NUM_THREADS": "1"}
    cmd = [sys.executable, __file__, "--worker", tool, str(recipe_file), str(out)]
    start = time.perf_counter()
    proc = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, env=env)
    _, status, usage = os.wait4(proc.pid, 0)
    wall = time.perf_counter() - start
    stdout = proc.stdout.read().decode()
    if status != 0:
        raise SystemExit(f"{tool} failed on {recipe_file}: {stdout[-2000:]}")
    inner = json.loads(stdout.strip().splitlines()[-1])
    return {"wall_s": wall, "peak_rss_mb": usage.ru_maxrss / 1024, **inner}


def max_abs_diff(a: Path, b: Path) -> float:
    from babelscope.improve.merge.io import ModelFiles

    ma, mb = ModelFiles(a), ModelFiles(b)
    if sorted(ma.names) != sorted(mb.names):
        return float("inf")
    return max((ma.read(n) - mb.read(n)).abs().max().item() for n in ma.names)


def setup(root: Path, names: list[str]) -> None:
    """Runs in a subprocess (the parent never imports torch, so its RSS cannot leak into children's
    ru_maxrss through fork): builds the models if needed and writes each recipe for both tools."""
    from babelscope.improve.merge import prepare
    from babelscope.improve.merge.layer_swap import to_mergekit_yaml

    needed = ["A", "B"] + (["base"] if "ties" in names else [])
    if not all((root / n / "config.json").is_file() for n in needed):
        build_models(root, needed)
    for name in names:
        raw = recipes(root)[name]
        (root / f"{name}.babelscope.yaml").write_text(yaml.safe_dump(raw))
        (root / f"{name}.mergekit.yml").write_text(to_mergekit_yaml(prepare(raw)))


def diff(a: str, b: str) -> None:
    print(json.dumps({"max_abs_diff": max_abs_diff(Path(a), Path(b))}))


def helper(*args: str) -> str:
    env = {**os.environ, "HF_HUB_OFFLINE": "1", "TQDM_DISABLE": "1"}
    res = subprocess.run([sys.executable, __file__, *args], capture_output=True, text=True, env=env)
    if res.returncode:
        raise SystemExit(f"{args[0]} failed: {res.stderr[-2000:]}")
    return res.stdout


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--recipes", default="layer_swap,linear,ties")
    ap.add_argument("--repeats", type=int, default=2, help="runs per tool and recipe; min time, max memory")
    ap.add_argument("--keep", default=None, help="build the models here and keep them (default: a temp dir)")
    args = ap.parse_args()
    names = args.recipes.split(",")
    root = Path(args.keep or tempfile.mkdtemp(prefix="bench-merge-"))
    try:
        print(helper("--setup", str(root), args.recipes).strip())
        print(f"{'recipe':>11} {'tool':>10} {'wall s':>7} {'merge s':>8} {'peak RSS MB':>11}")
        summary = {}
        for name in names:
            files = {"babelscope": root / f"{name}.babelscope.yaml", "mergekit": root / f"{name}.mergekit.yml"}
            best = {}
            for rep in range(args.repeats):
                for tool in ("mergekit", "babelscope") if rep % 2 else ("babelscope", "mergekit"):
                    out = root / f"out-{name}-{tool}"
                    shutil.rmtree(out, ignore_errors=True)
                    r = measure(tool, files[tool], out)
                    prev = best.get(tool)
                    best[tool] = (
                        r
                        if prev is None
                        else {
                            "wall_s": min(prev["wall_s"], r["wall_s"]),
                            "in_process_s": min(prev["in_process_s"], r["in_process_s"]),
                            "peak_rss_mb": max(prev["peak_rss_mb"], r["peak_rss_mb"]),
                        }
                    )
            for tool, r in best.items():
                print(f"{name:>11} {tool:>10} {r['wall_s']:7.2f} {r['in_process_s']:8.2f} {r['peak_rss_mb']:11.0f}")
            d = json.loads(helper("--diff", str(root / f"out-{name}-babelscope"), str(root / f"out-{name}-mergekit")))
            ratio_t = best["mergekit"]["wall_s"] / best["babelscope"]["wall_s"]
            ratio_m = best["mergekit"]["peak_rss_mb"] / best["babelscope"]["peak_rss_mb"]
            print(
                f"{name:>11} ratios mergekit/babelscope: time {ratio_t:.2f}x, peak memory {ratio_m:.2f}x; "
                f"max |difference| {d['max_abs_diff']:.2e}"
            )
            summary[name] = {**best, "time_ratio": ratio_t, "memory_ratio": ratio_m, **d}
        print(json.dumps(summary, indent=1))
    finally:
        if not args.keep:
            shutil.rmtree(root, ignore_errors=True)


if __name__ == "__main__":
    if len(sys.argv) > 1 and sys.argv[1] == "--worker":
        worker(*sys.argv[2:5])
    elif len(sys.argv) > 1 and sys.argv[1] == "--setup":
        setup(Path(sys.argv[2]), sys.argv[3].split(","))
        print("setup done")
    elif len(sys.argv) > 1 and sys.argv[1] == "--diff":
        diff(sys.argv[2], sys.argv[3])
    else:
        main()
