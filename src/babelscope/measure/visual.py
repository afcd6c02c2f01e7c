"""Multiple-choice accuracy of a vision-language model on image + question items, per language.

Each item is shown as MM-Bench lays it out (the image, the question, the lettered options and the
answer label, through the family's chat template when the processor has one); every option letter
is scored as a completion (`` A``, `` B``, ...) by its summed log-probability, as lm-eval scores
multiple choice, and the best-scoring letter is the prediction::

    acc, records = accuracy(loaded, held_out_items, ["eng_Latn", "zho_Hans"], limit=32)
    acc["zho_Hans"]     # {"accuracy": 0.41, "n": 32, "chance": 0.29}
"""

from __future__ import annotations

import torch

from babelscope.data.visual import LETTERS
from babelscope.models import vision

TASK = "visual"  # the task name in before/after tables


@torch.no_grad()
def choice_scores(loaded, item, language: str) -> list[float]:
    """Summed log-probability of each option letter after the item's prompt in ``language``."""
    n = len(item.options[language])
    image, prompt = item.pil(), item.prompt(language)
    batch = vision.encode(loaded, language, [image] * n, [prompt] * n, [f" {LETTERS[k]}" for k in range(n)])
    return vision.completion_logprob(loaded.model, batch).tolist()


def accuracy(loaded, items, languages: list[str], limit: int | None = None) -> tuple[dict, dict]:
    """(``{language: {"accuracy", "n", "chance"}}``, ``{language: [per-item records]}``) on the first
    ``limit`` items."""
    scores, records = {}, {}
    for lang in languages:
        rows = []
        for it in [it for it in items if lang in it.questions][:limit]:
            s = choice_scores(loaded, it, lang)
            pred = max(range(len(s)), key=s.__getitem__)
            rows.append({"item_id": it.item_id, "language": lang, "scores": s, "predicted": LETTERS[pred],
                         "answer": LETTERS[it.answer], "correct": pred == it.answer})
        n = len(rows)
        scores[lang] = {"accuracy": sum(r["correct"] for r in rows) / n if n else None, "n": n,
                        "chance": sum(1 / len(r["scores"]) for r in rows) / n if n else None}
        records[lang] = rows
    return scores, records
