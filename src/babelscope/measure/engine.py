"""The scoring core: ``loglikelihood``, ``rolling_loglikelihood`` and ``generate_until``.

Semantics follow lm-eval's ``HFLM`` exactly (context/continuation split, BOS handling, sums of
continuation log-probs, ``is_greedy``), with two savings that leave the numbers unchanged:

* requests that share a context are scored as one group: the context goes through the decoder
  body once (left-padded across groups) and every continuation runs on top of its KV cache;
* the unembedding (``lm_head``, 262k rows for Gemma 3) is applied only at the positions whose
  log-probs are scored, never to the whole sequence, and in chunks so memory stays bounded::

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

DEFAULT_BATCH_SIZE = 8  # contexts (request groups) per forward pass
HEAD_CHUNK = 128  # positions per lm_head call: bounds the [positions, vocab] logits in memory
DEFAULT_MAX_LENGTH = 2048  # lm-eval's fallback when neither config nor tokenizer gives a length
DEFAULT_MAX_GEN_TOKS = 256  # lm-eval's default generation budget
# continuation rows split into length chunks only past this padding factor: one pass per batch
# measured 1.6x faster than chunks at 1.25 on a 2-core CPU (each chunk costs a forward and a cache copy)
PAD_SLACK = float("inf")


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


def _length_chunks(lengths: list[int], slack: float | None = None) -> list[list[int]]:
    """Indices of the rows with length > 0, longest first, cut so padding stays within ``slack``."""
    slack = PAD_SLACK if slack is None else slack
    rows = sorted((r for r, n in enumerate(lengths) if n > 0), key=lambda r: -lengths[r])
    chunks: list[list[int]] = []
    for r in rows:
        if chunks and (len(chunks[-1]) + 1) * lengths[chunks[-1][0]] <= slack * (
            sum(lengths[x] for x in chunks[-1]) + lengths[r]
        ):
            chunks[-1].append(r)
        else:
            chunks.append([r])
    return chunks


class _StopStrings:
    """Stopping criterion: every row has produced one of ``until`` after the prompt."""

    def __init__(self, tokenizer, until: list[str], prompt_len: int):
        self.tokenizer, self.until, self.prompt_len = tokenizer, until, prompt_len
        self.tail = max((len(tokenizer.encode(s, add_special_tokens=False)) for s in until), default=1) + 2

    def __call__(self, input_ids, scores, **kwargs):
        done = []
        for row in input_ids[:, self.prompt_len :]:
            text = self.tokenizer.decode(row[-self.tail :])
            done.append(any(s in text for s in self.until))
        return torch.tensor(done, dtype=torch.bool, device=input_ids.device)


class Engine:
    """Score and generate with a ``LoadedModel``; nothing but the scored logits is kept."""

    def __init__(
        self, loaded, batch_size: int = DEFAULT_BATCH_SIZE, progress: bool = True, max_length: int | None = None
    ):
        self.loaded = loaded
        self.model = loaded.model
        self.tokenizer = loaded.tokenizer
        self.batch_size = max(1, int(batch_size))
        self.progress = progress
        self.body = loaded.adapter.body(self.model)  # decoder without the unembedding
        self.lm_head = self.model.get_output_embeddings()
        config = self.model.config
        self.softcap = getattr(config, "final_logit_softcapping", None)  # Gemma 2/3
        self.logit_scale = getattr(self.model, "logit_scale", None)  # Cohere
        self.max_length = max_length or _max_length(self.model, self.tokenizer)
        self.sliding_window = getattr(config, "sliding_window", None)  # cache path only inside it
        tok = self.tokenizer
        self.prefix_token_id = tok.bos_token_id if tok.bos_token_id is not None else tok.eos_token_id
        self._prefix_text = tok.decode(self.prefix_token_id) if self.prefix_token_id is not None else None
        pad = tok.pad_token_id if tok.pad_token_id is not None else tok.eos_token_id
        self.pad_id = pad if pad is not None else 0

    @property
    def device(self):
        return self.loaded.device

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
        with torch.inference_mode():
            for b in range(0, len(order), self.batch_size):
                batch = order[b : b + self.batch_size]
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
        longest = max(len(c) for c in contexts) + max(len(c) for c in conts)
        if self.sliding_window is not None and longest >= self.sliding_window:
            return self._score_plain(contexts, row_group, conts)
        return self._score_cached(contexts, row_group, conts)

    def _score_cached(self, contexts, row_group, conts):
        """Contexts once (left-padded, KV cache kept), continuations on top of the cache."""
        dev = self.device
        n_ctx, n_rows = len(contexts), len(conts)
        lc = max(len(c) for c in contexts)
        ids = torch.full((n_ctx, lc), self.pad_id, dtype=torch.long)  # [G, Lc]
        mask = torch.zeros((n_ctx, lc), dtype=torch.long)  # [G, Lc]
        for g, c in enumerate(contexts):
            ids[g, lc - len(c) :] = torch.tensor(c)
            mask[g, lc - len(c) :] = 1
        pos = (mask.cumsum(-1) - 1).clamp(min=0)  # [G, Lc] true positions
        out = self.body(input_ids=ids.to(dev), attention_mask=mask.to(dev), position_ids=pos.to(dev), use_cache=True)
        hidden_last = out.last_hidden_state[:, -1]  # [G, D] predicts each continuation's first token
        first = torch.tensor(row_group)  # [N] context of each row
        targets = [c[0] for c in conts]
        entries = [(first[r].item(), targets[r], r) for r in range(n_rows)]
        sums, greedy = self._score_positions(hidden_last, entries, n_rows)
        cache, ctx_len = out.cache, mask.sum(-1)  # [G] true context lengths
        chunks = _length_chunks([len(c) - 1 for c in conts])
        for k, rows in enumerate(chunks):  # rows of similar length: little padding
            sub = cache if k == len(chunks) - 1 else copy.deepcopy(cache)
            sub.reorder_cache(first[rows].to(dev))  # [G, ...] -> [n, ...]
            lt = len(conts[rows[0]]) - 1  # the longest row of the chunk comes first
            cids = torch.full((len(rows), lt), self.pad_id, dtype=torch.long)  # [n, Lt] cont[:-1]
            for r, row in enumerate(rows):
                cids[r, : len(conts[row]) - 1] = torch.tensor(conts[row][:-1], dtype=torch.long)
            # right padding of a continuation only follows its real tokens, so causality keeps it unseen
            full_mask = torch.cat([mask[first[rows]], torch.ones((len(rows), lt), dtype=torch.long)], 1)  # [n, Lc+Lt]
            cpos = ctx_len[first[rows]][:, None] + torch.arange(lt)[None, :]  # [n, Lt]
            hidden = self.body(
                input_ids=cids.to(dev),
                attention_mask=full_mask.to(dev),
                position_ids=cpos.to(dev),
                cache=sub,
                use_cache=True,
            ).last_hidden_state  # [n, Lt, D]
            del sub
            entries = [
                (r * lt + j, conts[row][j + 1], row) for r, row in enumerate(rows) for j in range(len(conts[row]) - 1)
            ]
            used = sorted({e[0] for e in entries})
            remap = {p: i for i, p in enumerate(used)}
            flat = hidden.reshape(len(rows) * lt, -1)  # [n*Lt, D]
            more_sums, more_greedy = self._score_positions(
                flat[torch.tensor(used, device=flat.device)], [(remap[p], t, r) for p, t, r in entries], n_rows
            )
            sums, greedy = sums + more_sums, greedy & more_greedy
        return list(zip(sums.tolist(), greedy.tolist(), strict=True))

    def _score_plain(self, contexts, row_group, conts):
        """Whole (context + continuation[:-1]) rows, right-padded as HFLM does (long inputs)."""
        dev = self.device
        seqs = [contexts[g] + c for g, c in zip(row_group, conts, strict=True)]
        width = max(len(s) for s in seqs) - 1
        ids = torch.full((len(seqs), width), self.pad_id, dtype=torch.long)  # [N, T]
        for r, s in enumerate(seqs):
            ids[r, : len(s) - 1] = torch.tensor(s[:-1])
        hidden = self.body(input_ids=ids.to(dev), use_cache=False).last_hidden_state  # [N, T, D]
        entries = []
        for r, (g, c) in enumerate(zip(row_group, conts, strict=True)):
            start = len(contexts[g]) - 1
            entries += [(r * width + start + j, c[j], r) for j in range(len(c))]
        used = sorted({e[0] for e in entries})
        remap = {p: k for k, p in enumerate(used)}
        flat = hidden.reshape(-1, hidden.shape[-1])  # [N*T, D]
        sums, greedy = self._score_positions(
            flat[torch.tensor(used, device=flat.device)], [(remap[p], t, r) for p, t, r in entries], len(conts)
        )
        return list(zip(sums.tolist(), greedy.tolist(), strict=True))

    def head(self, hidden: torch.Tensor) -> torch.Tensor:
        """The model's own unembedding: lm_head plus its logit scale / soft-cap, in float32."""
        logits = self.lm_head(hidden).float()  # [P, V]
        if self.logit_scale is not None:
            logits = logits * self.logit_scale
        if self.softcap is not None:
            logits = torch.tanh(logits / self.softcap) * self.softcap
        return logits

    def _score_positions(self, hidden, entries, n_rows):
        """Sum ``log p(target)`` per row over ``entries`` = (position in hidden, target id, row)."""
        pos = torch.tensor([e[0] for e in entries], dtype=torch.long)  # [Q]
        tgt = torch.tensor([e[1] for e in entries], dtype=torch.long)  # [Q]
        row = torch.tensor([e[2] for e in entries], dtype=torch.long)  # [Q]
        lp = torch.empty(len(entries), dtype=torch.float64)  # [Q]
        hit = torch.empty(len(entries), dtype=torch.bool)  # [Q]
        for a in range(0, hidden.shape[0], HEAD_CHUNK):
            logits = self.head(hidden[a : a + HEAD_CHUNK])  # [c, V]
            lse = torch.logsumexp(logits, dim=-1)  # [c] log of the softmax normaliser
            best = logits.argmax(-1)  # [c] greedy token
            sel = (pos >= a) & (pos < a + HEAD_CHUNK)  # entries scored in this chunk
            local = pos[sel] - a
            t = tgt[sel].to(logits.device)
            lp[sel] = (logits[local.to(logits.device), t] - lse[local.to(logits.device)]).double().cpu()
            hit[sel] = (best[local.to(logits.device)] == t).cpu()
        sums = torch.zeros(n_rows, dtype=torch.float64).index_add_(0, row, lp)  # [N]
        misses = torch.zeros(n_rows, dtype=torch.long).index_add_(0, row, (~hit).long())  # [N]
        return sums, misses == 0

    # ------------------------------------------------------------------ generation
    def generate_until(self, requests: list[tuple[str, dict]], desc: str = "generate_until") -> list[str]:
        """Greedy continuation of each context, cut at the first stop string (lm-eval semantics)."""
        order = sorted(range(len(requests)), key=lambda i: -len(self.tok_encode(requests[i][0])))
        results: list = [None] * len(requests)
        bar = tqdm(total=len(requests), desc=desc, disable=not self.progress, leave=False)
        # rows with equal generation settings share a batch
        by_kwargs: dict[str, list[int]] = {}
        for i in order:
            key = repr(sorted((k, repr(v)) for k, v in (requests[i][1] or {}).items()))
            by_kwargs.setdefault(key, []).append(i)
        for idx in by_kwargs.values():
            for b in range(0, len(idx), self.batch_size):
                chunk = idx[b : b + self.batch_size]
                texts = self._generate_batch([requests[i][0] for i in chunk], dict(requests[chunk[0]][1] or {}))
                for i, text in zip(chunk, texts, strict=True):
                    results[i] = text
                bar.update(len(chunk))
        bar.close()
        return results

    def _generate_batch(self, contexts: list[str], kwargs: dict) -> list[str]:
        until = kwargs.pop("until", None) or []
        until = [until] if isinstance(until, str) else list(until)
        eos_text = (
            self.tokenizer.decode(self.tokenizer.eos_token_id) if self.tokenizer.eos_token_id is not None else None
        )
        if eos_text and eos_text not in until:
            until.append(eos_text)
        max_gen = int(kwargs.pop("max_gen_toks", DEFAULT_MAX_GEN_TOKS))
        encoded = [self.tok_encode(c)[-(self.max_length - max_gen) :] for c in contexts]
        width = max(len(e) for e in encoded)
        ids = torch.full((len(encoded), width), self.pad_id, dtype=torch.long)  # [B, T] left-padded
        mask = torch.zeros((len(encoded), width), dtype=torch.long)  # [B, T]
        for r, e in enumerate(encoded):
            ids[r, width - len(e) :] = torch.tensor(e, dtype=torch.long)
            mask[r, width - len(e) :] = 1
        from transformers import StoppingCriteriaList

        with torch.inference_mode():
            out = self.model.generate(
                input_ids=ids.to(self.device),
                attention_mask=mask.to(self.device),
                max_new_tokens=max_gen,
                do_sample=False,
                pad_token_id=self.pad_id,
                stopping_criteria=StoppingCriteriaList([_StopStrings(self.tokenizer, until, width)]),
                temperature=None,
                top_p=None,
                top_k=None,
            )  # [B, T + new]
        texts = []
        for row in out[:, width:]:
            text = self.tokenizer.decode(row, skip_special_tokens=True)
            for stop in until:
                text = text.split(stop)[0]
            texts.append(text)
        return texts
