"""Soft head mask (LAHIS paper, ``Linuxin-xxx/LAHIS:src/lan_head_mask.py``): a handful of trainable
scalars, one per selected attention head, multiplied into that head's slice of the o_proj input.

* Which heads: the top ``n`` heads by LAHIS score, ``n = max(MIN_HEADS, int(top_rate * L * H))``.
  ``int`` (floor) is the official rounding: 20 heads on a 32 x 32 model, 13 on Llama-3.2-3B
  (28 x 24); the floor of 2 keeps small models trainable (Gemma 3 270M: 18 x 4 = 72 heads,
  ``int(0.02 * 72) = 1`` -> 2). ``num_heads`` overrides it.
* Parameters: a vector of ``n`` values (init 1) scattered into a ones [L, H] tensor on every
  forward, so the other heads stay exactly 1 and are not parameters at all (the official code
  keeps a full mask and zeroes the other gradients; with an fp32 mask its weight decay would
  drift them). Values are unconstrained, as in the paper.
* Training: cross-entropy on answer tokens only (prompt positions ignored), AdamW lr 1e-2,
  weight decay 0.01 (on the trainable values only), 2 epochs, batch 1 by default, frozen model.
* File: a tiny safetensors with ``heads`` (flat ids, layer * H + head) and ``values``; the
  metadata holds the model geometry, languages and training settings.

This module trains the mask. The mask itself (``SoftHeadMask``, its file) and applying it at run
time (``masked_heads``, ``apply_head_mask`` / ``remove_head_mask``, used by ``load_model(...,
head_mask=path)``) live in ``babelscope.models.head_mask``.
"""

from __future__ import annotations

import random

import torch
from tqdm.auto import tqdm

from babelscope.errors import UsageError
from babelscope.measure.engine import Engine
from babelscope.models.forward import frozen, pad_batch
from babelscope.models.head_mask import SoftHeadMask, masked_heads

TOP_RATE = 0.02  # share of all heads that get a trainable entry (the paper's 2%)
MIN_HEADS = 2  # at least this many trainable heads on small models (see module docstring)
EPOCHS = 2  # passes over the training pairs (paper)
LR = 1e-2  # AdamW learning rate (paper)
WEIGHT_DECAY = 0.01  # AdamW default, applied to the trainable values only
TRAIN_BATCH_SIZE = 1  # pairs per optimiser step (paper: 1)
MAX_LENGTH = 512  # prompt + answer tokens kept (the prompt is cut from the left)


def n_trainable(n_layers: int, n_heads: int, top_rate: float = TOP_RATE, num_heads: int | None = None) -> int:
    """How many heads get a trainable entry (see the rounding rule in the module docstring)."""
    total = n_layers * n_heads
    if num_heads is not None:
        if not 1 <= num_heads <= total:
            raise UsageError(f"--num_heads must be between 1 and {total} (layers x heads), got {num_heads}.")
        return num_heads
    if not 0.0 < top_rate <= 1.0:
        raise UsageError(f"--top_rate must be in (0, 1], got {top_rate}.")
    return min(total, max(MIN_HEADS, int(top_rate * total)))


# --------------------------------------------------------------------------- training on answer tokens


def encode_pairs(engine, pairs: list[tuple[str, str]], max_length: int = MAX_LENGTH) -> list[tuple[list, list]]:
    """(prompt ids, answer ids) per pair, split as lm-eval splits a context and continuation."""
    out = []
    for prompt, answer in pairs:
        ctx, cont = engine.encode_pair(prompt, answer)
        if not cont:
            continue
        ctx = ctx[-max(1, max_length - len(cont)) :]
        out.append((ctx, cont[:max_length]))
    return out


def answer_loss(engine, encoded: list[tuple[list, list]]) -> torch.Tensor:
    """Each pair's mean answer-token cross-entropy, [B]; logits only at answer positions."""
    seqs = [c + a for c, a in encoded]
    padded = pad_batch(seqs, engine.pad_id)  # [B, T] right-padded
    ids, att = padded["input_ids"], padded["attention_mask"]
    rows, pos, tgt = [], [], []
    for r, (ctx, ans) in enumerate(encoded):
        for j, tok in enumerate(ans):
            rows.append(r)
            pos.append(len(ctx) + j - 1)  # the position that predicts answer token j
            tgt.append(tok)
    device = engine.device
    hidden = engine.body(input_ids=ids.to(device), attention_mask=att.to(device)).last_hidden_state  # [B, T, D]
    rows_t, pos_t = torch.tensor(rows, device=device), torch.tensor(pos, device=device)  # [P], [P]
    logits = engine.head(hidden[rows_t, pos_t])  # [P, V] float32 (models.forward.Unembedding)
    ce = torch.nn.functional.cross_entropy(logits, torch.tensor(tgt, device=device), reduction="none")  # [P]
    sums = torch.zeros(len(seqs), device=device).index_add(0, rows_t, ce)  # [B]
    counts = torch.zeros(len(seqs), device=device).index_add(0, rows_t, torch.ones_like(ce))  # [B]
    return sums / counts


def train_mask(
    loaded,
    mask: SoftHeadMask,
    pairs: list[tuple[str, str]],
    epochs: int = EPOCHS,
    lr: float = LR,
    batch_size: int = TRAIN_BATCH_SIZE,
    seed: int = 0,
    show_progress: bool = True,
    reporter=None,
    tag: str = "train",
) -> list[float]:
    """Train ``mask.values`` on answer tokens of ``(prompt, answer)`` pairs; returns the loss per step.

    ``reporter`` (``improve.report_to.Reporter``) gets ``<tag>/loss`` and ``<tag>/learning_rate`` per step."""
    if not pairs:
        raise UsageError("no (prompt, answer) pairs to train the head mask on; give training data.")
    engine = Engine(loaded, progress=False)
    encoded = encode_pairs(engine, pairs)
    mask.to(loaded.device)
    opt = torch.optim.AdamW([mask.values], lr=lr, weight_decay=WEIGHT_DECAY)
    rng = random.Random(seed)
    losses = []
    steps = epochs * ((len(encoded) + batch_size - 1) // batch_size)
    bar = tqdm(total=steps, desc="train head mask", disable=not show_progress)
    with frozen(loaded.model):
        for _ in range(epochs):
            order = list(range(len(encoded)))
            rng.shuffle(order)
            for start in range(0, len(order), batch_size):
                chunk = [encoded[i] for i in order[start : start + batch_size]]
                with masked_heads(loaded, mask.full()):
                    loss = answer_loss(engine, chunk).mean()
                opt.zero_grad()
                loss.backward()
                opt.step()
                losses.append(float(loss.detach()))
                if reporter is not None:
                    reporter.log({f"{tag}/loss": losses[-1], f"{tag}/learning_rate": lr}, step=len(losses))
                bar.update(1)
                bar.set_postfix(loss=f"{losses[-1]:.3f}")
    bar.close()
    return losses
