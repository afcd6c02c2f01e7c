"""Greedy decoding with a KV cache, the whole batch one step at a time: what ``generate_until`` runs.

``greedy_tokens(decoder, prompts, max_new_tokens, stop)`` returns, per prompt, the greedy tokens
Hugging Face ``generate(do_sample=False)`` gives for it, with four savings that leave them unchanged:

* the rows of a batch are decoded together, so the weights are streamed once per step for all of them;
* a row that stops (an EOS id, its ``stop(row, tokens)`` test, or the token limit) leaves the batch
  and its cache rows are dropped (``Cache.batch_select_indices``), instead of riding along to the
  longest row; a cache that cannot drop rows keeps them and their tokens are ignored;
* the token prefix every prompt of the batch shares (few-shot instruction, schema, examples) goes
  through the decoder once; each row's cache is that one prefix, shifted right by its own left
  padding, so every row stays one contiguous left-padded sequence (HF's own masks, positions and
  sliding windows apply unchanged, Gemma 3's hybrid cache included);
* the next token is an argmax over vocabulary blocks (``Unembedding.argmax``): the ``[B, V]``
  logits never exist at once, and the family's logit scale / soft-cap is applied as in the model.
"""

from __future__ import annotations

import functools
import time
from collections.abc import Callable
from dataclasses import dataclass

import torch
from tqdm.auto import tqdm

from babelscope.models.forward import Unembedding, pad_batch, pad_id_of

MIN_SHARED_PREFIX = 16  # shorter shared prefixes are not worth a separate pass
VOCAB_BLOCK = 16384  # vocabulary rows per argmax block on a CPU (a [B, 16384] fp32 block stays in cache)


@dataclass
class Decoder:
    """What decoding needs from a model: its decoder body, unembedding, pad and EOS ids."""

    model: torch.nn.Module
    body: torch.nn.Module
    unembedding: Unembedding
    pad_id: int
    eos_ids: frozenset[int]
    n_layers: int
    vocab_block: int | None = VOCAB_BLOCK

    @classmethod
    def of(cls, model, tokenizer) -> Decoder:
        """The decoder of a causal LM; EOS ids as ``generate`` takes them (generation config first)."""
        from babelscope.models.adapters import get_adapter

        eos = getattr(getattr(model, "generation_config", None), "eos_token_id", None)
        eos = model.config.eos_token_id if eos is None else eos
        eos = tokenizer.eos_token_id if eos is None else eos
        eos_ids = frozenset([eos] if isinstance(eos, int) else (eos or []))
        device = next(model.parameters()).device
        adapter = get_adapter(model)
        return cls(model, adapter.body(model), Unembedding(model), pad_id_of(tokenizer), eos_ids, adapter.n_layers,
                   VOCAB_BLOCK if device.type == "cpu" else None)

    @property
    def device(self) -> torch.device:
        return next(self.model.parameters()).device


class StopStrings:
    """``stop(row, tokens)``: the decoded tokens contain one of ``until`` (lm-eval decodes with special
    tokens when it checks, and cuts the text decoded without them: ``cut_at_stops``)."""

    def __init__(self, tokenizer, until: list[str]):
        self.tokenizer, self.until = tokenizer, [s for s in until if s]

    def __call__(self, row: int, tokens: list[int]) -> bool:
        text = self.tokenizer.decode(tokens, skip_special_tokens=False)
        return any(s in text for s in self.until)


def cut_at_stops(text: str, until: list[str]) -> str:
    """``text`` up to the first occurrence of each stop string in turn (lm-eval's post-processing)."""
    for stop in until:
        if stop:
            text = text.split(stop)[0]
    return text


class GenerationBar:
    """Progress in items (a row counts when it ends), with the generated tokens per second."""

    def __init__(self, total: int, desc: str, disable: bool = False):
        self.bar = tqdm(total=total, desc=desc, unit="item", disable=disable, leave=False)
        self.tokens, self.start = 0, time.perf_counter()

    def done(self, row: int, tokens: list[int]) -> None:
        self.tokens += len(tokens)
        rate = self.tokens / max(time.perf_counter() - self.start, 1e-9)
        self.bar.set_postfix_str(f"{rate:.1f} tok/s", refresh=False)
        self.bar.update(1)

    def close(self) -> None:
        self.bar.close()


def shared_prefix(seqs: list[list[int]]) -> int:
    """Length of the longest token prefix common to every sequence."""
    first, n = seqs[0], min(len(s) for s in seqs)
    for s in seqs[1:]:
        k = 0
        while k < n and s[k] == first[k]:
            k += 1
        n = k
    return n


@functools.cache
def _buffer_layer_class():
    """``BufferLayer``: a full-attention cache layer (a ``DynamicLayer``) whose keys and values live in one
    buffer with room for ``capacity`` columns, so a step writes its column in place where
    ``DynamicLayer`` concatenates (a new allocation per step and layer). It keeps every column; a
    sliding window is the model's own sliding mask over whole rows, as with a plain ``DynamicLayer``."""
    from transformers.cache_utils import DynamicLayer

    class BufferLayer(DynamicLayer):
        def __init__(self, capacity: int):
            super().__init__()
            self.capacity, self.length, self.buffers = capacity, 0, []

        def update(self, key_states, value_states, *args, **kwargs):
            if not self.is_initialized:
                self.lazy_initialization(key_states, value_states)
                b, h = key_states.shape[:2]
                self.buffers = [s.new_empty(b, h, self.capacity, s.shape[-1]) for s in (key_states, value_states)]
            n = key_states.shape[-2]
            for buf, new in zip(self.buffers, (key_states, value_states), strict=True):
                buf[:, :, self.length : self.length + n] = new
            self.length += n
            self._views()
            return self.keys, self.values

        def _views(self):
            self.keys, self.values = (buf[:, :, : self.length] for buf in self.buffers)  # [B, H, length, d]

        def batch_select_indices(self, indices: torch.Tensor) -> None:
            if self.is_initialized:
                self.buffers = [buf[indices] for buf in self.buffers]
                self._views()

    return BufferLayer


def _new_cache(dec: Decoder, capacity: int):
    """A cache of ``BufferLayer``s, one per decoder layer, with room for ``capacity`` columns."""
    from transformers.cache_utils import Cache

    return Cache(layers=[_buffer_layer_class()(capacity) for _ in range(dec.n_layers)])


def _prefill(dec: Decoder, prompts: list[list[int]], max_new_tokens: int):
    """The batch's prompts through the body, left-padded: (cache, last hidden [B, D], mask [B, T], next pos [B])."""
    dev = dec.device
    n = min(len(p) for p in prompts)
    share = min(shared_prefix(prompts), n - 1) if len(prompts) > 1 else 0  # each row keeps >= 1 token to run
    padded = pad_batch(prompts, dec.pad_id, "left")
    ids, mask = padded["input_ids"], padded["attention_mask"]  # [B, T]
    pos = (mask.cumsum(-1) - 1).clamp(min=0)  # [B, T] positions inside each row, as generate sets them
    cache, start = _new_cache(dec, ids.shape[1] + max_new_tokens), 0
    if share >= MIN_SHARED_PREFIX:
        start = share  # the block starts there: every row's columns before it are padding or shared prefix
        _fill_shared(dec, cache, prompts, share)
    out = dec.body(input_ids=ids[:, start:].to(dev), attention_mask=mask.to(dev),
                   position_ids=pos[:, start:].to(dev), cache=cache, use_cache=True)
    return out.cache, out.last_hidden_state[:, -1], mask.to(dev), mask.sum(-1).to(dev)


def _fill_shared(dec: Decoder, cache, prompts: list[list[int]], share: int) -> None:
    """Fill ``cache`` with the first ``share`` columns of every left-padded row, from one pass over the prefix.

    Row r's columns [0, share) hold its left padding then its first ``share - pad_r`` tokens, all of
    them inside the shared prefix; their keys and values depend only on the prefix (causality), so
    they are the prefix's, shifted right by ``pad_r``. Padded columns get a copy of column 0 (masked).
    """
    from transformers import DynamicCache

    dev = dec.device
    prefix = torch.tensor([prompts[0][:share]], device=dev)  # [1, P]
    one = DynamicCache()  # full layers: a sliding layer must keep every prefix column for the shift
    dec.body(input_ids=prefix, cache=one, use_cache=True)
    width = max(len(p) for p in prompts)
    pads = torch.tensor([width - len(p) for p in prompts], device=dev)  # [B]
    index = (torch.arange(share, device=dev)[None, :] - pads[:, None]).clamp(min=0)  # [B, P] prefix column
    for i, layer in enumerate(one.layers):
        keys, values = layer.keys, layer.values  # [1, H, P, d]
        b, h, d = len(prompts), keys.shape[1], keys.shape[-1]
        gather = index[:, None, :, None].expand(b, h, share, d)  # [B, H, P, d]
        cache.update(keys.expand(b, -1, -1, -1).gather(2, gather), values.expand(b, -1, -1, -1).gather(2, gather), i)


def _keep_rows(cache, keep: torch.Tensor) -> bool:
    """Drop every cache row but ``keep``; False when this cache cannot (its rows then stay)."""
    try:
        cache.batch_select_indices(keep)
    except (AttributeError, NotImplementedError):
        return False
    return True


@torch.inference_mode()
def greedy_tokens(
    dec: Decoder,
    prompts: list[list[int]],
    max_new_tokens: int,
    stop: Callable[[int, list[int]], bool] | None = None,
    on_done: Callable[[int, list[int]], None] | None = None,
) -> list[list[int]]:
    """Greedy continuations of ``prompts`` (one batch), decoded together.

    A row ends with an EOS id (kept as its last token, as ``generate`` returns it), when
    ``stop(row, tokens)`` is true, or after ``max_new_tokens``; ``on_done(row, tokens)`` is called
    as each row ends.
    """
    out: list[list[int]] = [[] for _ in prompts]
    if max_new_tokens < 1:
        for r in range(len(prompts) if on_done else 0):
            on_done(r, out[r])
        return out
    cache, hidden, mask, pos = _prefill(dec, prompts, max_new_tokens)
    live = torch.arange(len(prompts))  # [b] row of each batch slot
    ended = torch.zeros(len(prompts), dtype=torch.bool)  # [b] rows kept in a cache that cannot drop them
    while True:
        nxt = dec.unembedding.argmax(hidden, dec.vocab_block).cpu()  # [b]
        finished = []
        for slot, (row, tok) in enumerate(zip(live.tolist(), nxt.tolist(), strict=True)):
            if ended[slot]:
                continue
            out[row].append(tok)
            if tok in dec.eos_ids or len(out[row]) >= max_new_tokens or (stop is not None and stop(row, out[row])):
                finished.append(slot)
                if on_done is not None:
                    on_done(row, out[row])
        if finished:
            keep = torch.tensor([s for s in range(len(live)) if s not in set(finished)], dtype=torch.long)
            if len(keep) == 0 or bool(ended[keep].all()):
                return out
            if _keep_rows(cache, keep.to(mask.device)):
                live, ended, nxt = live[keep], ended[keep], nxt[keep]
                mask, pos = mask[keep.to(mask.device)], pos[keep.to(pos.device)]
            else:
                ended[torch.tensor(finished)] = True
        mask = torch.cat([mask, torch.ones_like(mask[:, :1])], 1)  # [b, T+1]
        hidden = dec.body(input_ids=nxt[:, None].to(mask.device), attention_mask=mask, position_ids=pos[:, None],
                          cache=cache, use_cache=True).last_hidden_state[:, -1]  # [b, D]
        pos = pos + 1
