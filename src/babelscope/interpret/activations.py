"""Shared plumbing for the neuron and layer methods: pack text into rows, batch the rows, run the
decoder body with a reducer attached, and score token losses (optionally under hooks).

Texts of one language are tokenised, joined with a newline and packed into rows of ``row_len``
tokens (each row starts with BOS when the tokenizer has one), as LAPE packs Wikipedia. The BOS
position is never counted. Batches are built deterministically and then sharded across
processes (``babelscope.distributed.shard``), so a ``torchrun`` run sees exactly the same batches
as a single process and its summed counts are identical.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
from tqdm.auto import tqdm

from babelscope.distributed import all_reduce_sum
from babelscope.errors import DataError
from babelscope.models.forward import pad_batch, pad_id_of, unembed

ROW_LEN = 128  # tokens per packed row (short rows keep padding and attention cost low)
PROMPT_LEN = 32  # answer mode: tokens of each text given as the prompt
ANSWER_LEN = 32  # answer mode: greedy tokens the model generates after each prompt
LOSS_CHUNK = 256  # positions per chunk of the vocabulary projection when scoring losses


@dataclass
class Batch:
    language: str
    input_ids: torch.Tensor  # [B, T]
    attention_mask: torch.Tensor  # [B, T] 1 = real token
    count_mask: torch.Tensor  # [B, T] bool: tokens that enter statistics (real, not BOS)


def pack(tokenizer, texts: list[str], max_tokens: int, row_len: int = ROW_LEN) -> list[list[int]]:
    """Rows of at most ``row_len`` token ids holding about ``max_tokens`` text tokens in all."""
    bos = [tokenizer.bos_token_id] if tokenizer.bos_token_id is not None else []
    width = row_len - len(bos)
    stream: list[int] = []
    for text in texts:
        if len(stream) >= max_tokens:
            break
        stream += tokenizer(text.strip() + "\n", add_special_tokens=False)["input_ids"]
    stream = stream[:max_tokens]
    return [bos + stream[i : i + width] for i in range(0, len(stream), width)]


def make_batches(language: str, rows: list[list[int]], batch_size: int, pad_id: int, has_bos: bool) -> list[Batch]:
    """Right-padded batches of consecutive rows."""
    out = []
    for s in range(0, len(rows), batch_size):
        padded = pad_batch(rows[s : s + batch_size], pad_id)
        ids, att = padded["input_ids"], padded["attention_mask"]  # [B, T]
        count = att.bool().clone()
        if has_bos:
            count[:, 0] = False
        out.append(Batch(language, ids, att, count))
    return out


def language_batches(
    tokenizer, texts_by_lang: dict[str, list[str]], max_tokens: int, batch_size: int, row_len: int = ROW_LEN
) -> list[Batch]:
    """Batches of every language, in language order (one language per batch)."""
    pad = pad_id_of(tokenizer)
    out = []
    for lang, texts in texts_by_lang.items():
        rows = pack(tokenizer, texts, max_tokens, row_len)
        if not rows:
            raise DataError(f"no text for {lang}; the source has no items in this language.")
        out += make_batches(lang, rows, batch_size, pad, tokenizer.bos_token_id is not None)
    return out


def answer_batches(
    model,
    tokenizer,
    texts_by_lang: dict[str, list[str]],
    max_tokens: int,
    batch_size: int,
    progress: bool = False,
    prompt_len: int | None = PROMPT_LEN,
) -> list[Batch]:
    """Batches of ``prompt + the model's own greedy answer`` rows, where only answer tokens count.

    Each text's first ``prompt_len`` tokens are the prompt (``None``: the whole text, e.g. a task
    question or a question-translation prompt) and the model continues it greedily
    for up to ``ANSWER_LEN`` tokens (to its end-of-sequence token); prompts are taken in order
    until about ``max_tokens`` answer tokens are collected per language. A position counts when
    its input token is a generated one (the language-neurons paper counts the activations of the
    generated answer).
    """
    pad = pad_id_of(tokenizer)
    out = []
    bar = tqdm(total=max_tokens * len(texts_by_lang), desc="generating answers", unit="tok", disable=not progress)
    for lang, texts in texts_by_lang.items():
        rows = _answer_rows(model, tokenizer, texts, max_tokens, batch_size, bar, prompt_len)
        if not rows:
            raise DataError(f"the model generated no answer tokens for {lang}; count all tokens instead.")
        for s in range(0, len(rows), batch_size):
            chunk = rows[s : s + batch_size]
            batch = make_batches(lang, [p + a for p, a in chunk], len(chunk), pad, False)[0]
            for b, (prompt, _) in enumerate(chunk):
                batch.count_mask[b, : len(prompt)] = False  # prompt positions (and BOS) never count
            out.append(batch)
    bar.close()
    return out


def _answer_rows(
    model, tokenizer, texts, max_tokens, batch_size, bar, prompt_len=PROMPT_LEN
) -> list[tuple[list[int], list[int]]]:
    """(prompt, answer) token ids, prompts in text order until ``max_tokens`` answer tokens."""
    bos = [tokenizer.bos_token_id] if tokenizer.bos_token_id is not None else []
    encoded = [tokenizer(t.strip(), add_special_tokens=False)["input_ids"] for t in texts]
    prompts = [bos + (ids if prompt_len is None else ids[:prompt_len]) for ids in encoded if ids]
    rows, counted = [], 0
    for s in range(0, len(prompts), batch_size):
        if counted >= max_tokens:
            break
        chunk = prompts[s : s + batch_size]
        for prompt, answer in zip(chunk, _greedy(model, tokenizer, chunk), strict=True):
            if answer:
                rows.append((prompt, answer))
                bar.update(min(counted + len(answer), max_tokens) - min(counted, max_tokens))
                counted += len(answer)
    return rows


def _greedy(model, tokenizer, prompts: list[list[int]]) -> list[list[int]]:
    """Greedy continuations of token prompts (``measure.generate``: HF ``generate``'s tokens), each
    without the end-of-sequence token that ended it."""
    from babelscope.measure.generate import Decoder, greedy_tokens

    dec = Decoder.of(model, tokenizer)
    rows = greedy_tokens(dec, prompts, ANSWER_LEN)
    return [row[:-1] if row and row[-1] in dec.eos_ids else row for row in rows]


def body_forward(model, adapter, batch: Batch, device):
    """Hidden states of the decoder body (no vocabulary projection): [B, T, D]."""
    body = adapter.body(model)
    out = body(input_ids=batch.input_ids.to(device), attention_mask=batch.attention_mask.to(device), use_cache=False)
    return out.last_hidden_state


@torch.no_grad()
def collect(model, adapter, batches: list[Batch], reducer, progress=None):
    """Run the body over ``batches`` with ``reducer`` attached (no logits computed)."""
    device = next(model.parameters()).device
    with reducer.attach(model):
        for batch in batches:
            reducer.select(batch.language, batch.count_mask)
            body_forward(model, adapter, batch, device)
            reducer.flush()
            if progress is not None:
                progress.update(1)
    return reducer




@torch.no_grad()
def batch_nll(model, adapter, batch: Batch) -> tuple[float, int]:
    """Summed next-token NLL over counted target positions and their number, for one batch."""
    device = next(model.parameters()).device
    hidden = body_forward(model, adapter, batch, device)  # [B, T, D]
    targets = batch.count_mask[:, 1:].to(device)  # [B, T-1]: predict token t+1 from position t
    h = hidden[:, :-1][targets]  # [N, D]
    y = batch.input_ids[:, 1:].to(device)[targets]  # [N]
    total = 0.0
    for s in range(0, h.shape[0], LOSS_CHUNK):
        logits = unembed(model, h[s : s + LOSS_CHUNK])  # [n, V] float32
        total += float(torch.nn.functional.cross_entropy(logits, y[s : s + LOSS_CHUNK], reduction="sum"))
    return total, int(targets.sum())


def mean_losses(model, adapter, batches: list[Batch], languages: list[str]) -> dict[str, float]:
    """Token-weighted mean NLL per language over ``batches`` (summed across processes)."""
    sums = torch.zeros(len(languages), 2, dtype=torch.float64)  # [K, (nll, tokens)]
    for batch in batches:
        nll, n = batch_nll(model, adapter, batch)
        sums[languages.index(batch.language)] += torch.tensor([nll, n], dtype=torch.float64)
    sums = all_reduce_sum({"s": sums})["s"]
    return {
        lang: float(sums[k, 0] / sums[k, 1]) if sums[k, 1] > 0 else float("nan") for k, lang in enumerate(languages)
    }
