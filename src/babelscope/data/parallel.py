"""Training data for ``babelscope finetune``: parallel pairs, question-translation pairs,
monolingual text and Text2Cypher pairs, tokenized and packed into fixed-length sequences.

Formats follow the papers the verb implements:

* **parallel** (Just Go Parallel, Qorib et al. 2025, ``scripts/prepare_parallel.py``): each pair
  is one document of ``"<lang>: <text>"`` lines; the line order is the sorted language tags, and
  after every block of ``block_size`` consecutive pairs of a language pair the order is reversed,
  so both directions appear equally. The loss covers the whole document.
* **qt** (PLAST, Fan et al. 2025): question-translation pairs; the prompt is the question in the
  target language, the completion its English translation; loss on the completion only.
* **mono**: one document per text (the monolingual control).
* **cypher**: the Text2Cypher issue's multilingual question-to-query pairs (prompt -> Cypher).

Data specs are ``<kind>:<source>`` with source ``builtin`` (train split only: held-out evaluation
items are excluded by item id *and* by text), a file that ``load_corpus`` reads, or
``hf:<dataset>``. ``cypher:builtin`` takes its pairs from the ``cypher_pairs`` function the caller
passes to ``build_docs`` (the finetune verb passes ``babelscope.cypher.questions.finetune_pairs``;
the data layer does not import the cypher package).
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


def parallel_docs(items, pivot: str, targets, block_size: int = DEFAULT_BLOCK_SIZE) -> list[Doc]:
    """Just Go Parallel documents for each (pivot, target) pair, direction alternating per block."""
    if block_size < 1:
        raise UsageError(f"--block_size must be at least 1, got {block_size}.")
    docs = []
    for target in targets:
        pairs = [it for it in items if pivot in it.texts and target in it.texts]
        ordered = sorted((pivot, target), key=lang_tag)
        for i, it in enumerate(pairs):
            order = ordered if (i // block_size) % 2 == 0 else ordered[::-1]
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


def cypher_docs(cypher_pairs: Callable, languages, split: str = "train") -> list[Doc]:
    """Text2Cypher prompt -> query pairs from ``cypher_pairs(languages, split=...)`` (the question
    set's own held-out split is excluded)."""
    try:
        pairs = cypher_pairs(languages, split=split)
    except ValueError as exc:
        raise DataError(f"cypher:builtin: {exc}") from None
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
    if kind == "cypher" and source != "builtin":
        raise UsageError(f"--data {spec!r}: cypher data comes only from the built-in questions (cypher:builtin).")
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
    Non-parallel documents are shuffled with ``seed``; parallel documents keep their block order
    and sit at the ``placement`` of the schedule (end = "Parallel Last", the paper's best).
    ``cypher_pairs``: the source of ``cypher:builtin`` pairs, ``(languages, split) -> [dict]``
    (``babelscope.cypher.questions.finetune_pairs``).
    """
    if placement not in PLACEMENTS:
        raise UsageError(f"--parallel_location {placement!r}: choose from {', '.join(PLACEMENTS)}.")
    languages = list(languages)
    targets = [lang for lang in languages if lang != pivot]
    if not targets:
        raise UsageError(f"--languages must name at least one language besides the pivot {pivot}.")
    parallel, other = [], []
    for spec in specs:
        kind, source = parse_spec(spec)
        if kind == "cypher":
            if cypher_pairs is None:
                raise UsageError(
                    f"--data {spec!r}: build_docs needs cypher_pairs=babelscope.cypher.questions.finetune_pairs "
                    "for Text2Cypher data."
                )
            other += cypher_docs(cypher_pairs, languages)
            continue
        wanted = languages if kind == "mono" else [pivot, *targets]
        items = _items(source, wanted, eval_items)
        random.Random(seed).shuffle(items)  # mix the corpus' sources; blocks are formed after this
        if kind == "parallel":
            parallel += parallel_docs(items, pivot, targets, block_size)
        elif kind == "qt":
            other += qt_docs(items, pivot, targets)
        else:
            other += mono_docs(items, languages)
    random.Random(seed).shuffle(other)
    docs = place(parallel, other, placement)
    if not docs:
        raise DataError(
            f"--data {' '.join(specs)} gave no training documents for {', '.join(languages)}; "
            "check the languages exist in the source (`babelscope ls sources`)."
        )
    return docs


def place(parallel: list, other: list, placement: str) -> list:
    """Put the parallel documents at the start, the end, or spread evenly between the others."""
    if placement == "start" or not other:
        return parallel + other
    if placement == "end" or not parallel:
        return other + parallel
    out, step = [], len(other) / len(parallel)  # "Parallel Distributed": one every len(other)/len(par)
    j = 0
    for i, doc in enumerate(parallel):
        upto = round((i + 1) * step)
        out += other[j:upto] + [doc]
        j = upto
    return out + other[j:]


# ----------------------------------------------------------------------------- packing


def pack(docs, tokenizer, max_length: int) -> list[tuple[list[int], list[int], list[int]]]:
    """Tokenize and pack documents, separated by BOS, into ``max_length`` chunks.

    Returns ``(input_ids, labels, attention_mask)`` per chunk; labels are -100 on prompts,
    separators and padding (the last chunk is padded, so no document is dropped). Labels are
    *not* shifted: label t is the token at t.
    """
    if max_length < 8:
        raise UsageError(f"--max_length must be at least 8 tokens, got {max_length}.")
    bos = tokenizer.bos_token_id if tokenizer.bos_token_id is not None else tokenizer.eos_token_id
    pad = pad_id_of(tokenizer)  # padding is masked and unlabelled: the id never reaches the loss
    ids, labels = [], []
    for doc in docs:
        p = tokenizer(doc.prompt, add_special_tokens=False)["input_ids"] if doc.prompt else []
        c = tokenizer(doc.completion, add_special_tokens=False)["input_ids"]
        ids += [bos, *p, *c]
        labels += [-100] * (1 + len(p)) + c
    chunks = []
    for start in range(0, len(ids), max_length):
        x, y = ids[start : start + max_length], labels[start : start + max_length]
        short = max_length - len(x)
        chunks.append((x + [pad] * short, y + [-100] * short, [1] * len(x) + [0] * short))
    return chunks


def summary(docs) -> dict:
    """Counts per kind and direction, for results.json."""
    out: dict = {}
    for d in docs:
        out.setdefault(d.kind, {}).setdefault(d.direction, 0)
        out[d.kind][d.direction] += 1
    return out
