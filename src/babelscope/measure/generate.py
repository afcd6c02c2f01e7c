"""Greedy decoding with a KV cache, many rows one step at a time: what ``generate_until`` runs.

``greedy_tokens(decoder, prompts, max_new_tokens, stop, rows=8)`` returns, per prompt, the greedy
tokens Hugging Face ``generate(do_sample=False)`` gives for it (tested on every supported family),
with these savings, none of which changes them:

* up to ``rows`` rows are decoded together, so the weights are read once per step for all of them;
* a row that ends (an EOS id, its ``stop(row, tokens)`` test, or the token limit) leaves the batch
  and its cache rows are dropped, and a waiting prompt takes its place (continuous batching), so
  a call takes about (generated tokens / rows) steps instead of running each batch to its longest row;
* the token prefix the prompts share (few-shot instruction, schema, examples) goes through the
  decoder once, and runs of neighbouring prompts extend it by their own longer common prefixes,
  all in one more (right-padded) pass; a row's cache starts as its run's prefix shifted right by
  the row's own left padding, so every row stays one contiguous left-padded sequence and HF's own
  masks, positions and sliding windows apply unchanged;
* each layer's keys and values live in one preallocated buffer (``kv_cache``: a write per step,
  no concatenation). Sliding-window layers (Gemma 2/3, Mistral) keep every column too and the
  model's sliding mask hides the old ones: exact, at the cost of attending over masked columns
  once a row outgrows the window;
* each step checks, besides each row's next token, up to ``draft`` tokens guessed by prompt
  lookup (``prompt_lookup``: what followed the latest earlier occurrence of the row's last
  tokens) and keeps those greedy decoding confirms, plus greedy's own next token: exact
  speculative decoding, fewer steps where answers copy from their prompt. Rows that took fewer
  tokens shift right (``BufferLayer.realign``) so the batch stays left-padded;
* the next token is an argmax over vocabulary blocks (``Unembedding.argmax``): the ``[B, V]``
  logits never exist at once, and the family's logit scale / soft-cap is applied as in the model;
  on a CPU a large float32 head is first screened in int8 (``models.int8_screen``: a rigorous
  error bound rules out all but a few rows, which are then computed in float32), a quarter of
  the weight read for the same token;
* on a CPU, linear layers take the few rows of a step in the layout the matrix kernel streams
  weights through fastest (``models.forward.weight_major_linears``).
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass

import torch
from tqdm.auto import tqdm

from babelscope.measure.kv_cache import buffer_cache
from babelscope.measure.prompt_lookup import DRAFT_MAX, DraftSchedule, PromptLookup
from babelscope.models.forward import Unembedding, pad_batch, pad_id_of, weight_major_linears

MIN_SHARED_PREFIX = 16  # shorter shared prefixes are not worth a separate pass
RUN_BLOCK = 32  # neighbouring prompts share a prefix pass while it leaves at most this many tokens of each
PASS_COST = 32  # a prefix pass reads every weight: counted as this many token positions more
ADMIT_PART = 4  # waiting prompts enter once a quarter of the rows are free (a prefill pass reads every weight)
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


class _Prefix:
    """The KV cache of the token prefix every prompt of a call shares, computed once (batch 1, full layers)
    and extended by the longer prefixes groups of rows share (``extended``: all of them in one pass)."""

    def __init__(self, dec: Decoder, prompts: list[list[int]]):
        from transformers import DynamicCache

        self.dec, self.tokens, self.cache = dec, [], DynamicCache()
        share = min(shared_prefix(prompts), min(len(p) for p in prompts) - 1)
        if share >= MIN_SHARED_PREFIX:
            self.tokens = list(prompts[0][:share])
            self._run(self.cache, self.tokens, 0)

    def _run(self, cache, tokens: list[int], start: int) -> None:
        dev = self.dec.device
        ids = torch.tensor([tokens[start:]], device=dev)  # [1, n]
        pos = torch.arange(start, len(tokens), device=dev)[None]  # [1, n]
        self.dec.body(input_ids=ids, position_ids=pos, cache=cache, use_cache=True)

    def extended(self, prefixes: list[list[int]]) -> list[list[tuple[torch.Tensor, torch.Tensor]]]:
        """Keys and values per layer ([1, H, len, d] each) of each of ``prefixes`` (which start with this
        prefix): the longer ones run on top of it together, in one right-padded pass."""
        from transformers import DynamicCache

        n, dev = len(self.tokens), self.dec.device
        kv = [[(layer.keys, layer.values) for layer in self.cache.layers] if n else [] for _ in prefixes]
        longer = [i for i, p in enumerate(prefixes) if len(p) > n]
        if not longer:
            return kv
        cache = DynamicCache()
        for i, layer in enumerate(self.cache.layers if n else []):
            cache.update(*(t.expand(len(longer), -1, -1, -1) for t in (layer.keys, layer.values)), i)
        padded = pad_batch([prefixes[i][n:] for i in longer], self.dec.pad_id, "right")
        ids, mask = padded["input_ids"], padded["attention_mask"]  # [R, T]
        mask = torch.cat([mask.new_ones(len(longer), n), mask], 1)  # [R, n+T]
        pos = torch.arange(n, n + ids.shape[1])[None].expand(len(longer), -1)  # [R, T]
        self.dec.body(input_ids=ids.to(dev), attention_mask=mask.to(dev), position_ids=pos.to(dev),
                      cache=cache, use_cache=True)
        for j, i in enumerate(longer):
            end = len(prefixes[i])
            kv[i] = [(layer.keys[j : j + 1, :, :end], layer.values[j : j + 1, :, :end]) for layer in cache.layers]
        return kv


def _runs(prompts: list[list[int]], block: int) -> list[list[int]]:
    """Consecutive prompts cut into runs whose shared prefix leaves at most ``block`` tokens of any of them
    (a run of one keeps all but its last token in the prefix)."""
    runs: list[list[int]] = []
    for r, p in enumerate(prompts):
        if runs:
            members = [prompts[i] for i in runs[-1]] + [p]
            if _share(members) >= max(len(m) for m in members) - block:
                runs[-1].append(r)
                continue
        runs.append([r])
    return runs


def _cheaper_runs(prompts: list[list[int]]) -> list[list[int]]:
    """``_runs`` when their prefix pass (one right-padded pass for all runs, counted ``PASS_COST``
    positions more: it reads every weight) and the block after it cost fewer token positions than
    the wider block after the one prefix all prompts share; else one run."""
    one, runs = [list(range(len(prompts)))], _runs(prompts, RUN_BLOCK)

    def cost(groups):
        shares = [_share([prompts[i] for i in g]) for g in groups]
        block = max(len(prompts[i]) - sh for g, sh in zip(groups, shares, strict=True) for i in g)
        common = _share(prompts)
        passes = len(groups) * max(sh - common for sh in shares) + PASS_COST if len(groups) > 1 else 0
        return passes + len(prompts) * block

    return runs if len(runs) > 1 and cost(runs) < cost(one) else one


def _share(prompts: list[list[int]]) -> int:
    """The prefix ``prompts`` share, short of each one's last token (which must run to predict)."""
    return min(shared_prefix(prompts), min(len(p) for p in prompts) - 1)


def _prefill(dec: Decoder, prompts: list[list[int]], width: int, capacity: int, prefix: _Prefix):
    """Prompts left-padded to ``width`` through the body: (cache, last hidden [B, D], mask [B, W], next pos [B]).

    Runs of neighbouring prompts that share a long prefix get it from ``prefix`` (extended for all
    runs in one pass); each row's columns inside it are that cache shifted right by the row's
    left padding, and only the rest, the block, runs through the body here.
    """
    dev = dec.device
    padded = pad_batch(prompts, dec.pad_id, "left", width)
    ids, mask = padded["input_ids"], padded["attention_mask"]  # [B, W]
    pos = (mask.cumsum(-1) - 1).clamp(min=0)  # [B, W] positions inside each row, as generate sets them
    cache, start = buffer_cache(dec.n_layers, capacity), 0
    runs = _cheaper_runs(prompts)
    shares = [_share([prompts[i] for i in run]) for run in runs]
    if min(shares) >= MIN_SHARED_PREFIX:  # never shorter than the call's prefix: these prompts share it too
        start = width - max(len(prompts[i]) - sh for run, sh in zip(runs, shares, strict=True) for i in run)
        kv = prefix.extended([prompts[run[0]][:sh] for run, sh in zip(runs, shares, strict=True)])
        _fill_shared(dec, cache, prompts, list(zip(runs, kv, strict=True)), width, start)
    out = dec.body(input_ids=ids[:, start:].to(dev), attention_mask=mask.to(dev),
                   position_ids=pos[:, start:].to(dev), cache=cache, use_cache=True)
    return out.cache, out.last_hidden_state[:, -1], mask.to(dev), mask.sum(-1).to(dev)


def _fill_shared(dec: Decoder, cache, prompts: list[list[int]], shared, width: int, start: int) -> None:
    """Fill ``cache`` with the first ``start`` columns of every row left-padded to ``width``.

    Row r's columns [0, start) hold its left padding then its first tokens, all inside its run's
    shared prefix; their keys and values depend only on that prefix (causality), so they are the
    run's prefix keys and values (``shared``: (rows, per-layer (keys, values)) per run), shifted
    right by the row's padding. Padding columns get column 0 (masked).
    """
    dev = dec.device
    pads = torch.tensor([width - len(p) for p in prompts], device=dev)  # [B]
    index = (torch.arange(start, device=dev)[None, :] - pads[:, None]).clamp(min=0)  # [B, start] prefix column
    for i in range(dec.n_layers):
        kv = []
        for which in (0, 1):  # keys, values
            first = shared[0][1][i][which]  # [1, H, P, d]
            out = first.new_empty(len(prompts), first.shape[1], start, first.shape[-1])  # [B, H, start, d]
            for rows, run_kv in shared:
                src = run_kv[i][which]  # [1, H, P_run, d]
                at = torch.tensor(rows, device=dev)
                gather = index[at][:, None, :, None].expand(len(rows), src.shape[1], start, src.shape[-1])
                out[at] = src.expand(len(rows), -1, -1, -1).gather(2, gather)
            kv.append(out)
        cache.update(kv[0], kv[1], i)


class _Batch:
    """The rows being decoded: their cache, masks, row ids, and each row's pending token (emitted, not yet
    in the cache) with its position."""

    def __init__(self, cache, mask, pos, rows: list[int]):
        self.cache, self.mask, self.pos, self.rows = cache, mask, pos, rows
        self.last: list[int] = []  # each row's pending token
        self.added = 0  # columns the last step added to every row

    @property
    def width(self) -> int:
        return self.mask.shape[1]

    def join(self, other: _Batch) -> None:
        """Add ``other``'s rows (same width and capacity) to this batch."""
        for mine, theirs in zip(self.cache.layers, other.cache.layers, strict=True):
            mine.buffers = [torch.cat([a, b]) for a, b in zip(mine.buffers, theirs.buffers, strict=True)]
            mine._views()
        self.mask, self.pos = torch.cat([self.mask, other.mask]), torch.cat([self.pos, other.pos])
        self.rows, self.last = self.rows + other.rows, self.last + other.last

    def keep(self, slots: list[int]) -> None:
        if len(slots) == len(self.rows):
            return
        index = torch.tensor(slots, dtype=torch.long, device=self.mask.device)
        self.cache.batch_select_indices(index)
        self.mask, self.pos = self.mask[index], self.pos[index]
        self.rows, self.last = [self.rows[s] for s in slots], [self.last[s] for s in slots]

    def reserve(self, columns: int, slack: int) -> None:
        """Room for ``columns`` more columns: leading columns that are padding in every row go, and
        the buffers grow by ``slack`` more when that is not enough."""
        capacity = self.cache.layers[0].capacity
        if self.width + columns <= capacity:
            return
        first = int(self.mask.any(0).int().argmax())  # the first column some row uses
        capacity = max(capacity, self.width - first + columns + slack)
        for layer in self.cache.layers:
            layer.resize(first, capacity)
        self.mask = self.mask[:, first:]

    def step(self, dec: Decoder, drafts: list[list[int]]) -> torch.Tensor:
        """Each row's pending token, then its draft padded with the pad id, through the body:
        the hidden states [b, k+1, D]."""
        k = max(map(len, drafts))
        ids = [[t, *d] + [dec.pad_id] * (k - len(d)) for t, d in zip(self.last, drafts, strict=True)]
        self.reserve(k + 1, slack=64)
        self.mask = torch.cat([self.mask, self.mask.new_ones(len(ids), k + 1)], 1)  # [b, W+k+1]
        self.added = k + 1
        pos = self.pos[:, None] + torch.arange(k + 1, device=self.pos.device)  # [b, k+1]
        return dec.body(input_ids=torch.tensor(ids, device=self.mask.device), attention_mask=self.mask,
                        position_ids=pos, cache=self.cache, use_cache=True).last_hidden_state  # [b, k+1, D]

    def accept(self, taken: list[int]) -> None:
        """Keep the first ``taken[r]`` of the columns the last step added to row r (its pending token and
        the draft tokens greedy decoding confirmed); rows shift right so all end at one column again."""
        length = self.width - self.added + max(taken)
        shifts = [max(taken) - t for t in taken]
        for layer in self.cache.layers:
            layer.realign(shifts, length)
        dev = self.mask.device
        at = torch.arange(length, device=dev)[None] - torch.tensor(shifts, device=dev)[:, None]  # [b, length]
        self.mask = torch.where(at >= 0, self.mask.gather(1, at.clamp(min=0)), 0)  # [b, length]
        self.pos = self.pos + torch.tensor(taken, device=self.pos.device)


def _admit(dec: Decoder, prompts: list[list[int]], new: list[int], batch: _Batch | None, max_new_tokens: int,
           prefix: _Prefix) -> _Batch:
    """Prompts ``new`` prefilled at the running batch's width (no running batch: their own), each with
    its first greedy token as its pending token."""
    width = batch.width if batch else len(prompts[new[0]])
    capacity = batch.cache.layers[0].capacity if batch else width + max_new_tokens
    cache, hidden, mask, pos = _prefill(dec, [prompts[i] for i in new], width, capacity, prefix)
    joined = _Batch(cache, mask, pos, new)
    joined.last = dec.unembedding.argmax(hidden, dec.vocab_block).tolist()  # [n]
    return joined


def _agreeing(best: list[int], draft: list[int]) -> int:
    """How many draft tokens greedy decoding confirms: ``best[j]`` is its token after draft token j - 1."""
    n = 0
    while n < len(draft) and best[n] == draft[n]:
        n += 1
    return n


@torch.inference_mode()
def greedy_tokens(
    dec: Decoder,
    prompts: list[list[int]],
    max_new_tokens: int,
    stop: Callable[[int, list[int]], bool] | None = None,
    on_done: Callable[[int, list[int]], None] | None = None,
    rows: int | None = None,
    draft: int = DRAFT_MAX,
) -> list[list[int]]:
    """Greedy continuations of ``prompts``, at most ``rows`` (default: all) decoded together.

    Prompts enter longest first; once a quarter of the rows have ended, waiting prompts take
    their places (their prompts run on top of the shared prefix and join the running batch). A
    row ends with an EOS id (kept as its last token, as ``generate`` returns it), when
    ``stop(row, tokens)`` is true, or after ``max_new_tokens``; ``on_done(row, tokens)`` is
    called as each row ends. Each step checks up to ``draft`` tokens per row guessed by prompt
    lookup (``measure.prompt_lookup``; 0: none).
    """
    out: list[list[int]] = [[] for _ in prompts]
    if max_new_tokens < 1 or not prompts:
        for r in range(len(prompts) if on_done else 0):
            on_done(r, out[r])
        return out

    def ended(row: int, tokens: list[int]) -> bool:
        """Append ``tokens`` to ``row`` up to its end; whether it ended."""
        for tok in tokens:
            out[row].append(tok)
            if tok in dec.eos_ids or len(out[row]) >= max_new_tokens or (stop is not None and stop(row, out[row])):
                if on_done is not None:
                    on_done(row, out[row])
                return True
        return False

    queue = sorted(range(len(prompts)), key=lambda i: -len(prompts[i]))  # later rows fit the running width
    rows, prefix, batch = rows or len(prompts), _Prefix(dec, prompts), None
    lookups: dict[int, PromptLookup] = {}
    schedule = DraftSchedule(draft)
    with weight_major_linears(dec.body):  # decoding steps send few rows through each linear layer
        while queue or batch is not None:
            free = rows - (len(batch.rows) if batch else 0)
            if queue and free >= min(len(queue), -(-rows // ADMIT_PART)):
                new, queue = queue[:free], queue[free:]
                joined = _admit(dec, prompts, new, batch, max_new_tokens, prefix)
                joined.keep([s for s, (row, tok) in enumerate(zip(new, joined.last, strict=True))
                             if not ended(row, [tok])])
                if not joined.rows:
                    continue
                for row in joined.rows:
                    lookups[row] = PromptLookup(prompts[row] + out[row])
                if batch is None:
                    batch = joined
                else:
                    batch.join(joined)
            drafts = [lookups[row].draft(min(schedule.length(row), max_new_tokens - len(out[row]) - 1))
                      for row in batch.rows]
            hidden = batch.step(dec, drafts)  # [b, k+1, D]
            checked = torch.cat([hidden[s, : len(d) + 1] for s, d in enumerate(drafts)])  # [P, D]
            greedy = iter(dec.unembedding.argmax(checked, dec.vocab_block).tolist())  # [P]
            kept, taken = [], []
            for slot, (row, d) in enumerate(zip(batch.rows, drafts, strict=True)):
                best = [next(greedy) for _ in range(len(d) + 1)]  # greedy's token after the pending one, each draft
                agree = _agreeing(best, d)
                schedule.taken(row, len(d), agree)
                tokens = best[: agree + 1]  # the confirmed draft tokens, then greedy's own next token
                if not ended(row, tokens):
                    kept.append(slot)
                    taken.append(agree + 1)  # columns kept: the pending token and the confirmed draft
                    lookups[row].add(tokens)
                    batch.last[slot] = tokens[-1]
            if not kept:
                batch = None
                continue
            batch.keep(kept)
            batch.accept(taken)
    return out
