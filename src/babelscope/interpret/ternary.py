"""Ternary language neurons: specific / related / general (Zhang et al. 2025, arXiv 2505.21505).

From the activation probability ``P[i, j, k]`` ([L, F, K], K languages)::

    H^     = H(P / sum_k P) / log K          (all-zero row -> uniform; entries clamped at 1e-12)
    c_K    = (1/K) * sum_{r=1..K} 1/r
    score  = H^ - lambda * max_k P / c_K     (low = language neuron)
    keep the round(0.01 * L * F) neurons with the lowest score
    tau    = kthvalue of all P at rank round(0.95 * count)
    a kept neuron belongs to every language with P > tau; c = number of such languages
        c = 1 -> language-specific;  2 <= c <= K-1 -> language-related;  c = 0 -> dropped

lambda is the largest value in [0, 0.2] (binary search, eps 1e-3) for which no kept neuron
belongs to all K languages (the released ``autosweep.py``).

**Language-general** neurons are not computed by the released code. babelscope follows the
paper's definition ("shared by all languages"): every neuron (kept or not) whose activation
probability is above the same bar tau in every one of the K languages. At the swept lambda no
kept neuron is general, so the three classes are disjoint.
"""

from __future__ import annotations

import math

import torch

from babelscope.interpret.lape import BAR_RATE, TOP_RATE, NeuronSets, kth_quantile, lowest

LAMBDA_RANGE = (0.0, 0.2)  # binary-search interval of the released autosweep
LAMBDA_EPS = 1e-3  # binary-search resolution of the released autosweep
CLASSES = ("none", "specific", "related", "general")  # values 0..3 of the class map


def normalised_entropy(p: torch.Tensor) -> torch.Tensor:
    """``[L, F]`` entropy over languages divided by log K (all-zero rows count as uniform)."""
    k = p.shape[-1]
    total = p.sum(-1, keepdim=True)
    norm = torch.where(total > 0, p / total.clamp_min(1e-300), torch.full_like(p, 1.0 / k))  # [L, F, K]
    norm = norm.clamp_min(1e-12)
    return -(norm * norm.log()).sum(-1) / math.log(k)


def harmonic_scale(k: int) -> float:
    """c_K = H_K / K (0.2929 for K = 10)."""
    return sum(1.0 / r for r in range(1, k + 1)) / k


def score(p: torch.Tensor, lam: float) -> torch.Tensor:
    """``[L, F]`` ternary score: normalised entropy minus lambda times the scaled largest probability."""
    return normalised_entropy(p) - lam * p.max(-1).values / harmonic_scale(p.shape[-1])


def select(
    p: torch.Tensor, languages: list[str], lam: float, top_rate: float = TOP_RATE, bar_rate: float = BAR_RATE
) -> NeuronSets:
    """Keep the lowest-score neurons and assign them to the languages above the bar."""
    n_layers, d_mlp, _ = p.shape
    count = round(top_rate * n_layers * d_mlp)
    selected = torch.zeros(n_layers * d_mlp, dtype=torch.bool)
    selected[lowest(score(p, lam), count)] = True
    selected = selected.view(n_layers, d_mlp)
    bar = kth_quantile(p, bar_rate)
    members = (p > bar).permute(2, 0, 1) & selected  # [K, L, F]
    info = {"method": "ternary", "lambda": lam, "top_rate": top_rate, "bar_rate": bar_rate, "n_selected": count}
    return NeuronSets(list(languages), selected, members, bar, info)


def all_language_count(sets: NeuronSets) -> int:
    """Number of kept neurons assigned to every language (``appear[K]`` of the released code)."""
    return int((sets.n_languages() == len(sets.languages)).sum())


SEARCHES = ("largest", "official")  # lambda search: the intended one, or the released autosweep's steps


def autosweep(
    p: torch.Tensor,
    languages: list[str],
    top_rate: float = TOP_RATE,
    bar_rate: float = BAR_RATE,
    lo: float = LAMBDA_RANGE[0],
    hi: float = LAMBDA_RANGE[1],
    eps: float = LAMBDA_EPS,
    search: str = "largest",
) -> NeuronSets:
    """Selection at the largest lambda in [lo, hi] with no kept neuron in all languages
    (``search="official"``: the lambda the released ``autosweep.py`` returns, see ``official_sweep``)."""
    if search == "official":
        return official_sweep(p, languages, top_rate, bar_rate, lo, hi, eps)
    if all_language_count(select(p, languages, hi, top_rate, bar_rate)) == 0:
        lo = hi  # even the largest lambda admits no all-language neuron
    steps = 0
    while hi - lo > eps and steps < 64:
        mid = (lo + hi) / 2
        if all_language_count(select(p, languages, mid, top_rate, bar_rate)) == 0:
            lo = mid
        else:
            hi = mid
        steps += 1
    sets = select(p, languages, lo, top_rate, bar_rate)
    sets.info.update(lambda_search={"range": list(LAMBDA_RANGE), "eps": eps, "steps": steps})
    return sets


def official_sweep(p, languages, top_rate=TOP_RATE, bar_rate=BAR_RATE, lo=LAMBDA_RANGE[0], hi=LAMBDA_RANGE[1],
                   eps=LAMBDA_EPS) -> NeuronSets:
    """The released ``autosweep.py`` step for step: it tries lo, then hi, then bisects [lo, hi] no matter
    what hi gave, keeping the last lambda without an all-language neuron. So where every lambda is
    fine it returns about 0.1998, not 0.2; where none is, it finds no lambda (the selection of the
    last lambda tried is returned, marked ``found: False``)."""
    def fine(lam: float) -> bool:
        return all_language_count(select(p, languages, lam, top_rate, bar_rate)) == 0

    best = hi if fine(hi) else (lo if fine(lo) else None)
    a, b, last, steps = lo, hi, hi, 0
    while b - a > eps and steps < 64:
        steps += 1
        last = (a + b) / 2
        if fine(last):
            best, a = last, last
        else:
            b = last
    sets = select(p, languages, last if best is None else best, top_rate, bar_rate)
    sets.info.update(lambda_search={"range": [lo, hi], "eps": eps, "steps": steps, "search": "official",
                                    "found": best is not None})
    return sets


def classify(p: torch.Tensor, sets: NeuronSets) -> torch.Tensor:
    """``[L, F]`` int8 class map: 0 none, 1 specific, 2 related, 3 general (see module doc)."""
    k = p.shape[-1]
    c = sets.n_languages()  # [L, F]
    out = torch.zeros(c.shape, dtype=torch.int8)
    out[(c == 1)] = 1
    out[(c >= 2) & (c <= k - 1)] = 2
    out[((p > sets.threshold).sum(-1) == k) & (out == 0)] = 3
    return out


def layer_counts(classes: torch.Tensor) -> dict[str, list[int]]:
    """Per-layer number of neurons of each class: ``{"specific": [..L], "related": ..., "general": ...}``."""
    return {name: (classes == v).sum(1).tolist() for v, name in enumerate(CLASSES) if v}


def phases(counts: dict[str, list[int]]) -> list[dict]:
    """Heuristic boundaries of the paper's four phases from the per-layer class counts.

    With c[l] = language neurons (specific + related) in layer l and the bar = half their mean
    over layers: 1 understanding = layers 0 .. the last lower-half layer with c above the bar;
    3 output-space transformation = from the first upper-half layer above the bar to the layer
    where c peaks; 4 vocabulary outputting = the layers after that peak; 2 shared reasoning = the
    layers between 1 and 3. On the Mistral-7B counts of the released artifacts this gives
    0-3 / 4-17 / 18-29 / 30-31, close to the paper's description.
    """
    lang = [s + r for s, r in zip(counts["specific"], counts["related"], strict=True)]
    n = len(lang)
    bar = sum(lang) / max(n, 1) / 2
    end1 = max((i for i in range(n // 2) if lang[i] >= bar), default=0)
    upper = range(max(end1 + 1, n // 2), n)
    if not upper:
        return [{"phase": "multilingual understanding", "layers": [0, n - 1]}]
    peak = max(upper, key=lambda i: (lang[i], -i))
    start3 = next((i for i in upper if lang[i] >= bar), peak)
    out = [
        ("multilingual understanding", 0, end1),
        ("shared semantic reasoning", end1 + 1, start3 - 1),
        ("multilingual output transformation", start3, peak),
        ("vocabulary outputting", peak + 1, n - 1),
    ]
    return [{"phase": name, "layers": [a, b]} for name, a, b in out if a <= b]


def plot_layers(counts: dict[str, list[int]], path, title: str = "", phase_list: list[dict] | None = None):
    """Line plot of neurons per layer and class, with the phases shaded (matplotlib Agg PNG)."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(8, 4.2), dpi=120)
    layers = list(range(len(counts["specific"])))
    for name, color in zip(counts, ("tab:red", "tab:orange", "tab:blue"), strict=False):  # LAPE: multi-language
        ax.plot(layers, counts[name], marker="o", ms=3, color=color, label=f"language-{name}")
    shades = ("#f2f2f2", "#ffffff", "#e8eef8", "#fff4e0")
    for i, ph in enumerate(phase_list or []):
        a, b = ph["layers"]
        ax.axvspan(a - 0.5, b + 0.5, color=shades[i % 4], zorder=0)
        label = f"{i + 1}: " + ph["phase"].split()[-1]
        ax.text((a + b) / 2, 1.01, label, transform=ax.get_xaxis_transform(), ha="center", fontsize=7)
    ax.set_xticks(layers)
    ax.set_xlabel("layer")
    ax.set_ylabel("neurons")
    ax.set_yscale("symlog", linthresh=10)
    ax.set_title(title, fontsize=9, pad=14)
    ax.legend(fontsize=8)
    fig.tight_layout()
    fig.savefig(path)
    plt.close(fig)
