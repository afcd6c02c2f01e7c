"""Forward-pass plumbing shared by every method: padding, the pad id, and the unembedding.

* ``pad_id_of(tokenizer)``: the id that fills padded positions (pad, else EOS, else 0); padded
  positions are masked or never scored, so the id only has to exist in the vocabulary.
* ``pad_batch(seqs, pad_id, side)``: ``input_ids`` and ``attention_mask`` [B, T], right-padded
  (training and statistics: padding only follows real tokens) or left-padded (generation and
  cached contexts: every row ends at the last column).
* ``length_batches(seqs, batch_size, pad_id)``: padded batches of similar length.
* ``Unembedding(model)`` / ``unembed(model, hidden)``: the model's own output projection on
  hidden states that already went through the final norm (what the decoder body returns), with
  Cohere's ``logit_scale`` and the Gemma 2/3 final ``final_logit_softcapping`` applied, in
  float32, exactly as the model's forward computes its logits. ``vocab`` restricts it to a
  block of vocabulary rows, so a scorer can stream over the vocabulary; ``.argmax(hidden, block)``
  is the greedy token over such blocks (generation), without the full logits, and on a CPU with
  a large float32 head over the few rows ``int8_screen`` cannot rule out (the same token).
* ``weight_major_linears(model)``: while active, a plain ``nn.Linear`` on a CPU computes an
  input of ``MIN_ROWS`` to ``FEW_ROWS`` rows as ``(W @ x.T).T`` (what a decoding step sends), the
  layout the CPU's matrix kernel streams a weight through fastest for few rows; same values up
  to float rounding, the model's own modules otherwise untouched.
* ``frozen(model)``: parameters without gradients for a block (gradients flow only to inputs
  such as a head mask).
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager

import torch
import torch.nn.functional as F

from babelscope.models.int8_screen import Int8Screen, screen_of

SIDES = ("right", "left")
FEW_ROWS = 64  # inputs up to this many rows take the weight-major product (a decoding step: rows x new tokens)
MIN_ROWS = 8  # ... and from this many: fewer rows stream faster through F.linear (a gemv-like kernel)


def pad_id_of(tokenizer) -> int:
    """The padding id: the tokenizer's pad token, else its EOS token, else 0."""
    for tid in (tokenizer.pad_token_id, tokenizer.eos_token_id):
        if tid is not None:
            return tid
    return 0


def pad_batch(seqs, pad_id: int, side: str = "right", width: int | None = None) -> dict[str, torch.Tensor]:
    """``{"input_ids", "attention_mask"}`` [B, T] for token id sequences, padded on ``side``.

    ``width`` (default: the longest sequence) may exceed the longest sequence, e.g. to align
    widths for an accelerator kernel; the extra columns are padding as well.
    """
    if side not in SIDES:
        raise ValueError(f"side must be one of {SIDES}, got {side!r}")
    width = max(len(s) for s in seqs) if width is None else width
    ids = torch.full((len(seqs), width), pad_id, dtype=torch.long)  # [B, T]
    mask = torch.zeros((len(seqs), width), dtype=torch.long)  # [B, T] 1 = real token
    for r, s in enumerate(seqs):
        cols = slice(0, len(s)) if side == "right" else slice(width - len(s), width)
        ids[r, cols] = torch.as_tensor(s, dtype=torch.long)
        mask[r, cols] = 1
    return {"input_ids": ids, "attention_mask": mask}


def length_batches(seqs, batch_size: int, pad_id: int, sort: bool = True) -> Iterator[dict[str, torch.Tensor]]:
    """Right-padded batches; with ``sort`` longest first (little padding, and OOM shows early)."""
    order = sorted(range(len(seqs)), key=lambda i: -len(seqs[i])) if sort else list(range(len(seqs)))
    for start in range(0, len(order), batch_size):
        yield pad_batch([seqs[i] for i in order[start : start + batch_size]], pad_id)


class Unembedding:
    """A model's output projection with its logit scale and soft-cap: hidden [P, D] -> logits [P, V]."""

    def __init__(self, model):
        self.lm_head = model.get_output_embeddings()
        self.softcap = getattr(model.config, "final_logit_softcapping", None)  # Gemma 2/3
        self.logit_scale = getattr(model, "logit_scale", None)  # Cohere
        self.n_vocab = self.lm_head.weight.shape[0]

    @property
    def blockable(self) -> bool:
        """Whether ``vocab`` blocks are possible (a plain ``nn.Linear`` head)."""
        return type(self.lm_head) is torch.nn.Linear

    def __call__(self, hidden: torch.Tensor, vocab: slice | torch.Tensor | None = None) -> torch.Tensor:
        """Float32 logits of ``hidden`` (post final norm); ``vocab`` selects a block of rows (a slice or ids)."""
        if vocab is None:
            logits = self.lm_head(hidden).float()  # [P, V]
        else:
            bias = self.lm_head.bias
            logits = F.linear(hidden, self.lm_head.weight[vocab], None if bias is None else bias[vocab]).float()
        return self._scaled(logits)

    def _scaled(self, logits: torch.Tensor) -> torch.Tensor:
        """The family's logit scale and soft-cap applied to float32 ``logits``."""
        if self.logit_scale is not None:
            logits = logits * self.logit_scale
        if self.softcap is not None:
            logits = torch.tanh(logits / self.softcap) * self.softcap
        return logits

    def argmax(self, hidden: torch.Tensor, block: int | None = None) -> torch.Tensor:
        """Greedy token ids [P] of ``hidden`` [P, D], over blocks of ``block`` vocabulary rows so the
        [P, V] logits never exist at once; the first maximum wins, as ``torch.argmax``.

        A block is computed as ``W_block @ hidden.T`` ([block, P]): for the few rows of a decoding
        step this streams the weight through the CPU's matrix kernel 2-3x faster than
        ``F.linear(hidden, W_block)`` (``benchmarks/RESULTS.md``). Once a large float32 head has
        been used a few times, its int8 screen (``models.int8_screen``) rules out all but a few
        rows first, and only those are computed: the same answer, a quarter of the weight read."""
        screen = self._screen(hidden) if block is not None else None
        if screen is not None:
            return self._screened_argmax(screen, hidden)
        if block is None or block >= self.n_vocab or not self.blockable:
            return self(hidden).argmax(-1)
        best = torch.full((hidden.shape[0],), -torch.inf, device=hidden.device)  # [P] running maximum
        arg = torch.zeros(hidden.shape[0], dtype=torch.long, device=hidden.device)  # [P]
        weight, bias, columns = self.lm_head.weight, self.lm_head.bias, hidden.t()  # columns [D, P]
        for v in range(0, self.n_vocab, block):
            logits = torch.mm(weight[v : v + block], columns)  # [block, P]
            if bias is not None:
                logits = logits + bias[v : v + block, None]
            top, idx = self._scaled(logits.float()).max(0)  # [P], [P]
            better = top > best  # a tie keeps the earlier block's (lower) id
            arg = torch.where(better, idx + v, arg)
            best = torch.where(better, top, best)
        return arg

    def _screen(self, hidden: torch.Tensor) -> Int8Screen | None:
        """The head's int8 screen where it applies: float32 states, no soft-cap (its tanh may merge
        logits the screen tells apart), a positive logit scale, finite states."""
        if self.softcap is not None or (self.logit_scale or 1) <= 0 or hidden.dtype != torch.float32:
            return None
        screen = screen_of(self.lm_head, hidden)
        return screen if screen is not None and bool(hidden.isfinite().all()) else None

    def _screened_argmax(self, screen: Int8Screen, hidden: torch.Tensor) -> torch.Tensor:
        """The argmax among the rows the int8 screen cannot rule out, their logits in float32."""
        rows, mask = screen.candidates(hidden, self.lm_head.bias)  # [C], [C, P]
        logits = self(hidden, rows).masked_fill_(~mask.t(), -torch.inf)  # [P, C]
        return rows[logits.argmax(1)]  # rows ascend: a tie keeps the lower id


def unembed(model, hidden: torch.Tensor, vocab: slice | None = None) -> torch.Tensor:
    """The model's logits for final hidden states ``hidden`` [..., D] -> [..., V] (float32).

    ``model``: a ``PreTrainedModel`` or a ``LoadedModel``. ``hidden`` is what the decoder body
    returns (after the final norm); for a logit lens on an inner layer apply
    ``adapter.final_norm(model)`` first.
    """
    return Unembedding(getattr(model, "model", model) if hasattr(model, "adapter") else model)(hidden, vocab)


def _weight_major(layer: torch.nn.Linear, x: torch.Tensor) -> torch.Tensor:
    rows = x.reshape(-1, x.shape[-1])  # [N, in]
    if not MIN_ROWS <= rows.shape[0] <= FEW_ROWS:
        return F.linear(x, layer.weight, layer.bias)
    out = torch.mm(layer.weight, rows.t()).t().contiguous()  # [N, out]
    if layer.bias is not None:
        out = out + layer.bias
    return out.reshape(*x.shape[:-1], out.shape[-1])


@contextmanager
def weight_major_linears(model: torch.nn.Module) -> Iterator[None]:
    """Few-row inputs of ``model``'s plain CPU ``nn.Linear`` layers as ``(W @ x.T).T`` while active.

    On the 2-core CPUs measured (``benchmarks/RESULTS.md``) the matrix kernel streams a weight
    1.2-1.7x faster this way than as ``x @ W.T`` for 8-40 rows; larger inputs keep ``F.linear``,
    and so do inputs of 1-7 rows, which ``F.linear`` streams up to 1.9x faster (Intel Xeon).
    Subclasses (LoRA, quantized layers) and other devices are left as they are.
    """
    layers = [m for m in model.modules() if type(m) is torch.nn.Linear and m.weight.device.type == "cpu"
              and "forward" not in vars(m)]  # a layer with its own forward (accelerate's offload hooks) keeps it
    for layer in layers:
        layer.forward = _weight_major.__get__(layer)
    try:
        yield
    finally:
        for layer in layers:
            del layer.forward


@contextmanager
def frozen(model):
    """Parameters without gradients for the body of the block (flags restored after)."""
    flags = [(p, p.requires_grad) for p in model.parameters()]
    for p, _ in flags:
        p.requires_grad_(False)
    try:
        with torch.enable_grad():
            yield
    finally:
        for p, flag in flags:
            p.requires_grad_(flag)
