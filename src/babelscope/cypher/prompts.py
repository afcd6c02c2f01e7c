"""Prompts (zero- and few-shot) and extraction of the query from a model's output.

The instruction follows the Neo4j Text2Cypher benchmark prompt: schema, then question, then
"Cypher output:". The instruction and schema stay in English in every language (the paper
translates only the question). Few-shot examples are other items in the question's language.
"""

from __future__ import annotations

import re

INSTRUCTION = (
    "Generate Cypher statement to query a graph database. "
    "Use only the provided relationship types and properties in the schema."
)
STOP = ["\n\n", "\nQuestion:", "Question:"]  # generation stops here; queries are one line
MAX_GEN_TOKS = 64  # the longest gold query is 54 Gemma 3 tokens
DEFAULT_SHOTS = 3  # few-shot examples per prompt with --fewshot


def build_prompt(question: str, schema: str, examples: list[tuple[str, str]] = ()) -> str:
    """Prompt for one question; `examples` are (question, cypher) pairs shown before it."""
    parts = [INSTRUCTION, "", "Schema:", schema, ""]
    for q, c in examples:
        parts += [f"Question: {q}", f"Cypher output: {c}", ""]
    parts += [f"Question: {question}", "Cypher output:"]
    return "\n".join(parts)


def fewshot_examples(items, item_id: str, language: str, k: int = DEFAULT_SHOTS) -> list[tuple[str, str]]:
    """k examples of different kinds from other items (never the item itself), deterministic."""
    chosen, kinds = [], set()
    for item in items:
        if item.item_id == item_id or item.kind in kinds or language not in item.questions:
            continue
        if _template(item.item_id) == _template(item_id):
            continue  # not the same template with another entity: that would give the answer away
        chosen.append((item.questions[language], item.cypher))
        kinds.add(item.kind)
        if len(chosen) == k:
            break
    return chosen


def _template(item_id: str) -> str:
    return ".".join(item_id.split(".")[:2])


_SPECIAL = re.compile(r"<\|[^|>]*\|>|</?s>|<(?:end_of_turn|start_of_turn|eos|bos|pad)>")
_FENCE = re.compile(r"```[ \t]*(?:cypher|sql|neo4j)?[ \t]*\n?(.*?)(?:```|$)", re.S | re.I)
_PREFIX = re.compile(r"^\s*(?:cypher(?:\s+(?:query|output|statement))?\s*:)\s*", re.I)


def extract_query(text: str) -> str:
    """The Cypher in a model's output: no chat tokens, code fences, "Cypher:" prefix or trailing text."""
    text = _SPECIAL.sub(" ", text)
    fenced = _FENCE.search(text)
    if fenced:
        text = fenced.group(1)
    text = _PREFIX.sub("", text.strip())
    text = text.split("\n\n")[0]
    return " ".join(text.split())
