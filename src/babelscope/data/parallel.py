"""Training data for ``babelscope finetune``: parallel pairs, question-translation pairs,
monolingual text and Text2Cypher pairs, tokenized and packed into fixed-length sequences.

Formats follow the papers the verb implements:

* **parallel** (Just Go Parallel, Qorib et al. 2025, ``scripts/prepare_parallel.py``): each pair
  is one document of ``"<lang>: <text>"`` lines. The schedule goes in rounds: each round takes the
  next ``block_size`` (1000) pairs of every language pair in turn, all in one direction (the sorted
  language tags, or their reverse); the direction flips after every round. See ``jgp_rounds``.
  The loss covers the whole document.
* **qt** (PLAST, Fan et al. 2025): question-translation pairs; the prompt is the question in the
  target language, the completion its English translation; loss on the completion only.
* **mono**: one document per text (the monolingual control).
* **cypher**: the Text2Cypher issue's multilingual question-to-query pairs (prompt -> Cypher).

Data specs are ``<kind>:<source>`` with source ``builtin`` (train split only: held-out evaluation
items are excluded by item id *and* by text), a file that ``load_corpus`` reads, or
``hf:<dataset>``. ``cypher:builtin`` and ``cypher:<file>`` (a text2cypher-layout training file) take
their pairs from the ``cypher_pairs`` function the caller passes to ``build_docs`` (the finetune
verb passes ``babelscope.cypher.training.training_pairs``; the data layer does not import the
cypher package).
"""

from __future__ import annotations

import random
from collections.abc import Callable
from dataclasses import dataclass

from babelscope.data.corpus import BUILTIN, load_corpus
from babelscope.data.split import split_for_eval
from babelscope.errors import DataError, UsageError
from babelscope.languages import REFERENCE, info
from babelscope.models.forward import pad_id_of

KINDS = ("parallel", "qt", "mono", "cypher")  # the data kinds --data accepts
DEFAULT_BLOCK_SIZE = 1000  # pairs per direction block, as in Just Go Parallel
PLACEMENTS = ("end", "start", "interleave")  # where parallel data sits in the schedule


@dataclass(frozen=True)
class Doc:
    """One training document: the loss is computed on ``completion`` only."""

    prompt: str  # context without loss ("" for plain language-model text)
    completion: str  # text the loss covers
    kind: str  # one of KINDS
    item_id: str
    direction: str = ""  # "eng_Latn>fra_Latn" for pairs, the language for mono


def lang_tag(code: str) -> str:
    """The short tag written before each line (``en`` as in the paper; the code when no ISO 639-1)."""
    try:
        return info(code).iso1 or code
    except Exception:  # a well-formed code the language table does not know
        return code


# ----------------------------------------------------------------------------- formatting


def jgp_rounds(sizes: list[int], block_size: int = DEFAULT_BLOCK_SIZE, first_swap: bool = False) -> list:
    """The Just Go Parallel schedule over language pairs with ``sizes[k]`` pairs each.

    Returns ``(pair index, item index, reversed)`` in training order: round after round, each
    language pair in turn contributes its next ``block_size`` items, all with the same direction;
    the direction flips after each full round (also when some pairs have run out), until every pair
    is used up. This follows ``prepare()`` of the official ``scripts/prepare_parallel.py``
    (``CONSECUTIVE = 1000``, ``should_swap``, ``first_swap``).
    """
    if block_size < 1:
        raise UsageError(f"--block_size must be at least 1, got {block_size}.")
    out, taken, swap = [], [0] * len(sizes), first_swap
    while any(t < n for t, n in zip(taken, sizes, strict=True)):
        for k, n in enumerate(sizes):
            end = min(n, taken[k] + block_size)
            out += [(k, i, swap) for i in range(taken[k], end)]
            taken[k] = end
        swap = not swap
    return out


def parallel_docs(items, pivot: str, targets, block_size: int = DEFAULT_BLOCK_SIZE) -> list[Doc]:
    """Just Go Parallel documents for the (pivot, target) pairs, in the rounds of ``jgp_rounds``."""
    return schedule_pairs([(pivot, t, items) for t in targets], block_size)


def schedule_pairs(splits, block_size: int = DEFAULT_BLOCK_SIZE) -> list[Doc]:
    """``[(pivot, target, items)]`` -> documents in the Just Go Parallel round order."""
    pairs = [[it for it in items if a in it.texts and b in it.texts] for a, b, items in splits]
    docs = []
    for k, i, swap in jgp_rounds([len(p) for p in pairs], block_size):
        a, b, _ = splits[k]
        it = pairs[k][i]
        order = sorted((a, b), key=lang_tag, reverse=swap)  # sorted(keys, reverse=reverse) as the official
        text = "\n".join(f"{lang_tag(lang)}: {it.texts[lang]}" for lang in order)
        docs.append(Doc("", text, "parallel", it.item_id, f"{order[0]}>{order[1]}"))
    return docs


def qt_docs(items, pivot: str, targets) -> list[Doc]:
    """PLAST question-translation pairs: the target-language text, then its pivot translation."""
    docs = []
    for target in targets:
        for it in items:
            if pivot in it.texts and target in it.texts:
                prompt = f"{lang_tag(target)}: {it.texts[target]}\n{lang_tag(pivot)}:"
                docs.append(Doc(prompt, f" {it.texts[pivot]}", "qt", it.item_id, f"{target}>{pivot}"))
    return docs


def mono_docs(items, languages) -> list[Doc]:
    """Monolingual documents: each text of each item in each language."""
    return [Doc("", it.texts[lang], "mono", it.item_id, lang) for lang in languages for it in items if lang in it.texts]


def cypher_docs(cypher_pairs: Callable, languages, split: str = "train", source: str = "builtin") -> list[Doc]:
    """Text2Cypher prompt -> query pairs from ``cypher_pairs(languages, split=...)`` (the question
    set's own held-out split is excluded), or ``cypher_pairs(languages, split=..., source=file)``."""
    try:
        if source == "builtin":
            pairs = cypher_pairs(languages, split=split)
        else:
            pairs = cypher_pairs(languages, split=split, source=source)
    except ValueError as exc:
        raise DataError(f"cypher:{source}: {exc}") from None
    return [Doc(p["prompt"], p["completion"], "cypher", p["item_id"], p["language"]) for p in pairs]


# ----------------------------------------------------------------------------- sources


def exclude_eval(items, eval_items) -> list:
    """Drop items that share an item id or any text with an evaluation item (no leakage)."""
    ids = {it.item_id for it in eval_items}
    texts = {t.strip() for it in eval_items for t in it.texts.values()}
    return [it for it in items if it.item_id not in ids and not any(t.strip() in texts for t in it.texts.values())]


def _items(source: str, languages, eval_items) -> list:
    """Training items of one source: builtin's train split, or a user file / hub dataset."""
    corpus = load_corpus(source, languages=[lang for lang in languages])
    if source == BUILTIN:
        items, _ = split_for_eval(corpus)
    else:
        items = list(corpus.items)
    return exclude_eval(items, eval_items)


def parse_spec(spec: str) -> tuple[str, str]:
    """``"parallel:builtin"`` -> ("parallel", "builtin"); a file path may contain colons."""
    kind, sep, source = str(spec).partition(":")
    if not sep or kind not in KINDS or not source:
        raise UsageError(
            f"--data {spec!r}: write <kind>:<source> with kind in {', '.join(KINDS)} and source "
            "builtin, a corpus file, or hf:<dataset> (e.g. parallel:builtin)."
        )
    if kind == "cypher" and source.startswith("hf:"):
        raise UsageError(f"--data {spec!r}: cypher data comes from cypher:builtin or a local text2cypher-layout "
                         "file (cypher:train.parquet); download the hub dataset first.")
    return kind, source


def build_docs(
    specs,
    languages,
    pivot: str = REFERENCE,  # the language the others are paired with (PLAST translates into English)
    eval_items=(),
    block_size: int = DEFAULT_BLOCK_SIZE,
    placement: str = "end",
    seed: int = 0,
    cypher_pairs: Callable | None = None,
) -> list[Doc]:
    """All ``--data`` specs -> one ordered schedule of documents.

    ``languages``: the training languages (codes); those other than ``pivot`` are the targets.
    Non-parallel documents are shuffled with ``seed``; parallel documents of every spec and target
    follow the Just Go Parallel rounds (``jgp_rounds``) and sit at the ``placement`` of the
    schedule (end = "Parallel Last", the paper's best; start = "Parallel First"; interleave =
    "Parallel Distributed").
    ``cypher_pairs``: the source of ``cypher:`` pairs, ``(languages, split[, source]) -> [dict]``
    (``babelscope.cypher.training.training_pairs``; ``source`` is passed for a file).
    """
    if placement not in PLACEMENTS:
        raise UsageError(f"--parallel_location {placement!r}: choose from {', '.join(PLACEMENTS)}.")
    languages = list(languages)
    targets = [lang for lang in languages if lang != pivot]
    if not targets:
        raise UsageError(f"--languages must name at least one language besides the pivot {pivot}.")
    splits, other = [], []
    for spec in specs:
        kind, source = parse_spec(spec)
        if kind == "cypher":
            if cypher_pairs is None:
                raise UsageError(
                    f"--data {spec!r}: build_docs needs cypher_pairs=babelscope.cypher.training.training_pairs "
                    "for Text2Cypher data."
                )
            other += cypher_docs(cypher_pairs, languages, source=source)
            continue
        wanted = languages if kind == "mono" else [pivot, *targets]
        items = _items(source, wanted, eval_items)
        random.Random(seed).shuffle(items)  # mix the corpus' sources; blocks are formed after this
        if kind == "parallel":
            splits += [(pivot, target, items) for target in targets]
        elif kind == "qt":
            other += qt_docs(items, pivot, targets)
        else:
            other += mono_docs(items, languages)
    if block_size < 1:
        raise UsageError(f"--block_size must be at least 1, got {block_size}.")
    random.Random(seed).shuffle(other)
    docs = place(schedule_pairs(splits, block_size), other, placement)
    if not docs:
        raise DataError(
            f"--data {' '.join(specs)} gave no training documents for {', '.join(languages)}; "
            "check the languages exist in the source (`babelscope ls sources`)."
        )
    return docs


def place(parallel: list, other: list, placement: str) -> list:
    """Put the parallel documents first, last, or spread through the others.

    ``interleave`` follows ``create_dataloader`` of the official ``pretrain/tinyllama.py``
    (``slim_perc=1``, no offset): each parallel unit is followed by the others up to
    ``round(ratio * (i + 1))`` of them, ratio = len(other) / len(parallel); the rest go last.
    The official units are packed token files; here they are documents.
    """
    if placement == "start" or not other:
        return parallel + other
    if placement == "end" or not parallel:
        return other + parallel
    out, done, ratio = [], 0, len(other) / len(parallel)
    for i, doc in enumerate(parallel):
        upto = round(ratio * (i + 1))
        out += [doc, *other[done:upto]]
        done = max(done, upto)
    return out + other[done:]


def subsample(docs: list, keep: int) -> list:
    """An evenly spaced ``keep`` of ``docs`` in their order (placement and rounds keep their shares)."""
    n = len(docs)
    if keep >= n:
        return list(docs)
    return [docs[(2 * j + 1) * n // (2 * keep)] for j in range(max(0, keep))]


# ----------------------------------------------------------------------------- packing


def pack(docs, tokenizer, max_length: int) -> list[tuple[list[int], list[int], list[int]]]:
    """Tokenize and pack documents, separated by BOS, into ``max_length`` chunks.

    Returns ``(input_ids, labels, attention_mask)`` per chunk; labels are -100 on prompts,
    separators and padding (the last chunk is padded, so no document is dropped). Labels are
    *not* shifted: label t is the token at t.
    """
    return pack_docs(docs, tokenizer, max_length)[0]


def pack_docs(docs, tokenizer, max_length: int) -> tuple[list, list[list[int]]]:
    """``pack`` plus, per chunk, the indices of the documents whose first token (BOS) it holds."""
    if max_length < 8:
        raise UsageError(f"--max_length must be at least 8 tokens, got {max_length}.")
    bos = tokenizer.bos_token_id if tokenizer.bos_token_id is not None else tokenizer.eos_token_id
    pad = pad_id_of(tokenizer)  # padding is masked and unlabelled: the id never reaches the loss
    ids, labels, starts = [], [], []
    for doc in docs:
        p = tokenizer(doc.prompt, add_special_tokens=False)["input_ids"] if doc.prompt else []
        c = tokenizer(doc.completion, add_special_tokens=False)["input_ids"]
        starts.append(len(ids))
        ids += [bos, *p, *c]
        labels += [-100] * (1 + len(p)) + c
    chunks = []
    for start in range(0, len(ids), max_length):
        x, y = ids[start : start + max_length], labels[start : start + max_length]
        short = max_length - len(x)
        chunks.append((x + [pad] * short, y + [-100] * short, [1] * len(x) + [0] * short))
    where = [[] for _ in chunks]
    for i, at in enumerate(starts):
        where[at // max_length].append(i)
    return chunks, where


def summary(docs) -> dict:
    """Counts per kind and direction, for results.json."""
    out: dict = {}
    for d in docs:
        out.setdefault(d.kind, {}).setdefault(d.direction, 0)
        out[d.kind][d.direction] += 1
    return out


def seen(docs, fed) -> dict:
    """Counts per kind and direction of the documents with indices ``fed`` (as the loop fed them)."""
    return summary(docs[i] for i in fed)
