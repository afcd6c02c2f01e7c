"""LAHIS: Language Attention Head Importance Scores (Liu et al., arXiv 2511.07498, AAAI-2026).

A mask m = 1 per (layer, query head) multiplies each head's slice of the o_proj input. For each
language and each sample s (its own mean token cross-entropy L_s), the official code
(``Linuxin-xxx/LAHIS:src/attn_matrix.py``) accumulates::

    S[l, h] = mean_s(|g_s[l, h]| * m_s[l, h] * 1000) * mean_s(1[g_s[l, h] * m_s[l, h] < 0])
    g_s = dL_s / dm

i.e. the mean attribution magnitude times the share of samples in which the head lowers the
loss (first-order Taylor: removing the head changes the loss by about -g*m).

babelscope's default scores at the fixed mask m = 1: a per-sample mask [B, L, H] (a leaf of ones)
gives every sample's gradient from one forward and one backward pass per batch; parameters are
frozen (no parameter gradients), and the sums are float64. ``reproduce_official=True`` instead runs
one sample at a time with a bf16 mask that takes an AdamW(lr=1e-2) step after each sample, and adds
``|g| * m * 1000`` into a bf16 accumulator (``zeros_like`` of the bf16 mask in the released code,
which saturates: once the sum is large, small terms round away), divides it by n in bf16 and
multiplies by the float32 share, as the released code does, so published head lists can be matched
(the scores then depend on sample order). ``MIN_LANGUAGES`` (4) is then also the general-head
threshold whatever the number of languages (the official ``--min-rep`` default).

Scores stream into per-language sums (``HeadSums``); memory does not grow with the items.
Under ``torchrun`` the items are sharded and the sums are added across processes.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from pathlib import Path

import torch
from tqdm.auto import tqdm

from babelscope import distributed
from babelscope.errors import DataError, UsageError
from babelscope.models.adapters import get_adapter
from babelscope.models.forward import frozen, length_batches, pad_id_of, unembed
from babelscope.models.head_mask import head_mask_hooks
from babelscope.models.hooks import hooks
from babelscope.runs import RunFolder

SCALE = 1000.0  # the official code multiplies |g|*m by 1000 (cosmetic; ranks are unchanged)
QUANTILE = 0.96  # per-language candidates: heads strictly above this quantile of its scores
MIN_LANGUAGES = 4  # a head in >= this many languages' candidate lists is language-general (>= 8 langs)
MAX_LENGTH = 256  # tokens per sample (the official code truncates at 2048; shorter on CPU)
OFFICIAL_LR = 1e-2  # AdamW learning rate of the official per-sample mask step
AXES = ["layer", "head", "language"]  # axis names of the saved score tensor


# --------------------------------------------------------------------------- batching and loss


def encode(tokenizer, texts: list[str], max_length: int = MAX_LENGTH) -> list[list[int]]:
    """Token ids per text (the tokenizer's own BOS handling), truncated; texts under 2 tokens dropped."""
    ids = tokenizer(list(texts), add_special_tokens=True, truncation=True, max_length=max_length)["input_ids"]
    return [x for x in ids if len(x) >= 2]


def per_sample_loss(model, batch: dict, device=None) -> torch.Tensor:
    """Each sample's own mean next-token cross-entropy, [B] (padding never enters the mean)."""
    ids = batch["input_ids"].to(device)  # [B, T]
    att = batch["attention_mask"].to(device)  # [B, T]
    t = ids.shape[1]
    keep = torch.arange(t - 1, device=ids.device)  # logits only where a next token exists
    hidden = get_adapter(model).body(model)(input_ids=ids, attention_mask=att).last_hidden_state  # [B, T, D]
    logits = unembed(model, hidden[:, keep])  # [B, T-1, V] float32
    labels = ids[:, 1:].masked_fill(att[:, 1:] == 0, -100)  # [B, T-1]
    ce = torch.nn.functional.cross_entropy(logits.flatten(0, 1), labels.flatten(), reduction="none")
    ce = ce.view(labels.shape)  # [B, T-1]
    return ce.sum(1) / (labels != -100).sum(1).clamp(min=1)  # [B]


# --------------------------------------------------------------------------- streaming sums


@dataclass
class HeadSums:
    """Per-language streaming reducer: sum of |g|*m*SCALE, count of g*m < 0, number of samples."""

    abs_sum: torch.Tensor  # [L, H] float64
    neg_count: torch.Tensor  # [L, H] float64
    n: int = 0
    abs_bf16: torch.Tensor | None = None  # [L, H] bf16: the official accumulator (reproduce_official)

    @classmethod
    def zeros(cls, n_layers: int, n_heads: int) -> HeadSums:
        z = torch.zeros(n_layers, n_heads, dtype=torch.float64)
        return cls(z, z.clone(), 0)

    def add(self, grad: torch.Tensor, mask: torch.Tensor) -> None:
        """``grad``, ``mask``: [B, L, H] (one row per sample)."""
        g, m = grad.detach().double(), mask.detach().double()
        self.abs_sum += (g.abs() * m * SCALE).sum(0)
        self.neg_count += (g * m < 0).double().sum(0)
        self.n += g.shape[0]

    def add_official(self, grad: torch.Tensor, mask: torch.Tensor) -> None:
        """One sample's bf16 ``grad``, ``mask`` [L, H], added as the released code adds them (bf16 sum)."""
        if self.abs_bf16 is None:
            self.abs_bf16 = torch.zeros(self.abs_sum.shape, dtype=torch.bfloat16)
        g, m = grad.detach().cpu(), mask.detach().cpu()
        self.abs_bf16 += g.abs() * m * SCALE  # bf16 * bf16 * python float: bf16, as in attn_matrix.py
        self.add(g[None], m[None])  # the float64 sums beside it

    def all_reduce(self) -> HeadSums:
        """The sums added across torchrun processes (identity on one process)."""
        out = distributed.all_reduce_sum(
            {"abs": self.abs_sum, "neg": self.neg_count, "n": torch.tensor([float(self.n)], dtype=torch.float64)}
        )
        # the bf16 accumulator only exists in one process (reproduce_official refuses torchrun)
        return HeadSums(out["abs"], out["neg"], int(out["n"].item()), self.abs_bf16)

    def scores(self) -> torch.Tensor:
        """S = mean(|g|*m*1000) * share(g*m < 0), [L, H]."""
        if self.n == 0:
            raise DataError("LAHIS: no sample with at least 2 tokens to score; give longer texts.")
        if self.abs_bf16 is not None:  # official: bf16 mean times the float32 share
            return ((self.abs_bf16 / self.n) * (self.neg_count.float() / self.n)).double()
        return (self.abs_sum / self.n) * (self.neg_count / self.n)


# --------------------------------------------------------------------------- scoring


def score_texts(
    loaded,
    texts: list[str],
    batch_size: int = 8,
    max_length: int = MAX_LENGTH,
    reproduce_official: bool = False,
    progress=None,
) -> HeadSums:
    """LAHIS sums for one language's texts (this process's share only; call ``.all_reduce()``)."""
    seqs = encode(loaded.tokenizer, texts, max_length)
    return score_encoded(loaded, seqs, batch_size, reproduce_official, progress)


def score_encoded(
    loaded, seqs: list[list[int]], batch_size: int = 8, reproduce_official: bool = False, progress=None
) -> HeadSums:
    """LAHIS sums for token id sequences (each of at least 2 tokens)."""
    model, a = loaded.model, loaded.adapter
    sums = HeadSums.zeros(a.n_layers, a.n_heads)
    device = next(model.parameters()).device
    pad = pad_id_of(loaded.tokenizer)
    with frozen(model):
        if reproduce_official:
            _official(loaded, seqs, sums, pad, device, progress)
            return sums
        for batch in length_batches(seqs, batch_size, pad):
            b = batch["input_ids"].shape[0]
            mask = torch.ones(b, a.n_layers, a.n_heads, device=device, requires_grad=True)  # [B, L, H]
            with hooks(model, head_mask_hooks(mask, a), adapter=a):
                loss = per_sample_loss(model, batch, device)  # [B]
            (grad,) = torch.autograd.grad(loss.sum(), mask)  # [B, L, H]: row b = dL_b/dm_b
            sums.add(grad, mask)
            if progress is not None:
                progress.update(b)
    return sums


def _official(loaded, seqs, sums: HeadSums, pad: int, device, progress) -> None:
    """The released code's loop: batch 1 in data order, bf16 mask, AdamW step after each sample."""
    a = loaded.adapter
    mask = torch.nn.Parameter(torch.ones(a.n_layers, a.n_heads, dtype=torch.bfloat16, device=device))  # [L, H]
    opt = torch.optim.AdamW([mask], lr=OFFICIAL_LR)
    for batch in length_batches(seqs, 1, pad, sort=False):
        opt.zero_grad()
        with hooks(loaded.model, head_mask_hooks(mask, a), adapter=a):
            loss = per_sample_loss(loaded.model, batch, device)  # [1]
        loss.sum().backward()
        sums.add_official(mask.grad, mask)
        opt.step()
        if progress is not None:
            progress.update(1)


@dataclass
class LahisResult:
    """Scores [layer, head, language] with the languages, item counts and settings."""

    scores: torch.Tensor  # [L, H, K] float32
    languages: list[str]
    n_items: dict[str, int]
    settings: dict = field(default_factory=dict)

    def of(self, language: str) -> torch.Tensor:
        """[L, H] scores of one language."""
        return self.scores[..., self.languages.index(language)]

    def save(self, run, relpath: str = "artifacts/lahis_scores.safetensors"):
        meta = {
            "axes": AXES,
            "languages": self.languages,
            "n_items": self.n_items,
            "method": "lahis",
            "settings": self.settings,
        }
        return run.save_tensors(relpath, {"scores": self.scores.float()}, meta)

    @classmethod
    def load(cls, path) -> LahisResult:
        """From a heads run folder or the safetensors file itself."""
        path = Path(path)
        if path.is_dir():
            path = path / "artifacts" / "lahis_scores.safetensors"
        if not path.is_file():
            raise UsageError(
                f"no LAHIS scores at {path}; pass a `babelscope heads` run folder or its "
                "artifacts/lahis_scores.safetensors."
            )
        tensors, meta = RunFolder(path.parent).load_tensors(path.name)
        if meta.get("method") != "lahis" or "scores" not in tensors:
            raise UsageError(f"{path} is not a LAHIS score file (written by `babelscope heads`).")
        return cls(
            tensors["scores"], list(meta["languages"]), dict(meta.get("n_items", {})), dict(meta.get("settings", {}))
        )


def lahis(
    loaded,
    texts_by_language: dict[str, list[str]],
    batch_size: int = 8,
    max_length: int = MAX_LENGTH,
    reproduce_official: bool = False,
    show_progress: bool = True,
) -> LahisResult:
    """LAHIS scores for every language (``{language: [texts]}``); shards items under torchrun."""
    if reproduce_official and distributed.world_size() > 1:
        raise UsageError(
            "--reproduce_official follows a per-sample mask drift that depends on sample order; "
            "run it in one process (without torchrun)."
        )
    columns, counts = [], {}
    for lang, texts in texts_by_language.items():
        mine = distributed.shard(list(texts))
        bar = tqdm(total=len(mine), desc=f"LAHIS {lang}", disable=not show_progress or not distributed.is_main())
        sums = score_texts(loaded, mine, batch_size, max_length, reproduce_official, bar).all_reduce()
        bar.close()
        columns.append(sums.scores().float())
        counts[lang] = sums.n
    settings = {
        "max_length": max_length,
        "reproduce_official": reproduce_official,
        "scale": SCALE,
        "mask": "AdamW-drift bf16 (official)" if reproduce_official else "fixed at 1",
        "accumulation": "bfloat16 (official)" if reproduce_official else "float64",
    }
    return LahisResult(torch.stack(columns, -1), list(texts_by_language), counts, settings)  # [L, H, K]


# --------------------------------------------------------------------------- classification


def default_min_languages(n_languages: int, official: bool = False) -> int:
    """4 (the official rule) from 8 languages on, or always with ``official`` (``language_heads.py``'s
    ``--min-rep`` default, 4 also for its README's 5 languages); below 8 languages otherwise half the
    languages, rounded up, at least 2."""
    return MIN_LANGUAGES if official or n_languages >= 8 else max(2, math.ceil(n_languages / 2))


def candidates(scores: torch.Tensor, quantile: float = QUANTILE) -> list[int]:
    """Flat head ids (layer * H + head) strictly above the ``quantile`` of one language's [L, H] scores,
    best first."""
    flat = scores.flatten().double()  # [L*H]
    threshold = torch.quantile(flat, quantile)
    above = torch.nonzero(flat > threshold).flatten()
    return above[torch.argsort(flat[above], descending=True, stable=True)].tolist()


def top_heads(scores: torch.Tensor, n: int) -> list[int]:
    """The ``n`` best flat head ids of one language's [L, H] scores (stable ties)."""
    return torch.argsort(scores.flatten(), descending=True, stable=True)[:n].tolist()


def classify(result: LahisResult, quantile: float = QUANTILE, min_languages: int | None = None,
             official: bool = False) -> dict:
    """Language-specific and language-general heads (official ``language_heads.py`` rule); ``official`` takes
    its general-head threshold (4) when ``min_languages`` is not given."""
    if not 0.0 < quantile < 1.0:
        raise UsageError(f"quantile must be between 0 and 1 (e.g. 0.96), got {quantile}.")
    k = min_languages or default_min_languages(len(result.languages), official)
    cands = {lang: candidates(result.of(lang), quantile) for lang in result.languages}
    count: dict[int, int] = {}
    for heads in cands.values():
        for h in heads:
            count[h] = count.get(h, 0) + 1
    general = sorted(h for h, c in count.items() if c >= k)
    specific = {lang: [h for h in heads if h not in general] for lang, heads in cands.items()}
    n_heads = result.scores.shape[1]
    return {
        "quantile": quantile,
        "min_languages": k,
        "n_heads_per_layer": n_heads,
        "candidates": cands,
        "general": general,
        "specific": specific,
        "languages_of_head": {h: [lang for lang in cands if h in cands[lang]] for h in count},
    }


def head_name(flat: int, n_heads: int) -> str:
    """Flat id -> ``"L3.H1"``."""
    return f"L{flat // n_heads}.H{flat % n_heads}"
