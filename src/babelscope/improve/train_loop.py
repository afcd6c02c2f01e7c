"""A plain PyTorch training loop (nanoGPT-style, as PEFT's method_comparison runner): AdamW,
linear warmup then linear decay, gradient accumulation, checkpoints and exact resume.

The loop feeds the packed sequences once, in order, and never wraps around: when ``max_steps``
asks for more than the sequences hold it stops at the end of the data and says so (repeat the
data explicitly, e.g. ``finetune --epochs 2``). With ``chunk_docs`` (per sequence, the documents
whose first token it holds) it records which documents it fed at each step.

Only parameters with ``requires_grad`` are optimised. A checkpoint is one safetensors file with
the trainable parameters, the AdamW state, the torch RNG state and the step in its metadata;
resuming from it reproduces the uninterrupted run bit for bit (same data order, same updates).
"""

from __future__ import annotations

import json
import math
import os
import sys
import time
from dataclasses import asdict, dataclass, replace
from pathlib import Path

from babelscope.errors import UsageError

CHECKPOINT = "checkpoint.safetensors"  # file name inside the checkpoint folder


@dataclass
class TrainConfig:
    max_steps: int = 50  # optimizer steps
    batch_size: int = 4  # sequences per micro-batch
    grad_accum: int = 1  # micro-batches per optimizer step
    lr: float = 1e-4  # peak learning rate
    warmup: float = 0.1  # share of max_steps spent warming up linearly from 0
    weight_decay: float = 0.0  # AdamW decoupled weight decay
    max_grad_norm: float = 1.0  # gradient clipping (0 = off)
    seed: int = 1234  # torch seed for the run
    checkpoint_every: int = 0  # steps between checkpoints (0 = only at the end)

    def check(self) -> None:
        for key in ("max_steps", "batch_size", "grad_accum"):
            if getattr(self, key) < 1:
                raise UsageError(f"--{key} must be at least 1, got {getattr(self, key)}.")
        if not 0 <= self.warmup < 1:
            raise UsageError(f"--warmup is a share of the steps in [0, 1), got {self.warmup}.")


def lr_at(step: int, cfg: TrainConfig) -> float:
    """Linear warmup to ``cfg.lr`` over ``warmup * max_steps`` steps, then linear decay to 0."""
    warm = int(cfg.warmup * cfg.max_steps)
    if step < warm:
        return cfg.lr * (step + 1) / warm
    return cfg.lr * max(0.0, (cfg.max_steps - step) / max(1, cfg.max_steps - warm))


def steps_in(n_chunks: int, cfg: TrainConfig) -> int:
    """Optimizer steps that ``n_chunks`` sequences fill (the last one may be short)."""
    return math.ceil(n_chunks / (cfg.batch_size * cfg.grad_accum))


def rows_of(step: int, n_chunks: int, cfg: TrainConfig) -> list[list[int]]:
    """The sequence indices of each micro-batch of optimizer step ``step``, in order, no wrap."""
    per_step = cfg.batch_size * cfg.grad_accum
    out = []
    for m in range(cfg.grad_accum):
        first = step * per_step + m * cfg.batch_size
        rows = list(range(first, min(first + cfg.batch_size, n_chunks)))
        if rows:
            out.append(rows)
    return out


def micro_batches(chunks, step: int, cfg: TrainConfig):
    """The micro-batches of optimizer step ``step``: the next sequences in order (never wrapping)."""
    import torch

    for rows in rows_of(step, len(chunks), cfg):
        ids, labels, mask = (torch.tensor([chunks[r][k] for r in rows]) for k in range(3))
        yield ids, labels, mask  # each [B, T]


def lm_loss_sum(model, ids, labels, mask):
    """Summed next-token cross-entropy over labelled positions (labels are unshifted)."""
    import torch

    logits = model(input_ids=ids, attention_mask=mask).logits  # [B, T, V]
    target = labels[:, 1:]  # [B, T-1]
    return torch.nn.functional.cross_entropy(
        logits[:, :-1].flatten(0, 1).float(), target.flatten(), ignore_index=-100, reduction="sum"
    )


# ----------------------------------------------------------------------------- checkpoints


def trainable(model) -> list[tuple[str, object]]:
    return [(n, p) for n, p in model.named_parameters() if p.requires_grad]


def save_checkpoint(folder, model, optimizer, step: int, history: list) -> Path:
    """Trainable params + AdamW state + torch RNG + step, atomically, in one safetensors file."""
    import torch
    from safetensors.torch import save_file

    folder = Path(folder)
    folder.mkdir(parents=True, exist_ok=True)
    tensors = {"rng/torch": torch.get_rng_state()}
    for name, p in trainable(model):
        tensors[f"param/{name}"] = p.detach().contiguous()
        for key, value in optimizer.state.get(p, {}).items():
            tensors[f"opt/{name}/{key}"] = value.detach().contiguous()
    meta = {"step": str(step), "history": json.dumps(history)}
    tmp = folder / f".{CHECKPOINT}.tmp"
    save_file(tensors, str(tmp), metadata=meta)
    os.replace(tmp, folder / CHECKPOINT)
    return folder / CHECKPOINT


def load_checkpoint(folder, model, optimizer) -> tuple[int, list]:
    """Restore a checkpoint into ``model`` and ``optimizer``; returns (next step, loss history)."""
    import torch
    from safetensors import safe_open

    path = Path(folder) / CHECKPOINT
    named = dict(trainable(model))
    with safe_open(str(path), framework="pt") as f:
        keys = set(f.keys())
        missing = [n for n in named if f"param/{n}" not in keys]
        if missing:
            raise UsageError(
                f"checkpoint {path} does not match this model/selection (missing {missing[0]}); "
                "resume with the same --layers and --method, or start a new run."
            )
        with torch.no_grad():
            for name, p in named.items():
                p.copy_(f.get_tensor(f"param/{name}"))
                state = {k.split("/")[-1]: f.get_tensor(k) for k in keys if k.startswith(f"opt/{name}/")}
                if state:
                    optimizer.state[p] = state
        torch.set_rng_state(f.get_tensor("rng/torch"))
        meta = f.metadata()
    return int(meta["step"]), json.loads(meta["history"])


# ----------------------------------------------------------------------------- the loop


def train(
    model,
    chunks,
    cfg: TrainConfig,
    checkpoint_dir=None,
    resume: bool = True,
    stop_after: int | None = None,
    progress: bool = True,
    chunk_docs: list | None = None,
    reporter=None,
) -> dict:
    """Train the parameters of ``model`` that require grad on packed ``chunks``.

    ``chunks``: ``(input_ids, labels, attention_mask)`` lists from ``data.parallel.pack``.
    ``checkpoint_dir``: where checkpoints go; with ``resume`` an existing one is continued.
    ``stop_after``: stop (with a checkpoint) after this many steps of this call, as an
    interruption would. ``chunk_docs``: per chunk, the document indices it starts (``pack_docs``).
    ``reporter``: an ``improve.report_to.Reporter`` that gets each step's loss and learning rate.
    Returns the loss history, tokens, seconds, tokens per second, ``data_steps`` (the steps the data
    fills), and with ``chunk_docs`` ``documents_per_step``: the documents fed at each step (steps
    before a resumed checkpoint were fed by the earlier call; the schedule is deterministic).
    """
    import torch
    from tqdm.auto import tqdm

    cfg.check()
    if not chunks:
        raise UsageError("no training sequences; check --data and --languages.")
    params = [p for _, p in trainable(model)]
    if not params:
        raise UsageError("nothing to train: every parameter is frozen; check --layers.")
    data_steps = steps_in(len(chunks), cfg)
    if cfg.max_steps > data_steps:
        print(
            f"babelscope: the data holds {len(chunks)} sequences = {data_steps} steps, fewer than max_steps "
            f"{cfg.max_steps}; stopping at the end of the data (no wrap-around; repeat it with --epochs).",
            file=sys.stderr,
            flush=True,
        )
        cfg = replace(cfg, max_steps=data_steps)
    torch.manual_seed(cfg.seed)
    optimizer = torch.optim.AdamW(params, lr=cfg.lr, weight_decay=cfg.weight_decay, betas=(0.9, 0.95))
    start, history = 0, []
    if checkpoint_dir and resume and (Path(checkpoint_dir) / CHECKPOINT).exists():
        start, history = load_checkpoint(checkpoint_dir, model, optimizer)
    model.train()
    tokens, t0 = 0, time.perf_counter()
    bar = tqdm(range(start, cfg.max_steps), initial=start, total=cfg.max_steps, desc="finetune", disable=not progress)
    fed = [] if chunk_docs is None else [_docs_of(step, chunk_docs, cfg) for step in range(start)]
    for step in bar:
        batches = list(micro_batches(chunks, step, cfg))
        if chunk_docs is not None:
            fed.append(_docs_of(step, chunk_docs, cfg))
        n_label = sum(int((y[:, 1:] != -100).sum()) for _, y, _ in batches)
        total = 0.0
        for ids, labels, mask in batches:
            loss = lm_loss_sum(model, ids, labels, mask) / max(1, n_label)  # token mean over the whole step
            loss.backward()
            total += loss.item()
            tokens += int(mask.sum())
        if cfg.max_grad_norm:
            torch.nn.utils.clip_grad_norm_(params, cfg.max_grad_norm)
        lr = lr_at(step, cfg)
        for group in optimizer.param_groups:
            group["lr"] = lr
        optimizer.step()
        optimizer.zero_grad(set_to_none=True)
        history.append(round(total, 6))
        bar.set_postfix(loss=f"{total:.3f}")
        done = step + 1
        if reporter is not None:
            reporter.log({"train/loss": history[-1], "train/learning_rate": lr}, step=done)
        last = done == cfg.max_steps or (stop_after is not None and done - start >= stop_after)
        if checkpoint_dir and (last or (cfg.checkpoint_every and done % cfg.checkpoint_every == 0)):
            save_checkpoint(checkpoint_dir, model, optimizer, done, history)
        if last:
            break
    model.eval()
    seconds = time.perf_counter() - t0
    out = {} if chunk_docs is None else {"documents_per_step": fed}
    return {
        **out,
        "losses": history,
        "steps": len(history),
        "data_steps": data_steps,
        "tokens": tokens,
        "seconds": round(seconds, 3),
        "tokens_per_second": round(tokens / seconds, 2) if seconds else None,
        "config": asdict(cfg),
    }


def _docs_of(step: int, chunk_docs: list, cfg: TrainConfig) -> list[int]:
    """The document indices that start in the sequences of step ``step``."""
    return [d for rows in rows_of(step, len(chunk_docs), cfg) for r in rows for d in chunk_docs[r]]
