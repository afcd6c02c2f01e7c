"""Prompts (zero- and few-shot) and extraction of the query from a model's output.

The instruction follows the Neo4j Text2Cypher benchmark prompt: schema, then question, then
"Cypher output:". The instruction and schema stay in English in every language (the paper
translates only the question). Few-shot examples are other items in the question's language.
``translate=True`` puts the instruction and the labels in the question's language, the paper's
prompt-translation experiment (the translations below are babelscope's; the paper's were not
published); the schema and the Cypher stay English.
"""

from __future__ import annotations

import re

from babelscope.errors import UsageError

INSTRUCTION = (
    "Generate Cypher statement to query a graph database. "
    "Use only the provided relationship types and properties in the schema."
)
STOP = ["\n\n", "\nQuestion:", "Question:"]  # generation stops here; queries are one line
LABELS = {  # language -> (instruction, "Schema:", "Question:", "Cypher output:") for translate=True
    "eng_Latn": (INSTRUCTION, "Schema:", "Question:", "Cypher output:"),
    "spa_Latn": ("Genera una consulta Cypher para consultar una base de datos de grafos. Usa solo los tipos de "
                 "relación y las propiedades del esquema proporcionado.", "Esquema:", "Pregunta:", "Salida Cypher:"),
    "tur_Latn": ("Bir graf veritabanını sorgulamak için bir Cypher ifadesi oluştur. Yalnızca verilen şemadaki "
                 "ilişki türlerini ve özellikleri kullan.", "Şema:", "Soru:", "Cypher çıktısı:"),
    "deu_Latn": ("Erzeuge eine Cypher-Anweisung, um eine Graphdatenbank abzufragen. Verwende nur die im Schema "
                 "angegebenen Beziehungstypen und Eigenschaften.", "Schema:", "Frage:", "Cypher-Ausgabe:"),
    "fra_Latn": ("Génère une requête Cypher pour interroger une base de données orientée graphe. Utilise uniquement "
                 "les types de relations et les propriétés du schéma fourni.", "Schéma :", "Question :",
                 "Sortie Cypher :"),
}
MAX_GEN_TOKS = 64  # the longest gold query is 54 Gemma 3 tokens
DEFAULT_SHOTS = 3  # few-shot examples per prompt with --fewshot


def labels(language: str | None = None) -> tuple[str, str, str, str]:
    """(instruction, schema, question, output labels): English, or ``language``'s (translate=True)."""
    if language is None:
        return LABELS["eng_Latn"]
    if language not in LABELS:
        raise UsageError(f"--translate_prompt has the instruction in {', '.join(sorted(LABELS))} only, not "
                         f"{language}; drop --translate_prompt for it.")
    return LABELS[language]


def build_prompt(question: str, schema: str, examples: list[tuple[str, str]] = (), language: str | None = None) -> str:
    """Prompt for one question; `examples` are (question, cypher) pairs shown before it; `language`:
    the instruction and labels in that language (None: English)."""
    instruction, schema_label, q_label, out_label = labels(language)
    parts = [instruction, "", schema_label, schema, ""]
    for q, c in examples:
        parts += [f"{q_label} {q}", f"{out_label} {c}", ""]
    parts += [f"{q_label} {question}", out_label]
    return "\n".join(parts)


def stop_strings(language: str | None = None) -> list[str]:
    """Where generation stops: a blank line or the next question label (English and ``language``'s)."""
    q_label = labels(language)[2]
    return list(dict.fromkeys([*STOP, f"\n{q_label}", q_label]))


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
