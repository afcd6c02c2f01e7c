"""The scoring core: ``loglikelihood``, ``rolling_loglikelihood`` and ``generate_until``.

Semantics follow lm-eval's ``HFLM`` exactly (context/continuation split, BOS handling, sums of
continuation log-probs, ``is_greedy``), with two savings that leave the numbers unchanged:

* requests that share a context are scored as one group: the context goes through the decoder
  body once (left-padded across groups) and every continuation runs on top of its KV cache, in
  chunks of similar length;
* the unembedding (``lm_head``, 262k rows for Gemma 3) is applied only at the positions whose
  log-probs are scored, never to the whole sequence, streaming over blocks of the vocabulary
  with an online logsumexp so the full logits never exist at once::

    engine = Engine(loaded, batch_size=8)
    engine.loglikelihood([("The capital of France is", " Paris")])   # [(-0.26, True)]
    engine.score_choices("2 + 2 =", [" 4", " 5"])                   # [-1.2, -3.4]
    engine.rolling_loglikelihood(["Some text."])                     # [(-21.3, 4)]
    engine.generate_until([("Q: 2+2?\\nA:", {"until": ["\\n"], "max_gen_toks": 8})])
"""

from __future__ import annotations

import copy

import torch
from tqdm.auto import tqdm

from babelscope.errors import DataError
from babelscope.measure.batch_size import AUTO, auto_rows
from babelscope.measure.generate import Decoder, GenerationBar, StopStrings, cut_at_stops, greedy_tokens
from babelscope.models.forward import Unembedding, pad_batch, pad_id_of

DEFAULT_BATCH_SIZE = 8  # contexts (request groups) per forward pass
HEAD_POSITIONS = 512  # hidden states per unembedding pass
DEFAULT_MAX_LENGTH = 2048  # lm-eval's fallback when neither config nor tokenizer gives a length
DEFAULT_MAX_GEN_TOKS = 256  # lm-eval's default generation budget
# On a CPU the time goes into matmuls, in proportion to the positions computed, so padding and
# cache misses are what to avoid (measured on 2 cores, benchmarks/RESULTS.md):
PAD_SLACK = 1.25  # continuation rows of similar length share a forward: padding within this factor
MIN_CHUNK_TOKENS = 256  # ... unless the forward is smaller than this (each forward streams all weights)
VOCAB_BLOCK = 8192  # vocabulary rows per lm_head block: a [512, 8192] fp32 block (16 MiB) stays in cache
# On an accelerator a small model's forward costs mostly its fixed launch overhead, so fewer,
# padded passes win (H100, Gemma 3 270M, 512 synthetic items: 1.6-2x faster than the CPU settings):
ACCELERATOR_PAD_SLACK = float("inf")  # one continuation pass per batch of contexts
ACCELERATOR_VOCAB_BLOCK = None  # the whole vocabulary in one lm_head call
# widths of masked passes rounded up to this on accelerators: CUDA's memory-efficient attention
# kernel mis-computes masked attention at key lengths of 1 mod 32 (pytorch#191937; seen here with
# torch 2.11 on an H100: the choices of one batch of 33-token contexts off by up to 1.5 nats)
ACCELERATOR_ALIGN = 8


def _max_length(model, tokenizer) -> int:
    """Context length as lm-eval resolves it: config attributes, then the tokenizer, then 2048."""
    config = getattr(model.config, "text_config", None) or model.config
    for attr in ("n_positions", "max_position_embeddings", "n_ctx"):
        value = getattr(config, attr, None)
        if value:
            return int(value)
    tok_max = getattr(tokenizer, "model_max_length", None)
    if tok_max and tok_max < 1e9:
        return int(tok_max)
    return DEFAULT_MAX_LENGTH


def _round_up(n: int, multiple: int) -> int:
    return -(-n // multiple) * multiple


def _length_chunks(lengths: list[int], slack: float | None = None, min_tokens: int | None = None) -> list[list[int]]:
    """Indices of the rows with length > 0, longest first, cut into chunks for one forward each.

    A row joins the current chunk while the chunk's padding stays within ``slack`` (padded tokens
    over real tokens) or the chunk is still smaller than ``min_tokens`` padded tokens.
    """
    slack = PAD_SLACK if slack is None else slack
    min_tokens = MIN_CHUNK_TOKENS if min_tokens is None else min_tokens
    rows = sorted((r for r, n in enumerate(lengths) if n > 0), key=lambda r: -lengths[r])
    chunks: list[list[int]] = []
    for r in rows:
        if chunks:
            padded = (len(chunks[-1]) + 1) * lengths[chunks[-1][0]]  # the chunk's longest row comes first
            if padded <= min_tokens or padded <= slack * (sum(lengths[x] for x in chunks[-1]) + lengths[r]):
                chunks[-1].append(r)
                continue
        chunks.append([r])
    return chunks


def _rows_of(cache, index: torch.Tensor):
    """A cache holding the rows ``index`` of ``cache``; ``cache`` itself is left untouched."""
    sub = copy.copy(cache)
    sub.layers = [copy.copy(layer) for layer in cache.layers]
    sub.reorder_cache(index)  # each layer swaps in index-selected copies of its key/value tensors
    return sub


class Engine:
    """Score and generate with a ``LoadedModel``; nothing but the scored logits is kept."""

    def __init__(
        self, loaded, batch_size: int | str = DEFAULT_BATCH_SIZE, progress: bool = True, max_length: int | None = None
    ):
        self.loaded = loaded
        self.model = loaded.model
        self.tokenizer = loaded.tokenizer
        self.batch_size = AUTO if batch_size == AUTO else max(1, int(batch_size))  # "auto": sized per batch
        self.progress = progress
        self.body = loaded.adapter.body(self.model)  # decoder without the unembedding
        self.unembedding = Unembedding(self.model)  # lm_head with logit scale and soft-cap
        config = self.model.config
        self.max_length = max_length or _max_length(self.model, self.tokenizer)
        self.sliding_window = getattr(config, "sliding_window", None)  # cache path only inside it
        tok = self.tokenizer
        self.prefix_token_id = tok.bos_token_id if tok.bos_token_id is not None else tok.eos_token_id
        self._prefix_text = tok.decode(self.prefix_token_id) if self.prefix_token_id is not None else None
        self.pad_id = pad_id_of(tok)
        self.decoder = Decoder.of(self.model, self.tokenizer)

    def _rows_per_batch(self, tokens_per_row: int) -> int:
        """``batch_size``, or under ``"auto"`` the most rows of this many tokens the memory budget holds."""
        return auto_rows(self.loaded, tokens_per_row) if self.batch_size == AUTO else self.batch_size

    @property
    def device(self):
        return self.loaded.device

    @property
    def on_cpu(self) -> bool:
        """CPU or accelerator: they get different batching settings (see the constants above)."""
        return self.device.type == "cpu"

    @property
    def align(self) -> int:
        return 1 if self.on_cpu else ACCELERATOR_ALIGN

    # ------------------------------------------------------------------ tokenisation (as HFLM)
    def tok_encode(self, text: str, add_special_tokens: bool | None = None) -> list[int]:
        """``tokenizer.encode`` with the tokenizer's own special tokens, none when ``text`` starts with BOS."""
        kwargs = {} if add_special_tokens is None else {"add_special_tokens": add_special_tokens}
        if add_special_tokens is None and self._prefix_text and text.startswith(self._prefix_text):
            kwargs = {"add_special_tokens": False}
        return self.tokenizer.encode(text, **kwargs)

    def encode_pair(self, context: str, continuation: str) -> tuple[list[int], list[int]]:
        """lm-eval's split: trailing context spaces move to the continuation; encode whole, split."""
        if context == "":
            cont = self.tok_encode(continuation, add_special_tokens=False)
            if cont and cont[0] == self.prefix_token_id:
                return cont[:1], cont[1:]
            return [self.prefix_token_id], cont
        n_spaces = len(context) - len(context.rstrip())
        if n_spaces:
            continuation = context[-n_spaces:] + continuation
            context = context[:-n_spaces]
        whole = self.tok_encode(context + continuation)
        ctx = self.tok_encode(context)
        return ctx, whole[len(ctx) :]

    # ------------------------------------------------------------------ public API
    def loglikelihood(self, requests: list[tuple[str, str]], desc: str = "loglikelihood") -> list[tuple[float, bool]]:
        """``(sum of continuation log-probs, is_greedy)`` per ``(context, continuation)``."""
        pairs = [self.encode_pair(ctx, cont) for ctx, cont in requests]
        for (ctx, cont), (_, ids) in zip(requests, pairs, strict=True):
            if not ids:
                raise DataError(
                    f"continuation {cont!r} of context {ctx[-40:]!r} is empty after tokenisation; "
                    "give every choice some text."
                )
        return self.score_tokens(pairs, desc=desc)

    def score_choices(self, context: str, continuations: list[str]) -> list[float]:
        """Log-likelihood of each continuation after ``context`` (the context is run once)."""
        return [lp for lp, _ in self.loglikelihood([(context, c) for c in continuations])]

    def rolling_loglikelihood(self, texts: list[str], desc: str = "rolling loglikelihood") -> list[tuple[float, int]]:
        """``(sum log-prob of every token of the text after BOS, number of tokens)`` per text.

        Texts longer than the context length are scored in disjoint windows, each conditioned on
        up to ``max_length`` preceding tokens (lm-eval's rolling windows with context_len=1).
        """
        pairs, owner, counts = [], [], []
        for i, text in enumerate(texts):
            tokens = self.tok_encode(text, add_special_tokens=False)
            counts.append(len(tokens))
            for start in range(0, len(tokens), self.max_length):
                cont = tokens[start : start + self.max_length]
                keep = self.max_length + 1 - len(cont)  # input = context + cont[:-1] <= max_length
                ctx = [self.prefix_token_id] if start == 0 else tokens[max(0, start - keep) : start]
                pairs.append((ctx, cont))
                owner.append(i)
        sums = [0.0] * len(texts)
        for i, (lp, _) in zip(owner, self.score_tokens(pairs, desc=desc), strict=True):
            sums[i] += lp
        return list(zip(sums, counts, strict=True))

    # ------------------------------------------------------------------ token-level scoring
    def score_tokens(self, pairs: list[tuple[list[int], list[int]]], desc: str = "scoring") -> list[tuple[float, bool]]:
        """Score ``(context ids, continuation ids)`` pairs; pairs with equal contexts share one pass."""
        groups: dict[tuple, list[int]] = {}
        trimmed = []
        for i, (ctx, cont) in enumerate(pairs):
            keep = self.max_length + 1 - len(cont)  # lm-eval truncates the context from the left
            if keep < 1:
                raise DataError(
                    f"a continuation of {len(cont)} tokens does not fit the model's {self.max_length}-token context."
                )
            ctx = list(ctx)[-keep:]
            trimmed.append((ctx, list(cont)))
            groups.setdefault(tuple(ctx), []).append(i)
        order = sorted(groups, key=lambda c: (-len(c), -max(len(trimmed[i][1]) for i in groups[c])))
        results: list = [None] * len(pairs)
        bar = tqdm(total=len(pairs), desc=desc, disable=not self.progress, leave=False)
        size = self._rows_per_batch(len(order[0]) + max(len(c) for _, c in trimmed)) if order else 1
        with torch.inference_mode():
            for b in range(0, len(order), size):
                batch = order[b : b + size]
                rows = [(g, i) for g, ctx in enumerate(batch) for i in groups[ctx]]
                conts = [trimmed[i][1] for _, i in rows]
                out = self._score_batch([list(c) for c in batch], [g for g, _ in rows], conts)
                for (_, i), res in zip(rows, out, strict=True):
                    results[i] = res
                bar.update(len(rows))
        bar.close()
        return results

    def _score_batch(self, contexts, row_group, conts):
        """Log-prob sums and greedy flags for continuation rows over a batch of contexts."""
        longest = _round_up(max(len(c) for c in contexts), self.align) + _round_up(
            max(len(c) for c in conts), self.align
        )
        if self.sliding_window is not None and longest >= self.sliding_window:
            return self._score_plain(contexts, row_group, conts)
        return self._score_cached(contexts, row_group, conts)

    def _score_cached(self, contexts, row_group, conts):
        """Contexts once (left-padded, KV cache kept), continuations on top of the cache."""
        dev = self.device
        align = self.align
        lc = _round_up(max(len(c) for c in contexts), align)  # extra left padding is masked
        padded = pad_batch(contexts, self.pad_id, "left", lc)
        ids, mask = padded["input_ids"], padded["attention_mask"]  # [G, Lc]
        pos = (mask.cumsum(-1) - 1).clamp(min=0)  # [G, Lc] true positions
        out = self.body(input_ids=ids.to(dev), attention_mask=mask.to(dev), position_ids=pos.to(dev), use_cache=True)
        states = [out.last_hidden_state[:, -1]]  # [G, D] each predicts its continuations' first token
        kv = "cache" if hasattr(out, "cache") else "past_key_values"  # transformers < 5.24 calls it past_key_values
        entries = [(g, c[0], r) for r, (g, c) in enumerate(zip(row_group, conts, strict=True))]
        n_states, first, ctx_len = len(contexts), torch.tensor(row_group), mask.sum(-1)  # [N], [G]
        slack = PAD_SLACK if self.on_cpu else ACCELERATOR_PAD_SLACK
        for rows in _length_chunks([len(c) - 1 for c in conts], slack):  # rows of similar length: little padding
            lt = _round_up(len(conts[rows[0]]) - 1, align)  # the longest row comes first; right padding is unseen
            cids = pad_batch([conts[row][:-1] for row in rows], self.pad_id, "right", lt)["input_ids"]  # [n, Lt]
            # right padding of a continuation only follows its real tokens, so causality keeps it unseen
            full_mask = torch.cat([mask[first[rows]], torch.ones((len(rows), lt), dtype=torch.long)], 1)  # [n, Lc+Lt]
            cpos = ctx_len[first[rows]][:, None] + torch.arange(lt)[None, :]  # [n, Lt]
            hidden = self.body(
                input_ids=cids.to(dev),
                attention_mask=full_mask.to(dev),
                position_ids=cpos.to(dev),
                **{kv: _rows_of(getattr(out, kv), first[rows].to(dev))},
                use_cache=True,
            ).last_hidden_state  # [n, Lt, D]
            for r, row in enumerate(rows):
                cont = conts[row]
                states.append(hidden[r, : len(cont) - 1])  # [len-1, D]
                entries += [(n_states + j, cont[j + 1], row) for j in range(len(cont) - 1)]
                n_states += len(cont) - 1
        sums, greedy = self._score_positions(torch.cat(states), entries, len(conts))
        return list(zip(sums.tolist(), greedy.tolist(), strict=True))

    def _score_plain(self, contexts, row_group, conts):
        """Whole (context + continuation[:-1]) rows, right-padded as HFLM does (long inputs)."""
        seqs = [contexts[g] + c for g, c in zip(row_group, conts, strict=True)]
        ids = pad_batch([s[:-1] for s in seqs], self.pad_id)["input_ids"]  # [N, T] right-padded
        hidden = self.body(input_ids=ids.to(self.device), use_cache=False).last_hidden_state  # [N, T, D]
        states, entries, n_states = [], [], 0
        for r, (g, c) in enumerate(zip(row_group, conts, strict=True)):
            start = len(contexts[g]) - 1  # the position that predicts the continuation's first token
            states.append(hidden[r, start : start + len(c)])  # [len(c), D]
            entries += [(n_states + j, c[j], r) for j in range(len(c))]
            n_states += len(c)
        sums, greedy = self._score_positions(torch.cat(states), entries, len(conts))
        return list(zip(sums.tolist(), greedy.tolist(), strict=True))

    def head(self, hidden: torch.Tensor, vocab: slice | None = None) -> torch.Tensor:
        """The model's own unembedding (``models.forward.Unembedding``): lm_head plus its logit
        scale / soft-cap, in float32; ``vocab`` restricts it to a block of vocabulary rows."""
        return self.unembedding(hidden, vocab)

    def _score_positions(self, hidden, entries, n_rows):
        """Sum ``log p(target)`` per row over ``entries`` = (position in hidden, target id, row)."""
        pos = torch.tensor([e[0] for e in entries], dtype=torch.long)  # [Q]
        tgt = torch.tensor([e[1] for e in entries], dtype=torch.long)  # [Q]
        row = torch.tensor([e[2] for e in entries], dtype=torch.long)  # [Q]
        lp = torch.empty(len(entries), dtype=torch.float64)  # [Q]
        hit = torch.empty(len(entries), dtype=torch.bool)  # [Q]
        for a in range(0, hidden.shape[0], HEAD_POSITIONS):
            sel = (pos >= a) & (pos < a + HEAD_POSITIONS)  # entries scored in this chunk
            local, t = (pos[sel] - a).to(hidden.device), tgt[sel].to(hidden.device)
            picked, lse, greedy = self._reduce_vocab(hidden[a : a + HEAD_POSITIONS], local, t)
            lp[sel] = (picked - lse[local]).double().cpu()
            hit[sel] = (greedy[local] == t).cpu()
        sums = torch.zeros(n_rows, dtype=torch.float64).index_add_(0, row, lp)  # [N]
        misses = torch.zeros(n_rows, dtype=torch.long).index_add_(0, row, (~hit).long())  # [N]
        return sums, misses == 0

    def _reduce_vocab(self, hidden, local, targets):
        """Target logits, log-normalisers and greedy tokens, streaming over vocabulary blocks.

        The ``[P, V]`` logits never exist at once: each block's max and sum of exponentials fold
        into running values (an online logsumexp), which keeps the matmul in cache.
        """
        n_vocab = self.unembedding.n_vocab
        block = VOCAB_BLOCK if self.on_cpu else ACCELERATOR_VOCAB_BLOCK
        block = min(block or n_vocab, n_vocab) if self.unembedding.blockable else n_vocab
        top = torch.full((hidden.shape[0],), -torch.inf, device=hidden.device)  # [P] running max
        total = torch.zeros(hidden.shape[0], device=hidden.device)  # [P] sum of exp(logit - top)
        greedy = torch.zeros(hidden.shape[0], dtype=torch.long, device=hidden.device)  # [P]
        picked = torch.empty(len(targets), device=hidden.device)  # [Q] target logits
        for v in range(0, n_vocab, block):
            logits = self.head(hidden, slice(v, v + block) if block < n_vocab else None)  # [P, b]
            inside = (targets >= v) & (targets < v + block)  # [Q]
            picked[inside] = logits[local[inside], targets[inside] - v]
            block_top, block_arg = logits.max(-1)  # [P]
            new_top = torch.maximum(top, block_top)  # [P]
            total = total * torch.exp(top - new_top) + logits.sub_(new_top[:, None]).exp_().sum(-1)
            greedy = torch.where(block_top > top, block_arg + v, greedy)  # first maximum wins, as argmax
            top = new_top
        return picked, top + total.log(), greedy

    # ------------------------------------------------------------------ generation
    def generate_until(self, requests: list[tuple[str, dict]], desc: str = "generate_until") -> list[str]:
        """Greedy continuation of each context, cut at the first stop string (lm-eval semantics).

        Rows with equal settings are decoded together, longest prompt first, ``batch_size`` rows at a
        time (``"auto"``: as many as the memory budget holds), a waiting row taking the place of each
        row that ends; see ``babelscope.measure.generate``.
        """
        encoded = [self.tok_encode(ctx) for ctx, _ in requests]
        groups: dict[str, list[int]] = {}  # lm-eval's grouping: rows with equal generation settings
        for i in sorted(range(len(requests)), key=lambda i: (-len(encoded[i]), requests[i][0])):
            groups.setdefault(repr(sorted((k, repr(v)) for k, v in (requests[i][1] or {}).items())), []).append(i)
        results: list = [None] * len(requests)
        bar = GenerationBar(len(requests), desc, disable=not self.progress)
        for idx in groups.values():
            until, max_gen = self._generation_settings(dict(requests[idx[0]][1] or {}))
            prompts = [encoded[i][-(self.max_length - max_gen) :] for i in idx]  # lm-eval truncates from the left
            size = self._rows_per_batch(len(prompts[0]) + max_gen)  # the longest prompt comes first
            tokens = greedy_tokens(self.decoder, prompts, max_gen, StopStrings(self.tokenizer, until),
                                   bar.done, rows=size)
            for i, toks in zip(idx, tokens, strict=True):
                results[i] = cut_at_stops(self.tokenizer.decode(toks, skip_special_tokens=True), until)
        bar.close()
        return results

    def _generation_settings(self, kwargs: dict) -> tuple[list[str], int]:
        """``until`` (with the EOS text added, as lm-eval does) and ``max_gen_toks`` of one request."""
        until = kwargs.pop("until", None) or []
        until = [until] if isinstance(until, str) else list(until)
        eos = self.tokenizer.eos_token_id
        eos_text = self.tokenizer.decode(eos) if eos is not None else None
        if eos_text and eos_text not in until:
            until.append(eos_text)
        max_gen = int(kwargs.pop("max_gen_toks", DEFAULT_MAX_GEN_TOKS))
        if max_gen >= self.max_length:
            raise DataError(f"max_gen_toks {max_gen} leaves no room for a prompt in the model's "
                            f"{self.max_length}-token context; ask for fewer tokens.")
        return until, max_gen
