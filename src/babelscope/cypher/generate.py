"""Greedy generation for Text2Cypher prompts: the measure harness's `Engine.generate_until` when it
exists, else a small batched `model.generate` helper kept here, isolated so it can be swapped.

Both take lm-eval style requests `(context, {"until": [...], "max_gen_toks": n})` and return
the generated continuations, cut at the first stop string.
"""

from __future__ import annotations

from collections.abc import Callable


def make_generator(loaded, batch_size: int = 8) -> tuple[Callable[[list], list[str]], str]:
    """(generate_until function, name of the backend used)."""
    try:
        from babelscope.measure.engine import Engine
    except ImportError:
        Engine = None
    if Engine is not None:
        engine = Engine(loaded, batch_size=batch_size)
        return engine.generate_until, "babelscope.measure.engine.Engine"
    return (lambda requests: greedy_generate_until(loaded, requests, batch_size)), "cypher.generate (model.generate)"


def cut_at_stops(text: str, until: list[str]) -> str:
    cut = len(text)
    for stop in until:
        if stop:
            pos = text.find(stop)
            if pos != -1:
                cut = min(cut, pos)
    return text[:cut]


def greedy_generate_until(loaded, requests: list, batch_size: int = 8, progress: bool = True) -> list[str]:
    """Greedy continuations, batched with left padding; requests sorted by length for batching."""
    import torch
    from tqdm.auto import tqdm

    model, tok = loaded.model, loaded.tokenizer
    if tok.pad_token_id is None:
        tok.pad_token = tok.eos_token
    side = tok.padding_side
    tok.padding_side = "left"
    device = next(model.parameters()).device
    order = sorted(range(len(requests)), key=lambda i: -len(requests[i][0]))
    out: list[str] = [""] * len(requests)
    try:
        for start in tqdm(range(0, len(order), batch_size), desc="generate", disable=not progress):
            idx = order[start : start + batch_size]
            contexts = [requests[i][0] for i in idx]
            max_new = max(requests[i][1].get("max_gen_toks", 128) for i in idx)
            stops = sorted({s for i in idx for s in requests[i][1].get("until", [])})
            enc = tok(contexts, return_tensors="pt", padding=True).to(device)  # [B, T]
            with torch.inference_mode():
                gen = model.generate(
                    **enc,
                    do_sample=False,
                    max_new_tokens=max_new,
                    stop_strings=stops or None,
                    tokenizer=tok,
                    pad_token_id=tok.pad_token_id,
                )  # [B, T + new]
            for row, i in zip(gen[:, enc["input_ids"].shape[1] :], idx):
                text = tok.decode(row, skip_special_tokens=True)
                out[i] = cut_at_stops(text, requests[i][1].get("until", []))
    finally:
        tok.padding_side = side
    return out
