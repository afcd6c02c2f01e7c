"""Language-specific layers: rank decoder layers, look through the logit lens, recommend the
shallow layers to finetune (PLAST, Fan et al. 2025, arXiv 2508.18381; no public code).

Evidence per layer l (all from the aligned corpus, decoder body only except the lens):

* ``language_neuron_share[l]``: share of the layer's MLP neurons that are language-specific or
  language-related (ternary method); ``specific_share[l]`` the specific ones alone;
* ``activation_difference[l]``: mean over neurons of |P_X - P_eng| (activation probability on
  language X minus on English, parallel text), averaged over the non-English languages;
* ``logit_lens``: the residual stream after layer l, through the final norm and the output
  embedding; the share of top-1 next-token guesses that are *target-language tokens*. A token's
  language is the one in whose corpus text it is relatively most frequent, at least twice the
  runner-up (otherwise it is shared and counts for no language). ``onset_layer`` is the first layer
  from which the share stays at or above half its last-layer value.

On a vision-language model (``layers --tasks visual:builtin``) the same evidence comes from image +
question inputs: ``visual_batches`` encodes each item's image with its question in each language,
and only text positions count (not image, special or padding tokens), as PLAST monitors the
language model's neurons on multimodal questions; the logit lens reads the same positions.

``score[l]`` = mean of the two specificity measures, each divided by its maximum over layers.
PLAST's layers are the ``round(budget * L)`` best-scoring layers among the first ``max_depth``
share of the stack. For layer swapping, ``bottom`` / ``top`` are the lengths of the leading and
trailing runs of layers scoring at or above the mean (together at most half the stack).

``layers.json`` (read by ``finetune`` through ``recommended.layers`` and by ``merge`` through
``recommended.bottom`` / ``recommended.top``)::

    {"model": str, "languages": [str], "english": "eng_Latn",
     "recommended": {"layers": [int], "bottom": int, "top": int, "budget": float, "max_depth": float},
     "ranking": [int],                       # all layers, most language-specific first
     "evidence": {"score": [L], "language_neuron_share": [L], "specific_share": [L],
                  "activation_difference": {"mean": [L], "per_language": {lang: [L]}},
                  "logit_lens": {"target_share": {lang: [L]}, "english_share": {lang: [L]},
                                 "onset_layer": {lang: int | null}, "positions": int},
                  "neurons": {"method": str, "source": str}}}
"""

from __future__ import annotations

from collections import Counter

import torch

from babelscope.distributed import shard
from babelscope.errors import UsageError
from babelscope.interpret.activations import body_forward
from babelscope.languages import REFERENCE  # the activation difference is measured against it
from babelscope.models import vision
from babelscope.models.forward import unembed
from babelscope.models.hooks import hooks
from babelscope.models.reducers import NeuronReducer

BUDGET = 0.14  # share of decoder layers recommended (PLAST tunes about 14% of parameters)
MAX_DEPTH = 0.5  # recommend layers from the first half only (PLAST: "shallow layers")
LENS_POSITIONS = 32  # positions per language for the logit lens (each costs L vocabulary projections)
DOMINANCE = 2.0  # a token belongs to a language when its relative frequency is this times the runner-up


def activation_difference(p: torch.Tensor, languages: list[str], english: str = REFERENCE) -> dict:
    """Per layer, mean over neurons of |P_X - P_eng| for every non-English X, and their mean."""
    e = languages.index(english)
    per = {lang: (p[:, :, k] - p[:, :, e]).abs().mean(1).tolist() for k, lang in enumerate(languages) if k != e}
    mean = torch.tensor(list(per.values())).mean(0).tolist() if per else [0.0] * p.shape[0]
    return {"mean": mean, "per_language": per}


def token_languages(tokenizer, texts: dict[str, list[str]], dominance: float = DOMINANCE) -> dict[int, str]:
    """``{token id: language}`` for tokens clearly typical of one language in ``texts``."""
    freq = {}
    for lang, items in texts.items():
        counts = Counter(t for text in items for t in tokenizer(text, add_special_tokens=False)["input_ids"])
        total = sum(counts.values()) or 1
        freq[lang] = {t: n / total for t, n in counts.items()}
    out = {}
    for tok in set().union(*[f.keys() for f in freq.values()]):
        ranked = sorted(((f.get(tok, 0.0), lang) for lang, f in freq.items()), reverse=True)
        if len(ranked) == 1 or ranked[0][0] >= dominance * ranked[1][0]:
            out[tok] = ranked[0][1]
    return out


@torch.no_grad()
def logit_lens(
    loaded,
    batches,
    languages: list[str],
    tok_lang: dict[int, str],
    positions: int = LENS_POSITIONS,
    english: str = REFERENCE,
    forward=None,
) -> dict:
    """Per language and layer, the share of top-1 lens tokens of the target language (and of English).

    ``forward(model, adapter, batch)`` runs one batch (default: the text-only decoder body)."""
    forward = forward or (lambda model, a, batch: body_forward(model, a, batch, loaded.device))
    model, a = loaded.model, loaded.adapter
    norm = a.final_norm(model)
    target, eng = {}, {}
    for lang in languages:
        batch = next(b for b in batches if b.language == lang)
        keep = batch.count_mask.clone()
        keep[keep.flatten().cumsum(0).view_as(keep) > positions] = False  # first `positions` counted tokens
        captured = {}

        def grab(h, site, keep=keep, captured=captured):  # h: [B, T, D]
            captured[site] = h[keep.to(h.device)].detach()  # [N, D]

        with hooks(model, {f"blocks.{i}.hook_resid_post": grab for i in range(a.n_layers)}):
            forward(model, a, batch)
        t_share, e_share = [], []
        for i in range(a.n_layers):
            top = unembed(model, norm(captured[f"blocks.{i}.hook_resid_post"])).argmax(-1).tolist()  # [N]
            labels = [tok_lang.get(t) for t in top]
            t_share.append(sum(x == lang for x in labels) / max(len(labels), 1))
            e_share.append(sum(x == english for x in labels) / max(len(labels), 1))
        target[lang], eng[lang] = t_share, e_share
    return {
        "target_share": target,
        "english_share": eng,
        "positions": positions,
        "onset_layer": {lang: onset(s) for lang, s in target.items()},
    }


def visual_batches(loaded, items, languages: list[str], max_tokens: int, batch_size: int) -> list:
    """Image + question batches per language (``models.vision.VisualBatch``), items in order until
    about ``max_tokens`` text positions per language are counted."""
    out = []
    for lang in languages:
        counted = 0
        for s in range(0, len(items), batch_size):
            if counted >= max_tokens:
                break
            chunk = items[s : s + batch_size]
            batch = vision.encode(loaded, lang, [it.pil() for it in chunk], [it.questions[lang] for it in chunk])
            counted += int(batch.count_mask.sum())
            out.append(batch)
    return out


@torch.no_grad()
def visual_stats(loaded, batches, languages: list[str]) -> NeuronReducer:
    """Neuron statistics of the LVLM's language model on image + question batches (text positions only)."""
    a = loaded.adapter
    reducer = NeuronReducer(languages, a.n_layers, a.d_mlp, device=loaded.device,
                            token_selection="question tokens of image+question")
    with reducer.attach(loaded.model):
        for batch in shard(batches):
            reducer.select(batch.language, batch.count_mask)
            vision.body_forward(loaded.model, a, batch)
            reducer.flush()
    return reducer.all_reduce()


def onset(share: list[float]) -> int | None:
    """First layer from which ``share`` stays at or above half its last value (None if it is 0)."""
    if not share or share[-1] <= 0:
        return None
    half = share[-1] / 2
    for i in range(len(share)):
        if all(x >= half for x in share[i:]):
            return i
    return None


def _scaled(values: list[float]) -> list[float]:
    top = max(values) if values else 0.0
    return [v / top if top > 0 else 0.0 for v in values]


def recommend(score: list[float], budget: float = BUDGET, max_depth: float = MAX_DEPTH) -> dict:
    """PLAST layer set and layer-swapping bottom/top counts from per-layer scores."""
    n = len(score)
    if not 0 < budget <= 1 or not 0 < max_depth <= 1:
        raise UsageError(f"--budget and --max_depth must be in (0, 1], got {budget} and {max_depth}.")
    depth = max(1, round(max_depth * n))
    k = min(depth, max(1, round(budget * n)))
    pool = sorted(range(depth), key=lambda i: (-score[i], i))
    mean = sum(score) / n
    bottom = next((i for i in range(n) if score[i] < mean), n)
    top = next((i for i in range(n) if score[n - 1 - i] < mean), n)
    bottom, top = min(bottom, n // 2), min(top, n // 2 - min(bottom, n // 2))
    return {"layers": sorted(pool[:k]), "bottom": bottom, "top": top, "budget": budget, "max_depth": max_depth}


def layer_report(
    model_name: str,
    languages: list[str],
    classes: torch.Tensor,
    p: torch.Tensor,
    lens: dict,
    neurons_source: dict,
    budget: float = BUDGET,
    max_depth: float = MAX_DEPTH,
    english: str = REFERENCE,
) -> dict:
    """The layers.json document (schema in the module doc)."""
    d_mlp = classes.shape[1]
    lang_share = ((classes == 1) | (classes == 2)).sum(1).double().div(d_mlp).tolist()
    spec_share = (classes == 1).sum(1).double().div(d_mlp).tolist()
    diff = activation_difference(p, languages, english)
    score = [(x + y) / 2 for x, y in zip(_scaled(lang_share), _scaled(diff["mean"]), strict=True)]
    return {
        "model": model_name,
        "languages": languages,
        "english": english,
        "recommended": recommend(score, budget, max_depth),
        "ranking": sorted(range(len(score)), key=lambda i: (-score[i], i)),
        "evidence": {
            "score": score,
            "language_neuron_share": lang_share,
            "specific_share": spec_share,
            "activation_difference": diff,
            "logit_lens": lens,
            "neurons": neurons_source,
        },
    }


def plot(doc: dict, path) -> None:
    """Per-layer score, neuron share, activation difference and mean lens share (PNG)."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    ev = doc["evidence"]
    fig, ax = plt.subplots(figsize=(8, 4), dpi=120)
    n = len(ev["score"])
    shares = list(ev["logit_lens"]["target_share"].values())
    lens_mean = [sum(s[i] for s in shares) / len(shares) for i in range(n)] if shares else [0.0] * n
    for name, ys in (
        ("score", ev["score"]),
        ("language-neuron share (scaled)", _scaled(ev["language_neuron_share"])),
        ("activation difference vs English (scaled)", _scaled(ev["activation_difference"]["mean"])),
        ("logit lens: target-language top-1 share", lens_mean),
    ):
        ax.plot(range(n), ys, marker="o", ms=3, label=name)
    for i in doc["recommended"]["layers"]:
        ax.axvspan(i - 0.5, i + 0.5, color="#ffe9b3", zorder=0)
    ax.set_xticks(range(n))
    ax.set_xlabel("layer (shaded: recommended for finetuning)")
    ax.set_title(f"language-specific layers: {doc['model']}", fontsize=9)
    ax.legend(fontsize=7)
    fig.tight_layout()
    fig.savefig(path)
    plt.close(fig)
