"""PLAST on a vision-language model (Fan et al. 2025, arXiv 2508.18381): train only the chosen
decoder layers of the language model on question-translation pairs *with the image*, and measure
multiple-choice accuracy per language on held-out items before and after.

A pair is the item's image, the question in a target language and its pivot (English) version::

    <image> fr: De quelle couleur est la forme sur l'image ?\\nen:   ->   " What colour is the shape in the picture?"

The loss covers the completion only. The loop is the one of ``improve.train_loop`` (AdamW with
its betas, linear warmup then decay, gradient accumulation, clipping) over image + text micro-batches;
it keeps no checkpoints (the runs it serves are short). Only parameters with ``requires_grad``
move: ``layer_finetune.freeze_except`` leaves the chosen decoder layers, so the vision tower, the
projector, the embeddings and the head stay bit-identical.
"""

from __future__ import annotations

import math
import time
from dataclasses import asdict, dataclass, replace

import torch
from tqdm.auto import tqdm

from babelscope.data.parallel import lang_tag
from babelscope.errors import UsageError
from babelscope.improve.layer_finetune import freeze_except
from babelscope.improve.train_loop import TrainConfig, lr_at, rows_of
from babelscope.models import vision


@dataclass(frozen=True)
class Pair:
    item: object  # data.visual.VisualItem
    direction: str  # "fra_Latn>eng_Latn"
    prompt: str
    completion: str


def qt_pairs(items, pivot: str, languages: list[str]) -> list[Pair]:
    """Question-translation pairs, item by item, each of ``languages`` other than ``pivot`` in turn."""
    return [Pair(it, f"{t}>{pivot}", f"{lang_tag(t)}: {it.questions[t]}\n{lang_tag(pivot)}:", f" {it.questions[pivot]}")
            for it in items for t in languages if t != pivot and t in it.questions and pivot in it.questions]


def budget(pairs: list[Pair], epochs: float, max_steps: int | None, per_step: int) -> list[Pair]:
    """The pairs fed: ``epochs`` passes (a fraction: the first share), capped at ``max_steps`` steps."""
    n = round(len(pairs) * epochs)
    if max_steps:
        n = min(n, max_steps * per_step)
    return [pairs[i % len(pairs)] for i in range(n)]


def _micro_batch(loaded, pairs: list[Pair]):
    return vision.encode(loaded, "pairs", [p.item.pil() for p in pairs], [p.prompt for p in pairs],
                         [p.completion for p in pairs])


def train(loaded, pairs: list[Pair], cfg: TrainConfig, progress: bool = True) -> dict:
    """Train the parameters of ``loaded.model`` that require grad on ``pairs`` (in order, once)."""
    model = loaded.model
    params = [p for p in model.parameters() if p.requires_grad]
    if not params or not pairs:
        raise UsageError("nothing to train: no trainable layer or no question-translation pair; check --layers, "
                         "--languages and --data.")
    cfg = replace(cfg, max_steps=math.ceil(len(pairs) / (cfg.batch_size * cfg.grad_accum)))
    torch.manual_seed(cfg.seed)
    optimizer = torch.optim.AdamW(params, lr=cfg.lr, weight_decay=cfg.weight_decay, betas=(0.9, 0.95))
    history, tokens, t0 = [], 0, time.perf_counter()
    model.train()
    for step in tqdm(range(cfg.max_steps), desc="finetune (image + question pairs)", disable=not progress):
        batches = [_micro_batch(loaded, [pairs[r] for r in rows]) for rows in rows_of(step, len(pairs), cfg)]
        n_label = sum(int(b.completion_mask()[:, 1:].sum()) for b in batches)
        total = 0.0
        for batch in batches:
            loss, _ = vision.completion_loss(model, batch)
            loss = loss / max(1, n_label)  # token mean over the whole step
            loss.backward()
            total += loss.item()
            tokens += int(batch.attention_mask.sum())
        if cfg.max_grad_norm:
            torch.nn.utils.clip_grad_norm_(params, cfg.max_grad_norm)
        for group in optimizer.param_groups:
            group["lr"] = lr_at(step, cfg)
        optimizer.step()
        optimizer.zero_grad(set_to_none=True)
        history.append(round(total, 6))
    model.eval()
    seconds = time.perf_counter() - t0
    return {"losses": history, "steps": len(history), "data_steps": cfg.max_steps, "tokens": tokens,
            "seconds": round(seconds, 3), "tokens_per_second": round(tokens / seconds, 2) if seconds else None,
            "config": asdict(cfg)}


def train_layers(loaded, layers: list[int], pairs: list[Pair], cfg: TrainConfig, epochs: float = 1.0,
                 max_steps: int | None = None) -> tuple[dict, dict, list[Pair]]:
    """(trainable share, training record, pairs fed): only ``layers`` train, on ``epochs`` passes over
    ``pairs`` capped at ``max_steps``; the model ends frozen."""
    share = freeze_except(loaded, layers)
    fed = budget(pairs, epochs, max_steps, cfg.batch_size * cfg.grad_accum)
    trained = train(loaded, fed, cfg)
    for p in loaded.model.parameters():
        p.requires_grad_(False)
    return share, trained, fed
