"""Token-level greedy generation speed: babelscope's engine against HF ``generate``, on any device.

Synthetic prompts (seeded token ids) with the shape of few-shot prompts: a shared prefix of
``--prefix`` tokens and a suffix of 8-100 tokens per row; each row generates ``--new_tokens``
tokens, or stops earlier at an EOS id. Both engines decode ``--batch_size`` rows at a time, in
A B B A order, and their tokens are compared. Needs neither lm-eval nor the model's tokenizer,
so it runs with random weights on a machine with only torch and transformers (a GPU box)::

    python benchmarks/generate_tokens.py                      # the default model, CPU
    python benchmarks/generate_tokens.py --random_config benchmarks/data/gemma3_270m_config.json --device cuda
"""

from __future__ import annotations

import argparse
import os
import random
import sys
import time

os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TRANSFORMERS_VERBOSITY", "error")


def hf_generate(model, prompts, new_tokens, pad_id):
    """HF ``generate`` (greedy) on the left-padded batch, each row cut after its first EOS."""
    import torch

    from babelscope.models.forward import pad_batch

    batch = {k: v.to(model.device) for k, v in pad_batch(prompts, pad_id, "left").items()}
    with torch.no_grad():
        out = model.generate(**batch, max_new_tokens=new_tokens, do_sample=False, pad_token_id=pad_id,
                             temperature=None, top_p=None, top_k=None)[:, batch["input_ids"].shape[1]:]
    return out.tolist()


def main() -> int:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--model_args", default="pretrained=default,dtype=float32")
    p.add_argument("--random_config", default=None, help="a config.json: random weights of that architecture")
    p.add_argument("--device", default="cpu")
    p.add_argument("--items", type=int, default=16)
    p.add_argument("--batch_size", type=int, default=8)
    p.add_argument("--prefix", type=int, default=300, help="tokens every prompt shares")
    p.add_argument("--new_tokens", type=int, default=32)
    args = p.parse_args()

    import torch
    from scoring_speed import _load, _sync

    from babelscope.measure.generate import Decoder, greedy_tokens

    loaded = _load(args)
    dec = Decoder.of(loaded.model, loaded.tokenizer)
    rng = random.Random(0)
    vocab = loaded.model.get_output_embeddings().weight.shape[0]
    prefix = [rng.randrange(3, vocab) for _ in range(args.prefix)]
    prompts = [prefix + [rng.randrange(3, vocab) for _ in range(rng.randint(8, 100))] for _ in range(args.items)]
    batches = [prompts[b : b + args.batch_size] for b in range(0, len(prompts), args.batch_size)]
    print(f"{args.items} prompts of {args.prefix} shared + 8-100 own tokens, {args.new_tokens} new tokens, batch "
          f"{args.batch_size}; {loaded.name} on {dec.device}", flush=True)
    seconds, out = {"babelscope": 0.0, "hf_generate": 0.0}, {}
    for name in ["babelscope", "hf_generate", "hf_generate", "babelscope"]:  # A B B A: linear drift cancels
        _sync(torch)
        start = time.perf_counter()
        if name == "babelscope":
            out[name] = [t for b in batches for t in greedy_tokens(dec, b, args.new_tokens)]
        else:
            rows = [t for b in batches for t in hf_generate(loaded.model, b, args.new_tokens, dec.pad_id)]
            out[name] = [r[: next((i + 1 for i, t in enumerate(r) if t in dec.eos_ids), len(r))] for r in rows]
        _sync(torch)
        seconds[name] += (time.perf_counter() - start) / 2
    tokens = sum(len(t) for t in out["babelscope"])
    same = out["babelscope"] == out["hf_generate"]
    for name, s in seconds.items():
        print(f"{name}: {s:.2f} s per pass, {args.items / s:.2f} items/s, {tokens / s:.1f} tokens/s")
    print(f"ratio (babelscope / HF generate speed): {seconds['hf_generate'] / seconds['babelscope']:.2f}x; "
          f"tokens {'identical' if same else 'DIFFERENT'}")
    return 0 if same else 1


if __name__ == "__main__":
    sys.exit(main())
