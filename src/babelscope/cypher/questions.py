"""The built-in multilingual Text2Cypher question set (`data/questions.jsonl`).

Each line is one item: `item_id`, `kind` (lookup | filter | aggregation | ordering | multi-hop),
the gold `cypher` (over the built-in graph; literals are the graph's English names) and
`questions` {FLORES code: question}. Items are aligned across languages by item_id.
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass
from pathlib import Path

from babelscope.cypher.prompts import build_prompt
from babelscope.cypher.schema import builtin_schema_text
from babelscope.errors import DataError, UsageError
from babelscope.languages import resolve_many

DATA_FILE = Path(__file__).parent / "data" / "questions.jsonl"
KINDS = ("lookup", "filter", "aggregation", "ordering", "multi-hop")
DEFAULT_HELDOUT_FRACTION = 0.2  # share of item_ids held out from finetuning pairs


@dataclass(frozen=True)
class CypherItem:
    item_id: str
    kind: str
    cypher: str
    questions: dict  # {language code: question text}


def load_questions(path: str | Path | None = None) -> list[CypherItem]:
    """Read the question set (the built-in one unless `path` names another JSONL file)."""
    path = Path(path) if path else DATA_FILE
    if not path.is_file():
        raise UsageError(f"question file {path} does not exist; pass a JSONL file (see docs/cypher.md).")
    items = []
    try:
        with open(path, encoding="utf-8-sig") as f:
            for n, line in enumerate(f, 1):
                if line.strip():
                    items.append(_question(line, f"{path} line {n}"))
    except UnicodeDecodeError:
        raise DataError(f"{path} is not UTF-8 text (a binary file?); questions are JSONL in UTF-8.") from None
    return items


def _question(line: str, where: str) -> CypherItem:
    try:
        rec = json.loads(line)
    except json.JSONDecodeError as exc:
        raise DataError(f"{where} is not JSON ({exc.msg}).") from None
    if not isinstance(rec, dict) or not isinstance(rec.get("questions"), dict):
        raise DataError(f"{where}: every row is an object with item_id, kind, cypher and questions {{language: text}}.")
    try:
        return CypherItem(str(rec["item_id"]), str(rec["kind"]), str(rec["cypher"]), rec["questions"])
    except KeyError as exc:
        raise DataError(f"{where}: no field {exc}.") from None


def question_languages(items: list[CypherItem]) -> list[str]:
    """Languages that every item has."""
    common = set(items[0].questions) if items else set()
    for item in items:
        common &= set(item.questions)
    return sorted(common)


def is_heldout(item_id: str, fraction: float = DEFAULT_HELDOUT_FRACTION) -> bool:
    """Deterministic split by item_id: the same item is on the same side in every language."""
    h = int.from_bytes(hashlib.sha256(item_id.encode()).digest()[:8], "big")
    return h / 2**64 < fraction


def finetune_pairs(
    languages=None,
    split: str = "train",
    fraction: float = DEFAULT_HELDOUT_FRACTION,
    with_schema: bool = True,
) -> list[dict]:
    """Question-to-query training pairs for the finetune verb.

    `languages`: codes (any form `languages.resolve` accepts), a comma string, or None / "all".
    `split`: "train", "heldout" or "all"; the split is by item_id, so no item leaks across
    languages. Each pair is a dict with `prompt` (instruction + schema + question, as
    `prompts.build_prompt` renders it), `completion` (the gold Cypher), `text` (both), `item_id`,
    `language` and `kind`.
    """
    if split not in ("train", "heldout", "all"):
        raise ValueError(f"split must be 'train', 'heldout' or 'all', not {split!r}")
    items = load_questions()
    available = question_languages(items)
    langs = available if languages is None or languages == "all" else resolve_many(languages)
    missing = [lang for lang in langs if lang not in available]
    if missing:
        raise ValueError(f"no Cypher questions in {', '.join(missing)}; available: {', '.join(available)}")
    schema = builtin_schema_text() if with_schema else None
    pairs = []
    for item in items:
        held = is_heldout(item.item_id, fraction)
        if (split == "train" and held) or (split == "heldout" and not held):
            continue
        for lang in langs:
            prompt = build_prompt(item.questions[lang], schema or "")
            completion = " " + item.cypher
            pairs.append(
                {
                    "item_id": item.item_id,
                    "language": lang,
                    "kind": item.kind,
                    "prompt": prompt,
                    "completion": completion,
                    "text": prompt + completion,
                }
            )
    return pairs


def select_items(items, limit: int | None) -> list:
    """The first ``limit`` items taken round-robin over kinds, so a small run covers every kind."""
    if not limit or limit >= len(items):
        return list(items)
    by_kind: dict[str, list] = {}
    for item in items:
        by_kind.setdefault(item.kind, []).append(item)
    queues = [list(v) for _, v in sorted(by_kind.items())]
    out: list = []
    while len(out) < limit:
        for q in queues:
            if q and len(out) < limit:
                out.append(q.pop(0))
    return out
