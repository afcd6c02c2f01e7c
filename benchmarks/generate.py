"""Greedy generation speed: babelscope's engine vs Hugging Face ``generate`` under lm-eval's HFLM, one run.

The same requests go through ``Engine.generate_until`` and through lm-eval's
``HFLM.generate_until`` (HF ``generate``, greedy, lm-eval's stop-string criterion and batching)
on the same live model, in A B B A order (a load that drifts linearly cancels out). Two sets:

* ``cypher``: the Text2Cypher few-shot prompts of the built-in questions (instruction, schema,
  3 examples, the question), ``babelscope cypher --fewshot``'s prompts and stop strings;
* ``mgsm``: MGSM-style few-shot word problems in four languages from ``benchmarks/data/mgsm_style.jsonl``
  (lm-eval's direct format: "Question: ...\\nAnswer:", stop at a blank line or "Question:").

Prints items/s and generated tokens/s of each engine, the ratio, and whether every output is
identical::

    python benchmarks/generate.py                                # Gemma 3 270M, fp32, batch size 8
    python benchmarks/generate.py --cypher 8 --mgsm 8 --abba 0   # quicker
    python benchmarks/generate.py --batch_size auto
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import time
from pathlib import Path

os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TRANSFORMERS_VERBOSITY", "error")

MGSM_FILE = Path(__file__).parent / "data" / "mgsm_style.jsonl"
MGSM_SHOTS = [  # lm-eval's few-shot layout: "Question: ...\nAnswer: N" blocks joined by a blank line
    ("Lisa has 3 boxes with 7 pencils in each box. How many pencils does she have?", "21"),
    ("A train leaves with 120 people. 45 people get off. How many people are still on the train?", "75"),
    ("Sam buys 4 books for 6 dollars each. How much does he pay?", "24"),
]
MGSM_UNTIL = ["\n\n", "Question:", "</s>", "<|im_end|>"]  # lm-eval's mgsm_direct stop strings


def cypher_requests(n: int, language: str) -> list[tuple[str, dict]]:
    """``babelscope cypher --fewshot`` prompts of the first ``n`` built-in questions in ``language``."""
    from babelscope.cypher.prompts import MAX_GEN_TOKS, build_prompt, fewshot_examples, stop_strings
    from babelscope.cypher.questions import load_questions, select_items
    from babelscope.cypher.schema import builtin_schema_text

    items, schema = load_questions(), builtin_schema_text()
    chosen = select_items(items, n)
    return [(build_prompt(it.questions[language], schema, fewshot_examples(items, it.item_id, language)),
             {"until": stop_strings(), "max_gen_toks": MAX_GEN_TOKS}) for it in chosen]


def mgsm_requests(n: int, max_gen_toks: int) -> list[tuple[str, dict]]:
    """Few-shot MGSM-style prompts of the first ``n`` questions of the local file."""
    rows = [json.loads(line) for line in MGSM_FILE.read_text(encoding="utf-8").splitlines() if line.strip()]
    shots = "\n\n".join(f"Question: {q}\nAnswer: {a}" for q, a in MGSM_SHOTS)
    prompts = [f"{shots}\n\nQuestion: {r['question']}\nAnswer:" for r in rows[:n]]
    return [(prompt, {"until": list(MGSM_UNTIL), "max_gen_toks": max_gen_toks}) for prompt in prompts]


def hf_generate(loaded, requests, batch_size) -> list[str]:
    """lm-eval's HFLM on the live model: HF ``generate`` with lm-eval's greedy settings."""
    from lm_eval.api.instance import Instance
    from lm_eval.models.huggingface import HFLM

    lm = HFLM(pretrained=loaded.model, tokenizer=loaded.tokenizer, batch_size=batch_size)
    instances = [Instance("generate_until", {}, (ctx, {**kw, "until": list(kw["until"])}), i)
                 for i, (ctx, kw) in enumerate(requests)]
    return list(lm.generate_until(instances, disable_tqdm=True))


def run_set(loaded, name, requests, batch_size, abba: bool) -> dict:
    from babelscope.measure.engine import Engine

    engine = Engine(loaded, batch_size=batch_size, progress=False)
    wall = {"babelscope": 0.0, "hf_generate": 0.0}
    cpu = dict(wall)  # process time of both threads: robust to other jobs sharing the cores
    outputs: dict[str, list[str]] = {}
    warm = requests[: 8 if batch_size == "auto" else batch_size]
    for who, fn in [("babelscope", engine.generate_until), ("hf_generate", lambda r: hf_generate(loaded, r, 8))]:
        start = time.perf_counter()
        fn(warm)  # one-time costs out of the timed passes: lm-eval's wrapper, our int8 screen of the head
        print(f"  {name} {who}: warm-up on {len(warm)} items {time.perf_counter() - start:.1f} s", flush=True)
    for who in ["babelscope", "hf_generate", "hf_generate", "babelscope"][: 4 if abba else 2]:
        start, start_cpu = time.perf_counter(), time.process_time()
        if who == "babelscope":
            outputs[who] = engine.generate_until(requests)
        else:  # lm-eval's auto probes by running out of memory; give it the batch size auto chose for us
            size = batch_size if batch_size != "auto" else engine._rows_per_batch(_longest(engine, requests))
            outputs[who] = hf_generate(loaded, requests, size)
        wall[who] += time.perf_counter() - start
        cpu[who] += time.process_time() - start_cpu
        print(f"  {name} {who}: {wall[who]:.1f} s wall, {cpu[who]:.1f} s CPU so far", flush=True)
    runs = 2 if abba else 1
    tokens = sum(len(loaded.tokenizer.encode(o, add_special_tokens=False)) for o in outputs["babelscope"])
    prompt_tokens = [len(engine.tok_encode(ctx)) for ctx, _ in requests]
    t_ours, t_ref = wall["babelscope"] / runs, wall["hf_generate"] / runs
    same = outputs["babelscope"] == outputs["hf_generate"]
    figures = {"set": name, "items": len(requests), "batch_size": batch_size, "generated_tokens": tokens,
               "prompt_tokens_mean": sum(prompt_tokens) / len(prompt_tokens), "babelscope_s": t_ours,
               "hf_generate_s": t_ref, "babelscope_items_per_s": len(requests) / t_ours,
               "hf_generate_items_per_s": len(requests) / t_ref, "babelscope_tokens_per_s": tokens / t_ours,
               "hf_generate_tokens_per_s": tokens / t_ref, "ratio": t_ref / t_ours, "identical": same,
               "cpu_ratio": cpu["hf_generate"] / cpu["babelscope"], "babelscope_cpu_s": cpu["babelscope"] / runs,
               "hf_generate_cpu_s": cpu["hf_generate"] / runs,
               "differing_items": [i for i, (a, b) in enumerate(zip(outputs["babelscope"], outputs["hf_generate"],
                                                                    strict=True)) if a != b]}
    print(f"{name}: {len(requests)} items, {tokens} generated tokens, prompts {figures['prompt_tokens_mean']:.0f} "
          f"tokens on average")
    print(f"  babelscope:  {figures['babelscope_items_per_s']:.3f} items/s, "
          f"{figures['babelscope_tokens_per_s']:.2f} tokens/s ({t_ours:.1f} s per pass)")
    print(f"  HF generate: {figures['hf_generate_items_per_s']:.3f} items/s, "
          f"{figures['hf_generate_tokens_per_s']:.2f} tokens/s ({t_ref:.1f} s per pass)")
    print(f"  ratio: {figures['ratio']:.2f}x wall clock, {figures['cpu_ratio']:.2f}x CPU time; outputs "
          f"{'identical' if same else 'DIFFERENT'}", flush=True)
    return figures


def _longest(engine, requests) -> int:
    return max(len(engine.tok_encode(ctx)) + kw["max_gen_toks"] for ctx, kw in requests)


def main() -> int:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--model_args", default="pretrained=default,dtype=float32")
    p.add_argument("--batch_size", default="8", help="a number or auto (both engines get the same)")
    p.add_argument("--cypher", type=int, default=8, help="Text2Cypher few-shot prompts (0: skip the set)")
    p.add_argument("--cypher_language", default="eng_Latn")
    p.add_argument("--mgsm", type=int, default=16, help="MGSM-style prompts (0: skip the set)")
    p.add_argument("--mgsm_max_gen_toks", type=int, default=32)
    p.add_argument("--abba", type=int, default=1, help="1: each engine twice, A B B A (default); 0: once each")
    p.add_argument("--threads", type=int, default=None, help="torch threads (1: CPU times free of spin-waits "
                   "on a shared machine)")
    p.add_argument("--json", default=None, help="also write the figures to this JSON file")
    args = p.parse_args()

    import torch

    if args.threads:
        torch.set_num_threads(args.threads)

    from babelscope.models.load import load_from_args

    batch_size = args.batch_size if args.batch_size == "auto" else int(args.batch_size)
    loaded = load_from_args(args.model_args)
    load = os.getloadavg()[0]
    print(f"model {loaded.name}; torch {torch.__version__}, {torch.get_num_threads()} threads, "
          f"{os.cpu_count()} CPUs, load average {load:.1f}", flush=True)
    sets = [("cypher", cypher_requests(args.cypher, args.cypher_language)) if args.cypher else None,
            ("mgsm", mgsm_requests(args.mgsm, args.mgsm_max_gen_toks)) if args.mgsm else None]
    results = [run_set(loaded, name, reqs, batch_size, bool(args.abba)) for name, reqs in filter(None, sets)]
    print(f"load average after: {os.getloadavg()[0]:.1f}")
    if args.json:
        Path(args.json).write_text(json.dumps({"load_before": load, "sets": results}, indent=2), encoding="utf-8")
    return 0 if all(r["identical"] for r in results) else 1


if __name__ == "__main__":
    sys.exit(main())
