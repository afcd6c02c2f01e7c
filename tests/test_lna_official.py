"""Golden test: ternary language neurons and the lambda search equal the official code of
NJUNLP/Language-Neurons-Alignment (commit ed8d120): ``identify.py`` (``ActivationAnalyzer.run``),
``analysis.py`` (``Neuron_Prob.calc_entropy``, ``wrap_neuron``, ``Neuron_Mask.appear_distribution``)
and ``autosweep.py`` (``autosweep_lambda``), ported below as the oracle with file I/O removed. Two
changes to the port, both needed for it to run: ``appear_distribution`` reads ``self.mask_data``
(the release has a typo, ``self.ddmask_data``), and ``ok`` tests ``appear[K]`` for the test's
K = 10 languages, as the release hard-codes ``appear[10]`` for its 10 MGSM languages.
"""

import numpy as np
import pytest
import torch

from babelscope.interpret import ternary

K = 10


def calc_entropy(probs_1d, eps=1e-12):
    p = probs_1d.clamp_min(eps)
    p = p / p.sum()
    return float(-(p * (p + 1e-30).log()).sum().item())


def wrap_neuron(act, layer, n, mode):
    vec = act[layer, n, :]
    if mode == "activation":
        return vec
    s = vec.sum()
    return torch.full_like(vec, 1.0 / vec.numel()) if s <= 0 else vec / s


def official_mask(act, top_rate, xlambda, activation_bar_ratio=0.95):
    num_layers, inter_size, langs = act.shape
    entropy = torch.zeros((num_layers, inter_size))
    norm_max = sum(1 / k for k in range(1, langs + 1)) / langs
    for layer in range(num_layers):
        for n in range(inter_size):
            e = calc_entropy(wrap_neuron(act, layer, n, "normed")) / np.log(langs)
            max_act = wrap_neuron(act, layer, n, "activation").max().item()
            entropy[layer, n] = e - max_act * float(xlambda) / norm_max
    k = round(entropy.numel() * float(top_rate))
    _, flat_idx = entropy.flatten().topk(k, largest=False)
    rows, cols = flat_idx // entropy.size(1), flat_idx % entropy.size(1)
    thr = act.flatten().kthvalue(round(act.numel() * activation_bar_ratio)).values.item()
    mask_data = [[] for _ in range(langs)]
    for i in range(len(rows)):
        layer, n = rows[i].item(), cols[i].item()
        for lid in range(langs):
            if act[layer, n, lid] > thr:
                while len(mask_data[lid]) <= layer:
                    mask_data[lid].append([])
                mask_data[lid][layer].append(n)
    for lid in range(langs):
        for layer in range(num_layers):
            if layer < len(mask_data[lid]):
                mask_data[lid][layer] = torch.tensor(sorted(set(mask_data[lid][layer]))).long()
            else:
                mask_data[lid].append(torch.tensor([], dtype=torch.long))
    return mask_data


def appear_distribution(mask_data, langs):
    appear = [0] * (langs + 1)
    for layer in range(max(len(per) for per in mask_data)):
        counter = {}
        for lid in range(langs):
            if layer < len(mask_data[lid]) and mask_data[lid][layer].numel():
                for o in mask_data[lid][layer].tolist():
                    counter[o] = counter.get(o, 0) + 1
        for c in counter.values():
            appear[c] += 1
    return appear


def official_autosweep(act, toprate, lo_init=0.0, hi_init=0.2, eps=1e-3):
    def run(lam):
        return appear_distribution(official_mask(act, toprate, lam), act.shape[-1])

    def ok(appear):
        return len(appear) > K and appear[K] == 0

    best_lambda = None
    if ok(run(lo_init)):
        best_lambda = lo_init
    if ok(run(hi_init)):
        best_lambda = hi_init
    lo, hi, it = lo_init, hi_init, 0
    while (hi - lo) > eps and it < 64:
        it += 1
        mid = (lo + hi) / 2.0
        if ok(run(mid)):
            best_lambda, lo = mid, mid
        else:
            hi = mid
    return best_lambda


def _profile(seed: int, general: int, layers=4, width=96):
    """Activation probabilities [L, F, K]: low background, 3 specific neurons per language, and
    ``general`` neurons that fire often in every language (they enter the selection as lambda grows)."""
    g = torch.Generator().manual_seed(seed)
    act = torch.rand(layers, width, K, generator=g) * 0.3
    for k in range(K):
        idx = torch.randperm(layers * width, generator=g)[:3]
        act.view(-1, K)[idx] = torch.rand(3, K, generator=g) * 0.02
        act.view(-1, K)[idx, k] = 0.6 + 0.3 * torch.rand(3, generator=g)
    idx = torch.randperm(layers * width, generator=g)[:general]
    act.view(-1, K)[idx] = 0.9 + 0.1 * torch.rand(general, K, generator=g)
    return act


@pytest.mark.parametrize("seed", [0, 1])
@pytest.mark.parametrize("lam", [0.0, 0.05, 0.109375, 0.2])
def test_ternary_selection_equals_official_identify(seed, lam):
    act = _profile(seed, general=6)
    official = official_mask(act, 0.1, lam)
    ours = ternary.select(act, [f"l{k}" for k in range(K)], lam, top_rate=0.1)
    for k in range(K):
        for layer in range(act.shape[0]):
            assert ours.members[k, layer].nonzero().flatten().tolist() == official[k][layer].tolist(), (k, layer)


@pytest.mark.parametrize(("seed", "general"), [(0, 0), (1, 6), (2, 12)])
def test_official_lambda_search_equals_the_released_autosweep(seed, general):
    act = _profile(seed, general)
    langs = [f"l{k}" for k in range(K)]
    expected = official_autosweep(act, 0.1)
    sets = ternary.autosweep(act, langs, top_rate=0.1, search="official")
    found = sets.info["lambda_search"]["found"]
    assert found == (expected is not None)
    if expected is not None:
        assert sets.info["lambda"] == pytest.approx(expected, abs=1e-12)
        official = official_mask(act, 0.1, expected)
        assert all(sets.members[k, layer].nonzero().flatten().tolist() == official[k][layer].tolist()
                   for k in range(K) for layer in range(act.shape[0]))


def test_the_two_searches_differ_as_documented():
    act = _profile(0, general=0)  # no general neuron: every lambda is fine
    langs = [f"l{k}" for k in range(K)]
    assert ternary.autosweep(act, langs, top_rate=0.1).info["lambda"] == 0.2
    official = ternary.autosweep(act, langs, top_rate=0.1, search="official").info["lambda"]
    assert 0.199 < official < 0.2
