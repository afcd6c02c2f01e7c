"""Golden test: LAPE selection equals the official ``identify.py`` of RUCAIBox/Language-Specific-Neurons.

The oracle below is that script's ``activation()`` ported line for line into a function (file I/O
and prints removed; ``top_rate`` 0.01 as in the repository since commit 4eb5ea3, checked at
fdeca23). Inputs are activation counts ``over_zero [L, F, K]`` and token counts ``n [K]``, the
format its ``activation.py`` writes.
"""

import pytest
import torch

from babelscope.interpret.lape import lape


def official_identify(over_zero: torch.Tensor, n: torch.Tensor, top_rate=0.01, filter_rate=0.95,
                      activation_bar_ratio=0.95) -> list[list[torch.Tensor]]:
    num_layers, intermediate_size, lang_num = over_zero.size()
    activation_probs = over_zero / n  # layer x inter x lang_num
    normed_activation_probs = activation_probs / activation_probs.sum(dim=-1, keepdim=True)
    normed_activation_probs[torch.isnan(normed_activation_probs)] = 0
    log_probs = torch.where(normed_activation_probs > 0, normed_activation_probs.log(), 0)
    entropy = -torch.sum(normed_activation_probs * log_probs, dim=-1)
    largest = False
    flattened_probs = activation_probs.flatten()
    top_prob_value = flattened_probs.kthvalue(round(len(flattened_probs) * filter_rate)).values.item()
    top_position = (activation_probs > top_prob_value).sum(dim=-1)
    entropy[top_position == 0] = -torch.inf if largest else torch.inf
    flattened_entropy = entropy.flatten()
    top_entropy_value = round(len(flattened_entropy) * top_rate)
    _, index = flattened_entropy.topk(top_entropy_value, largest=largest)
    row_index = index // entropy.size(1)
    col_index = index % entropy.size(1)
    selected_probs = activation_probs[row_index, col_index].transpose(0, 1)
    activation_bar = flattened_probs.kthvalue(round(len(flattened_probs) * activation_bar_ratio)).values.item()
    lang, indice = torch.where(selected_probs > activation_bar)
    merged_index = torch.stack((row_index, col_index), dim=-1)
    final_indice = []
    for _, index in enumerate(indice.split(torch.bincount(lang).tolist())):
        lang_index = [tuple(row.tolist()) for row in merged_index[index]]
        lang_index.sort()
        layer_index = [[] for _ in range(num_layers)]
        for layer, neuron in lang_index:
            layer_index[layer].append(neuron)
        final_indice.append([torch.tensor(h).long() for h in layer_index])
    return final_indice


def _counts(seed: int, layers=6, width=512, langs=5, planted=12):
    """Activation counts with planted language-specific neurons per language: loud ones (fire often in
    one language: selected) and quiet ones (as specific, but rare: the filter must drop them)."""
    g = torch.Generator().manual_seed(seed)
    n = torch.randint(50_000, 200_000, (langs,), generator=g).double()
    probs = torch.rand(layers, width, langs, generator=g, dtype=torch.float64) * 0.4
    for k in range(langs):
        for loud in (True, False):
            rows = torch.randint(0, layers, (planted,), generator=g)
            cols = torch.randint(0, width, (planted,), generator=g)
            probs[rows, cols, :] *= 0.01 if loud else 0.0  # quiet ones: entropy 0, lowest of all
            peak = 0.9 if loud else 0.2
            probs[rows, cols, k] = peak + 0.09 * torch.rand(planted, generator=g, dtype=torch.float64)
    return (probs * n).round(), n


@pytest.mark.parametrize("seed", [0, 1, 2])
@pytest.mark.parametrize("rates", [(0.01, 0.95, 0.95), (0.05, 0.9, 0.95)])
def test_lape_selection_equals_official_identify(seed, rates):
    over_zero, n = _counts(seed)
    top_rate, filter_rate, bar = rates
    official = official_identify(over_zero.clone(), n, top_rate, filter_rate, bar)
    ours = lape(over_zero / n, [f"l{k}" for k in range(len(n))], top_rate, filter_rate, bar)
    assert len(official) == len(n), "every language gets neurons in this planted profile"
    for k, per_layer in enumerate(official):
        for layer, ids in enumerate(per_layer):
            assert ours.members[k, layer].nonzero().flatten().tolist() == ids.tolist(), (k, layer)


def test_the_oracle_tells_the_filter_apart():
    """The profile is rich enough that a different filter (or none) selects other neurons."""
    over_zero, n = _counts(0)
    official = official_identify(over_zero.clone(), n)
    unfiltered = lape(over_zero / n, [f"l{k}" for k in range(len(n))], filter_rate=0.0)
    assert any(unfiltered.members[k, layer].nonzero().flatten().tolist() != ids.tolist()
               for k, per_layer in enumerate(official) for layer, ids in enumerate(per_layer))
