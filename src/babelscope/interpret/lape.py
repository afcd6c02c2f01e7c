"""LAPE: Language Activation Probability Entropy (Tang et al., ACL 2024, arXiv 2402.16438).

Given the activation probability ``P[i, j, k]`` of MLP neuron j in layer i on language k
(:meth:`babelscope.models.reducers.NeuronReducer.probabilities`)::

    p~   = P / sum_k P                         (a row of zeros stays zero)
    LAPE = -sum_k p~ log p~                    (natural log; low = language-specific)
    tau  = kthvalue of all P at rank round(0.95 * count)          (filter_rate)
    a neuron with no language above tau gets LAPE = +inf (never selected)
    keep the round(0.01 * L * F) neurons with the lowest LAPE      (top_rate)
    assign each kept neuron to every language with P > bar        (bar: same rule, 0.95)

These are the defaults of the released code (``identify.py``); quantiles use ``kthvalue`` at
rank round(q * N), as both reference repositories do, so results match them bit for bit.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch

TOP_RATE = 0.01  # share of all MLP neurons kept (the released default since commit 4eb5ea3)
FILTER_RATE = 0.95  # quantile of all probabilities a neuron must exceed in some language
BAR_RATE = 0.95  # quantile above which a kept neuron belongs to a language


def kth_quantile(values: torch.Tensor, q: float) -> float:
    """The value at rank round(q * N) of the sorted values (1-based, torch.kthvalue semantics)."""
    flat = values.flatten()
    rank = min(max(round(q * flat.numel()), 1), flat.numel())
    return float(flat.kthvalue(rank).values)


def entropy_over_languages(p: torch.Tensor) -> torch.Tensor:
    """LAPE entropy ``[L, F]`` of ``p`` [L, F, K] normalised over languages (all-zero rows -> 0)."""
    norm = p / p.sum(-1, keepdim=True)  # [L, F, K]
    norm = torch.nan_to_num(norm, nan=0.0)
    logs = torch.where(norm > 0, norm.log(), torch.zeros_like(norm))
    return -(norm * logs).sum(-1)  # [L, F]


def lowest(scores: torch.Tensor, count: int) -> torch.Tensor:
    """Flat indices of the ``count`` lowest scores (stable: ties keep the lower index first)."""
    order = torch.sort(scores.flatten(), stable=True).indices
    return order[:count]


@dataclass
class NeuronSets:
    """Selected neurons and their languages.

    ``members[k]`` is a ``[L, F]`` bool mask of the neurons assigned to language k; ``selected``
    the ``[L, F]`` mask of all selected neurons (some may belong to no language).
    """

    languages: list[str]
    selected: torch.Tensor  # [L, F] bool
    members: torch.Tensor  # [K, L, F] bool
    threshold: float  # the activation bar tau
    info: dict

    def per_language(self) -> dict[str, dict[int, list[int]]]:
        """``{lang: {layer: [neuron ids]}}`` (layers with no neuron left out)."""
        out = {}
        for k, lang in enumerate(self.languages):
            layers = {}
            for i in range(self.members.shape[1]):
                ids = self.members[k, i].nonzero().flatten().tolist()
                if ids:
                    layers[i] = ids
            out[lang] = layers
        return out

    def counts(self) -> dict[str, int]:
        return {lang: int(self.members[k].sum()) for k, lang in enumerate(self.languages)}

    def n_languages(self) -> torch.Tensor:
        """``[L, F]`` number of languages each neuron is assigned to."""
        return self.members.sum(0)


def lape(
    p: torch.Tensor,
    languages: list[str],
    top_rate: float = TOP_RATE,
    filter_rate: float = FILTER_RATE,
    bar_rate: float = BAR_RATE,
) -> NeuronSets:
    """LAPE selection from activation probabilities ``p`` [L, F, K]."""
    n_layers, d_mlp, k = p.shape
    entropy = entropy_over_languages(p)  # [L, F]
    tau = kth_quantile(p, filter_rate)
    passes = (p > tau).any(-1)  # [L, F]: fires above the filter in some language
    entropy = torch.where(passes, entropy, torch.full_like(entropy, float("inf")))
    count = round(top_rate * n_layers * d_mlp)
    selected = torch.zeros(n_layers * d_mlp, dtype=torch.bool)
    selected[lowest(entropy, count)] = True
    selected = selected.view(n_layers, d_mlp)
    bar = kth_quantile(p, bar_rate)
    members = (p > bar).permute(2, 0, 1) & selected  # [K, L, F]
    info = {
        "method": "lape",
        "top_rate": top_rate,
        "filter_rate": filter_rate,
        "bar_rate": bar_rate,
        "filter_threshold": tau,
        "n_selected": count,
        "n_passing_filter": int(passes.sum()),
    }
    return NeuronSets(list(languages), selected, members, bar, info)
