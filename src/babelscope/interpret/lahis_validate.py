"""Checks that LAHIS heads matter: an ablation matrix and the off-target rate of generation.

* Ablation matrix: zero the top heads of head-language A (all other heads at 1) and measure the
  mean per-sample loss on held-out text of every test language B; ``delta[A][B]`` is the rise over
  the unablated loss. Beside it, the same number of random heads (seeded, drawn from the heads
  outside its own list) zeroed for each language. A language's own heads "hurt it most" when
  its own row has the largest delta in its column; the verdict also says whether they beat the
  random heads.
* Official ablation (``official_ablation``, ``Linuxin-xxx/LAHIS:src/multilingual_exps.py``
  ``get_ppl_res``): zero the first ``int(0.02 * L * H)`` of each language's *specific* heads (at
  least 1 here, so tiny models ablate something) and report the mean over samples of exp(sample
  loss), the paper's perplexity; the same matrix shape, with ``metric: mean_exp_loss`` (the keys
  keep their ``_loss`` names). Its random control zeroes as many random heads (the released code
  draws 9).
* Off-target: greedy continuations of short held-out prompts in each language, before and after
  zeroing that language's specific heads; a language identifier (``measure.lid``: py3langid unless
  ``--lid``) labels each continuation with FLORES-200 codes and the off-target rate is the share not
  labelled as the prompt's language (the LAHIS paper's claim is that these
  heads keep the output in the right language).
"""

from __future__ import annotations

import random

import torch

from babelscope.interpret.lahis import MAX_LENGTH, encode, per_sample_loss
from babelscope.measure.aggregate import detect_language
from babelscope.measure.engine import Engine
from babelscope.measure.lid import Identifier, identifier, is_language
from babelscope.models.forward import length_batches, pad_id_of
from babelscope.models.head_mask import head_mask_hooks
from babelscope.models.hooks import hooks

MAX_NEW_TOKENS = 16  # generation budget per off-target prompt
MIN_LETTERS = 3  # continuations with fewer letters are not language-identified


def zero_mask(adapter, heads: list[int]) -> torch.Tensor:
    """A [L, H] mask of ones with the flat head ids set to 0."""
    mask = torch.ones(adapter.n_layers * adapter.n_heads)  # [L*H]
    if heads:
        mask[torch.tensor(heads, dtype=torch.long)] = 0.0
    return mask.view(adapter.n_layers, adapter.n_heads)  # [L, H]


METRICS = ("mean_loss", "mean_exp_loss")  # per-sample loss averaged as is, or exp() first (official perplexity)
OFFICIAL_RATE = 0.02  # share of L x H heads the official ablation zeroes per language


def mean_loss(loaded, encoded: list[list[int]], mask: torch.Tensor | None = None, batch_size: int = 8,
              metric: str = "mean_loss") -> float:
    """Mean over samples of each sample's mean token cross-entropy (or of its exp, ``mean_exp_loss``), with
    ``mask`` applied."""
    model, a = loaded.model, loaded.adapter
    device = next(model.parameters()).device
    sites = head_mask_hooks(mask.to(device), a) if mask is not None else {}
    total, n = 0.0, 0
    with torch.inference_mode(), hooks(model, sites, adapter=a):
        for batch in length_batches(encoded, batch_size, pad_id_of(loaded.tokenizer)):
            loss = per_sample_loss(model, batch, device).double()  # [B]
            total += float((loss.exp() if metric == "mean_exp_loss" else loss).sum())
            n += loss.shape[0]
    return total / max(n, 1)


def ablation_matrix(
    loaded,
    heads: dict[str, list[int]],
    eval_texts: dict[str, list[str]],
    seed: int = 0,
    batch_size: int = 8,
    max_length: int = MAX_LENGTH,
    progress=None,
    base: dict[str, float] | None = None,
    metric: str = "mean_loss",
) -> dict:
    """Loss with each head-language's heads zeroed, on every test language; random heads beside it.

    ``base`` (unablated loss per language, e.g. from an earlier matrix on the same texts) skips
    those passes.
    """
    a = loaded.adapter
    langs = list(eval_texts)
    encoded = {lang: encode(loaded.tokenizer, eval_texts[lang], max_length) for lang in langs}
    rng = random.Random(seed)
    n_total = a.n_layers * a.n_heads
    random_heads = {}  # per language: as many random heads as its own, drawn from the others
    for lang in langs:
        pool = [h for h in range(n_total) if h not in set(heads.get(lang, []))]
        random_heads[lang] = sorted(rng.sample(pool, min(len(pool), len(heads.get(lang, [])))))

    def step(label):
        if progress is not None:
            progress.set_postfix_str(label)
            progress.update(1)

    if base is None:
        base = {}
        for lang in langs:
            base[lang] = mean_loss(loaded, encoded[lang], None, batch_size, metric)
            step(f"base {lang}")
    loss = {}
    for src in [s for s in heads if heads[s]]:  # a language without heads has nothing to ablate
        mask = zero_mask(a, heads[src])
        loss[src] = {}
        for lang in langs:
            loss[src][lang] = mean_loss(loaded, encoded[lang], mask, batch_size, metric)
            step(f"{src} heads on {lang}")
    rand = {}
    for lang in [x for x in langs if random_heads[x]]:  # no heads of its own: no random control either
        rand[lang] = mean_loss(loaded, encoded[lang], zero_mask(a, random_heads[lang]), batch_size, metric)
        step(f"random on {lang}")
    delta = {src: {lang: loss[src][lang] - base[lang] for lang in langs} for src in loss}
    verdict = {}
    for lang in langs:
        if lang not in delta or not heads.get(lang):
            verdict[lang] = {"own_heads_hurt_most": None, "note": "no heads to ablate"}
            continue
        column = {src: delta[src][lang] for src in delta}
        worst = max(column, key=column.get)
        verdict[lang] = {
            "own_heads_hurt_most": worst == lang,
            "most_hurt_by": worst,
            "own_delta": column[lang],
            "random_delta": rand[lang] - base[lang],
            "own_beats_random": column[lang] > rand[lang] - base[lang],
        }
    return {
        "metric": metric,
        "base_loss": base,
        "ablated_loss": loss,
        "delta": delta,
        "random_heads": random_heads,
        "random_loss": rand,
        "random_delta": {lang: rand[lang] - base[lang] for lang in rand},
        "heads": heads,
        "verdict": verdict,
        "n_eval_items": {lang: len(encoded[lang]) for lang in langs},
    }


def official_heads(adapter, specific: dict[str, list[int]], rate: float = OFFICIAL_RATE) -> tuple[dict, int]:
    """({language: its first n specific heads}, n) with n = int(rate * L * H), at least 1 (official top 2%)."""
    n = max(1, int(rate * adapter.n_layers * adapter.n_heads))
    return {lang: list(heads[:n]) for lang, heads in specific.items()}, n


def official_ablation(loaded, specific: dict[str, list[int]], eval_texts: dict[str, list[str]], seed: int = 0,
                      batch_size: int = 8, max_length: int = MAX_LENGTH, progress=None) -> dict:
    """The official ablation: each language's top 2% specific heads zeroed, mean exp(loss) on every language."""
    heads, n = official_heads(loaded.adapter, specific)
    out = ablation_matrix(loaded, heads, eval_texts, seed, batch_size, max_length, progress, None, "mean_exp_loss")
    return {**out, "style": "official", "n_heads_zeroed": n, "rate": OFFICIAL_RATE}


# --------------------------------------------------------------------------- off-target generation


def identify(text: str, lid: Identifier | None = None) -> str | None:
    """FLORES-200 code(s) of ``text`` (``measure.lid``; default py3langid); None under MIN_LETTERS letters."""
    if sum(ch.isalpha() for ch in text) < MIN_LETTERS:
        return None
    return detect_language(text, lid)


def off_target_share(labels: list[str | None], lang: str) -> float | None:
    """Share of the identified ``labels`` that do not name ``lang`` (None when none was identified)."""
    judged = [lab for lab in labels if lab is not None]
    return sum(not is_language(lab, lang) for lab in judged) / len(judged) if judged else None


def _generate(loaded, prompts: list[str], mask, batch_size: int, max_new_tokens: int) -> list[str]:
    engine = Engine(loaded, batch_size=batch_size, progress=False)
    sites = head_mask_hooks(mask, loaded.adapter) if mask is not None else {}
    with hooks(loaded.model, sites, adapter=loaded.adapter):
        return engine.generate_until([(p, {"until": [], "max_gen_toks": max_new_tokens}) for p in prompts])


def off_target(
    loaded,
    prompts: dict[str, list[str]],
    heads: dict[str, list[int]],
    batch_size: int = 8,
    max_new_tokens: int = MAX_NEW_TOKENS,
    progress=None,
    lid: Identifier | None = None,
) -> dict:
    """Per language: off-target rate of greedy continuations before and after zeroing ``heads[lang]``
    (None, with a note, for a language the identifier ``lid`` cannot name)."""
    lid = lid or identifier()
    out = {}
    for lang, texts in prompts.items():
        row = {"target_label": lang, "heads": heads.get(lang, []), "identifier": lid.name}
        if lang not in lid.names():
            row["note"] = f"{lid.name} cannot name {lang}"
        conditions = [("before", None)] + (
            [("after", zero_mask(loaded.adapter, heads[lang]))] if heads.get(lang) else []
        )
        for name, mask in conditions:
            gens = _generate(loaded, texts, mask, batch_size, max_new_tokens)
            labels = [identify(g, lid) for g in gens]
            row[name] = {
                "off_target_rate": off_target_share(labels, lang) if lang in lid.names() else None,
                "judged": sum(lab is not None for lab in labels),
                "n": len(gens),
                "samples": [
                    {"prompt": p, "generation": g, "label": lab} for p, g, lab in zip(texts, gens, labels, strict=True)
                ],
            }
            if progress is not None:
                progress.set_postfix_str(f"off-target {lang} {name}")
                progress.update(1)
        out[lang] = row
    return out
