"""Built-in aligned tasks over the built-in corpus' held-out split.

* ``continuation``: the first half of a paragraph; pick its true second half among 4 (the
  distractors are second halves of other paragraphs in the same language).
* ``translation``: an English paragraph; pick its true translation among 4 (for English itself
  the source is the first other requested language).
* ``bpc``: bits per character and per byte of the paragraphs (comparable across tokenizers).

Every item keeps its ``item_id`` in every language, the distractors are the same items in every
language, and the gold index is the same everywhere, so per-item answers can be compared across
languages (consistency). The items come from the held-out side of ``data.split.split_for_eval``
(one split for all of babelscope: finetune, mask and merge train on the other side only).
"""

from __future__ import annotations

import hashlib
import random

from babelscope.data.corpus import load_corpus
from babelscope.data.split import split_for_eval
from babelscope.errors import LanguageError, UsageError
from babelscope.languages import REFERENCE, info
from babelscope.measure.tasks import MCItem, Task, TextItem, register

N_CHOICES = 4  # options per multiple-choice item
_MIN_SPACES = 3  # texts with fewer spaces are split by characters (CJK, Thai, ...)


def _hash(text: str) -> int:
    return int.from_bytes(hashlib.sha256(text.encode("utf-8")).digest()[:8], "big")


def _eval_pool(languages: list[str], source) -> list:
    """Held-out items present in every one of ``languages``, in a fixed pseudo-random order."""
    corpus = load_corpus(source)
    missing = [lang for lang in languages if lang not in corpus.counts()]
    if missing:
        raise LanguageError(
            f"language(s) {', '.join(missing)} not in the {corpus.name or source} corpus; "
            f"available: {', '.join(corpus.languages)}."
        )
    _, held = split_for_eval(corpus)
    pool = [it for it in held if all(lang in it.texts and it.texts[lang].strip() for lang in languages)]
    if not pool:
        raise UsageError(f"no held-out item has text in all of {', '.join(languages)}; use fewer languages.")
    return sorted(pool, key=lambda it: _hash(f"order:{it.item_id}"))


def split_text(text: str) -> tuple[str, str]:
    """``(first half, second half)``: at the middle space, or the middle character without spaces."""
    text = text.strip()
    words = text.split(" ")
    if len(words) > _MIN_SPACES:
        k = len(words) // 2
        return " ".join(words[:k]), " " + " ".join(words[k:])
    k = max(1, len(text) // 2)
    return text[:k], text[k:]


def _pick(item_id: str, pool_ids: list[str], ok, n: int = N_CHOICES - 1) -> list[int]:
    """``n`` indices of distractor items for ``item_id``, seeded by the id.

    ``ok(i)``: item i's text differs from the gold item's; ``ok(i, j)``: items i and j differ.
    """
    rng = random.Random(_hash(f"distract:{item_id}"))
    candidates = list(range(len(pool_ids)))
    rng.shuffle(candidates)
    picks = []
    for i in candidates:
        if pool_ids[i] != item_id and ok(i) and all(ok(i, j) for j in picks):
            picks.append(i)
            if len(picks) == n:
                break
    return picks


def _with_distractors(pool, limit, languages, text_of):
    """``(index, item, distractor indices)`` for the first ``limit`` items of ``pool`` that get
    ``N_CHOICES - 1`` distractors whose texts ``text_of(j, lang)`` differ, in every one of
    ``languages``, from the item's and from each other (others are skipped)."""
    ids = [it.item_id for it in pool]
    for idx, it in enumerate(pool[: limit or len(pool)]):

        def differs(j, other=None, idx=idx):
            k = idx if other is None else other
            return all(text_of(j, lang).strip() != text_of(k, lang).strip() for lang in languages)

        picks = _pick(it.item_id, ids, differs)
        if len(picks) == N_CHOICES - 1:
            yield idx, it, picks


def _arrange(item_id: str, gold_text: str, distractors: list[str]) -> tuple[list[str], int]:
    gold = _hash(f"gold:{item_id}") % (len(distractors) + 1)
    choices = list(distractors)
    choices.insert(gold, gold_text)
    return choices, gold


def _with_delimiter(text: str, like: str) -> str:
    return " " + text.lstrip() if like.startswith(" ") else text.lstrip()


class Continuation(Task):
    name = "continuation"
    kind = "mc"
    description = "pick the true second half of a held-out paragraph among 4 (built-in corpus)"

    def load(self, languages, source="builtin", limit=None):
        pool = _eval_pool(languages, source)
        halves = [{lang: split_text(it.texts[lang]) for lang in languages} for it in pool]
        out = {lang: [] for lang in languages}
        for idx, it, picks in _with_distractors(pool, limit, languages, lambda j, lang: halves[j][lang][1]):
            for lang in languages:
                head, tail = halves[idx][lang]
                choices, gold = _arrange(it.item_id, tail, [_with_delimiter(halves[j][lang][1], tail) for j in picks])
                out[lang].append(MCItem(it.item_id, head, choices, gold))
        return out


class Translation(Task):
    name = "translation"
    kind = "mc"
    description = "pick the true translation of an English paragraph among 4 (built-in corpus)"

    @staticmethod
    def source_language(target: str, languages: list[str]) -> str:
        if target != REFERENCE:
            return REFERENCE
        others = [lang for lang in languages if lang != REFERENCE]
        return others[0] if others else "fra_Latn"

    def load(self, languages, source="builtin", limit=None):
        needed = list(
            dict.fromkeys([*languages, REFERENCE, *(self.source_language(lang, languages) for lang in languages)])
        )
        pool = _eval_pool(needed, source)
        out = {lang: [] for lang in languages}
        for _, it, picks in _with_distractors(pool, limit, needed, lambda j, lang: pool[j].texts[lang]):
            for lang in languages:
                src = self.source_language(lang, languages)
                context = f"{info(src).name}: {it.texts[src].strip()}\n{info(lang).name}:"
                choices, gold = _arrange(
                    it.item_id, " " + it.texts[lang].strip(), [" " + pool[j].texts[lang].strip() for j in picks]
                )
                out[lang].append(MCItem(it.item_id, context, choices, gold))
        return out


class BitsPerChar(Task):
    name = "bpc"
    kind = "bpc"
    description = "bits per character and per byte of held-out paragraphs (built-in corpus)"

    def load(self, languages, source="builtin", limit=None):
        pool = _eval_pool(languages, source)[: limit or None]
        return {lang: [TextItem(it.item_id, it.texts[lang].strip()) for it in pool] for lang in languages}


register("continuation", Continuation)
register("translation", Translation)
register("bpc", BitsPerChar)
