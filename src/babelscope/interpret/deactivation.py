"""Deactivation check: zero a language's neurons and see whose loss goes up.

Deactivating neuron j of layer i sets column j of the ``down_proj`` input to zero
(``blocks.{i}.mlp.hook_post``), i.e. ``act(gate)_j * up_j = 0``, as LAPE's ``ppl.py`` does. For
each language L with neuron set S_L the mean token NLL of every language M is measured on
held-out text; ``increase[L, M] = loss(M | S_L off) - loss(M)``. Beside it, a random set with
the same number of neurons in each layer (drawn from neurons that no language selected) gives
``random_increase[L, M]``. Two ratios summarise specificity per language L:

* ``own_vs_other_languages`` = increase[L, L] / mean_{M != L} increase[L, M]: switching off L's
  neurons hurts L more than it hurts the other languages (row view);
* ``own_vs_other_neurons`` = increase[L, L] / mean_{M != L} increase[M, L]: L's loss rises more
  under its own neurons than under other languages' neurons (column view).
"""

from __future__ import annotations

import torch

from babelscope.interpret.activations import mean_losses
from babelscope.models.hooks import hooks

RANDOM_SEED_OFFSET = 7919  # seed of the random baseline = run seed + this (fixed, reproducible)


def deactivation_hooks(neurons: dict[int, list[int] | torch.Tensor]) -> dict:
    """``{site: fn}`` that zero the given neuron columns of the down_proj input per layer."""

    def make(ids: torch.Tensor):
        def fn(x, site):  # x: [B, T, F] down_proj input
            return x.index_fill(-1, ids.to(x.device), 0.0)

        return fn

    return {
        f"blocks.{i}.mlp.hook_post": make(torch.as_tensor(ids, dtype=torch.long))
        for i, ids in neurons.items()
        if len(ids)
    }


def random_like(neurons: dict[int, list[int]], d_mlp: int, exclude: torch.Tensor, generator) -> dict[int, list[int]]:
    """Random neurons with the same count per layer, avoiding ``exclude`` [L, F] where possible."""
    out = {}
    for i, ids in neurons.items():
        free = (~exclude[i]).nonzero().flatten()
        pool = free if len(free) >= len(ids) else torch.arange(d_mlp)
        out[i] = sorted(pool[torch.randperm(len(pool), generator=generator)[: len(ids)]].tolist())
    return out


def run_check(
    model,
    adapter,
    batches,
    languages: list[str],
    sets: dict[str, dict[int, list[int]]],
    exclude: torch.Tensor,
    seed: int = 0,
    progress=None,
) -> dict:
    """Losses with no neuron off, with each language's set off, and with matched random sets off."""
    gen = torch.Generator().manual_seed(seed + RANDOM_SEED_OFFSET)
    base = mean_losses(model, adapter, batches, languages)
    _tick(progress)
    own, rand, random_sets = {}, {}, {}
    for lang in languages:
        with hooks(model, deactivation_hooks(sets.get(lang, {}))):
            own[lang] = mean_losses(model, adapter, batches, languages)
        _tick(progress)
        random_sets[lang] = random_like(sets.get(lang, {}), adapter.d_mlp, exclude, gen)
        with hooks(model, deactivation_hooks(random_sets[lang])):
            rand[lang] = mean_losses(model, adapter, batches, languages)
        _tick(progress)
    return summarise(
        languages, base, own, rand, {lang: sum(len(v) for v in sets.get(lang, {}).values()) for lang in languages}
    )


def _tick(progress):
    if progress is not None:
        progress.update(1)


def _ratio(own: float, others: list[float]) -> float | None:
    mean = sum(others) / len(others) if others else float("nan")
    return own / mean if others and mean > 0 else None


def summarise(languages, base, own, rand, sizes) -> dict:
    """Increase matrices (rows = deactivated language, columns = evaluated language) and ratios."""
    inc = [[own[a][b] - base[b] for b in languages] for a in languages]
    rinc = [[rand[a][b] - base[b] for b in languages] for a in languages]
    k = len(languages)
    per_lang = {}
    for i, lang in enumerate(languages):
        row = [inc[i][j] for j in range(k) if j != i]
        col = [inc[j][i] for j in range(k) if j != i]
        per_lang[lang] = {
            "neurons": sizes[lang],
            "own_increase": inc[i][i],
            "random_own_increase": rinc[i][i],
            "mean_other_language_increase": sum(row) / len(row) if row else None,
            "own_vs_other_languages": _ratio(inc[i][i], row),
            "own_vs_other_neurons": _ratio(inc[i][i], col),
            "own_vs_random": inc[i][i] / rinc[i][i] if rinc[i][i] > 0 else None,
            "own_is_largest_in_row": all(inc[i][i] > x for x in row),
            "own_is_largest_in_column": all(inc[i][i] > x for x in col),
        }
    return {
        "languages": languages,
        "baseline_loss": base,
        "increase": inc,
        "random_increase": rinc,
        "per_language": per_lang,
        "all_own_largest_in_row": all(v["own_is_largest_in_row"] for v in per_lang.values()),
        "all_own_largest_in_column": all(v["own_is_largest_in_column"] for v in per_lang.values()),
    }


def matrix_text(result: dict) -> str:
    """The two increase matrices side by side as a Markdown table."""
    langs = result["languages"]
    short = [lang.split("_")[0] for lang in langs]
    head = "| off \\ eval | " + " | ".join(short) + " | | random: " + " | ".join(short) + " |"
    lines = [head, "|" + "---|" * (2 * len(langs) + 2)]
    for i, s in enumerate(short):
        own = " | ".join(f"{x:+.3f}" for x in result["increase"][i])
        rnd = " | ".join(f"{x:+.3f}" for x in result["random_increase"][i])
        lines.append(f"| {s} | {own} | | {rnd} |")
    return "\n".join(lines)
