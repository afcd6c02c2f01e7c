"""Cross-lingual attention transfer (the LAHIS paper's ``attn_transfer`` experiment).

The prompt states Alice's occupation twice, in two languages and with different occupations::

    <"Alice's occupation is X." in L1> She likes ice-cream. She always do sports in gym at morning.
    <"Alice's occupation is Y." in L2> Alice's occupation is a

and asks which one the model picks. Steering multiplies L1's top specific heads by ``scale`` (3.0,
"enhance L1") and/or sets L2's to ``weaken`` (0.0, "weaken L2") through the runtime head mask;
if the heads carry their language, the answer moves from Y towards X.

Layout follows ``Linuxin-xxx/LAHIS:src/multilingual_exps.py`` (``transfer_attn``, commit 3b84cc3):
10 occupations, every ordered pair (X, Y) with X != Y (90 prompts per language pair), the filler
sentences verbatim (grammar included), 5 greedy new tokens; a generation counts for X when it
contains X's English or L1 word (checked first), else for Y when it contains Y's English or L2
word. The logit comparison at the last prompt position takes, for each side, the better rank of
the first token of " <English word>" and of the native word, and counts X when its rank is lower.
The sentences and word lists below are babelscope's own (languages the official list lacks,
English and German among them, are ours too). Conditions: ``before`` (no mask), ``enhance``
(L1 x scale), ``weaken`` (L2 x weaken; the official code reads L2's heads from a file no script
writes, so babelscope uses L2's specific heads), ``both``.
"""

from __future__ import annotations

from itertools import permutations

import torch

from babelscope.errors import UsageError
from babelscope.models.head_mask import head_mask_hooks
from babelscope.models.hooks import hooks

NEW_TOKENS = 5  # greedy tokens generated per prompt (official)
SCALE = 3.0  # multiplier of L1's heads (official "hyper-parameter"; its demo uses 5.0)
WEAKEN = 0.0  # value of L2's heads
RATE = 0.01  # n = int(L * H * RATE) heads per language (official p; at least 1 here)
FILLER = "She likes ice-cream. She always do sports in gym at morning."  # official, verbatim
QUERY = "Alice's occupation is a"
CONDITIONS = ("before", "enhance", "weaken", "both")

# "{}" is the occupation; keys are ISO 639-3 codes (the part of a babelscope code before "_")
TEMPLATES = {
    "eng": "Alice's occupation is {}.",
    "deu": "Alices Beruf ist {}.",
    "fra": "Le métier d'Alice est {}.",
    "spa": "La profesión de Alice es {}.",
    "ita": "La professione di Alice è {}.",
    "por": "A profissão de Alice é {}.",
    "zho": "Alice的职业是{}。",
    "jpn": "アリスの職業は{}です。",
    "hin": "ऐलिस का पेशा {} है।",
    "rus": "Профессия Алисы — {}.",
}
OCCUPATIONS = {
    "eng": ["painter", "scientist", "doctor", "gardener", "lawyer", "dentist", "poet", "writer", "engineer",
            "director"],
    "deu": ["Maler", "Wissenschaftler", "Arzt", "Gärtner", "Anwalt", "Zahnarzt", "Dichter", "Schriftsteller",
            "Ingenieur", "Regisseur"],
    "fra": ["peintre", "scientifique", "médecin", "jardinier", "avocat", "dentiste", "poète", "écrivain",
            "ingénieur", "réalisateur"],
    "spa": ["pintor", "científico", "médico", "jardinero", "abogado", "dentista", "poeta", "escritor", "ingeniero",
            "director"],
    "ita": ["pittore", "scienziato", "medico", "giardiniere", "avvocato", "dentista", "poeta", "scrittore",
            "ingegnere", "regista"],
    "por": ["pintor", "cientista", "médico", "jardineiro", "advogado", "dentista", "poeta", "escritor",
            "engenheiro", "diretor"],
    "zho": ["画家", "科学家", "医生", "园丁", "律师", "牙医", "诗人", "作家", "工程师", "导演"],
    "jpn": ["画家", "科学者", "医者", "庭師", "弁護士", "歯科医", "詩人", "作家", "技術者", "映画監督"],
    "hin": ["चित्रकार", "वैज्ञानिक", "डॉक्टर", "माली", "वकील", "दंत चिकित्सक", "कवि", "लेखक", "इंजीनियर",
            "निर्देशक"],
    "rus": ["художник", "учёный", "врач", "садовник", "юрист", "стоматолог", "поэт", "писатель", "инженер",
            "режиссёр"],
}


def _iso3(lang: str) -> str:
    code = lang.split("_")[0]
    if code not in TEMPLATES:
        raise UsageError(f"--steer has no occupation sentences for {lang}; it knows "
                         f"{', '.join(sorted(TEMPLATES))}.")
    return code


def pairs(n: int = 10) -> list[tuple[int, int]]:
    """Every ordered pair of distinct occupation indices (90 for 10 occupations)."""
    return list(permutations(range(n), 2))


def prompt(l1: str, l2: str, i: int, j: int) -> str:
    """The transfer prompt: occupation i stated in l1, occupation j in l2, then the English query."""
    a, b = _iso3(l1), _iso3(l2)
    return (f"{TEMPLATES[a].format(OCCUPATIONS[a][i])} {FILLER} {TEMPLATES[b].format(OCCUPATIONS[b][j])} "
            f"{QUERY}")


def prompts(l1: str, l2: str) -> list[tuple[int, int, str]]:
    """(i, j, prompt) for every ordered pair."""
    return [(i, j, prompt(l1, l2, i, j)) for i, j in pairs(len(OCCUPATIONS["eng"]))]


def n_heads_for(adapter, rate: float = RATE) -> int:
    """The official n = int(L * H * rate), at least 1 (tiny models steer something)."""
    return max(1, int(adapter.n_layers * adapter.n_heads * rate))


def steer_mask(adapter, enhance: list[int], weaken: list[int], scale: float = SCALE,
               weaken_value: float = WEAKEN) -> torch.Tensor:
    """A [L, H] multiplier mask: ones, ``enhance`` heads at ``scale``, then ``weaken`` heads at ``weaken_value``."""
    mask = torch.ones(adapter.n_layers * adapter.n_heads)  # [L*H]
    for heads, value in ((enhance, scale), (weaken, weaken_value)):
        if heads:
            mask[torch.tensor(heads, dtype=torch.long)] = float(value)
    return mask.view(adapter.n_layers, adapter.n_heads)  # [L, H]


def first_token(tokenizer, text: str) -> int:
    """The first token id of ``text`` without special tokens (the official code takes the token after BOS)."""
    ids = tokenizer(text, add_special_tokens=False).input_ids
    return ids[0] if ids else tokenizer.unk_token_id or 0


def rank_of(logits: torch.Tensor, token: int) -> int:
    """0-based rank of ``token`` in ``logits`` [V] (ties broken by id, as a stable descending sort)."""
    order = torch.argsort(logits.float(), descending=True, stable=True)  # [V]
    return int((order == token).nonzero()[0, 0])


def _one(loaded, text: str, max_new_tokens: int) -> tuple[str, torch.Tensor]:
    """Greedy continuation and the last-position logits [V] of one prompt (hooks already on)."""
    from babelscope.measure.generate import Decoder, greedy_tokens

    enc = loaded.tokenizer(text, return_tensors="pt").to(loaded.device)
    with torch.no_grad():
        logits = loaded.model(**enc).logits[0, -1]  # [V]
    new = greedy_tokens(Decoder.of(loaded.model, loaded.tokenizer), enc["input_ids"].tolist(), max_new_tokens)[0]
    return loaded.tokenizer.decode(new, skip_special_tokens=True).strip(), logits


def transfer(loaded, l1: str, l2: str, mask: torch.Tensor | None = None, max_new_tokens: int = NEW_TOKENS,
             progress=None) -> dict:
    """Shares of the 90 prompts answered with X (l1's occupation) and Y (l2's), and the logit-rank share of X."""
    a, b = _iso3(l1), _iso3(l2)
    eng, tok = OCCUPATIONS["eng"], loaded.tokenizer
    sites = head_mask_hooks(mask.to(loaded.device), loaded.adapter) if mask is not None else {}
    x = y = rank_x = 0
    samples = []
    items = prompts(l1, l2)
    with hooks(loaded.model, sites, adapter=loaded.adapter):
        for i, j, text in items:
            gen, logits = _one(loaded, text, max_new_tokens)
            xw, yw = (eng[i], OCCUPATIONS[a][i]), (eng[j], OCCUPATIONS[b][j])
            said = "x" if any(w in gen for w in xw) else "y" if any(w in gen for w in yw) else None
            x, y = x + (said == "x"), y + (said == "y")
            rx = min(rank_of(logits, first_token(tok, " " + xw[0])), rank_of(logits, first_token(tok, xw[1])))
            ry = min(rank_of(logits, first_token(tok, " " + yw[0])), rank_of(logits, first_token(tok, yw[1])))
            rank_x += rx < ry
            samples.append({"x": xw[1], "y": yw[1], "generation": gen, "answer": said, "rank_x": rx, "rank_y": ry})
            if progress is not None:
                progress.update(1)
    n = len(items)
    return {"x_share": x / n, "y_share": y / n, "x_rank_share": rank_x / n, "n": n, "samples": samples}


def off_target_rate(loaded, texts: list[str], lang: str, mask: torch.Tensor | None, batch_size: int = 8,
                    max_new_tokens: int = 16, lid=None) -> dict:
    """Off-target rate (``lid``, default py3langid, as ``heads --validate``) of greedy continuations of
    ``texts`` under ``mask``."""
    from babelscope.interpret.lahis_validate import identify, off_target_share
    from babelscope.measure.engine import Engine
    from babelscope.measure.lid import identifier

    lid = lid or identifier()
    sites = head_mask_hooks(mask.to(loaded.device), loaded.adapter) if mask is not None else {}
    with hooks(loaded.model, sites, adapter=loaded.adapter):
        gens = Engine(loaded, batch_size=batch_size, progress=False).generate_until(
            [(p, {"until": [], "max_gen_toks": max_new_tokens}) for p in texts])
    labels = [identify(g, lid) for g in gens]
    rate = off_target_share(labels, lang) if lang in lid.names() else None
    return {"off_target_rate": rate, "judged": sum(lab is not None for lab in labels), "n": len(gens),
            "target_label": lang}


def steer(loaded, l1: str, l2: str, specific: dict[str, list[int]], rate: float = RATE, scale: float = SCALE,
          weaken: float = WEAKEN, max_new_tokens: int = NEW_TOKENS, off_target_prompts: list[str] | None = None,
          batch_size: int = 8, progress=None, lid=None) -> dict:
    """The transfer experiment under the four conditions, with l1's off-target rate (identifier ``lid``) under
    each when ``off_target_prompts`` (held-out l1 text) are given. ``specific``: each language's specific heads,
    best first."""
    _iso3(l1), _iso3(l2)
    if l1 == l2:
        raise UsageError(f"--steer needs two different languages, got {l1} twice.")
    a = loaded.adapter
    n = n_heads_for(a, rate)
    up, down = specific.get(l1, [])[:n], specific.get(l2, [])[:n]
    masks = {"before": None, "enhance": steer_mask(a, up, [], scale),
             "weaken": steer_mask(a, [], down, weaken_value=weaken), "both": steer_mask(a, up, down, scale, weaken)}
    out = {"l1": l1, "l2": l2, "scale": scale, "weaken": weaken, "rate": rate, "n_heads": n,
           "enhanced_heads": up, "weakened_heads": down, "conditions": {}}
    for name, mask in masks.items():
        row = transfer(loaded, l1, l2, mask, max_new_tokens, progress)
        if off_target_prompts:
            row["off_target"] = off_target_rate(loaded, off_target_prompts, l1, mask, batch_size, lid=lid)
        out["conditions"][name] = row
    return out
