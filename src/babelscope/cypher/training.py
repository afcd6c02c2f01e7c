"""Text2Cypher finetuning pairs from the built-in questions or a public text2cypher-layout file.

``babelscope finetune --data cypher:builtin`` trains on the built-in question set's train split
(``questions.finetune_pairs``); ``--data cypher:<file>`` trains on a local copy of a public
training set in the ``neo4j/text2cypher-2024v1`` layout (``question``, ``schema``, ``cypher``;
.jsonl, .json, .csv or .parquet, read by ``public.load_text2cypher``). Each row becomes the
prompt the evaluation uses (``prompts.build_prompt`` with the row's own schema) -> `` <cypher>``.

Languages: a row's language is its ``language`` (or ``lang``) column, in any form
``languages.resolve`` accepts; rows whose language is not among ``--languages`` are skipped. A
file without such a column is one language (the public multilingual copies ship one file per
language): all its rows are used and recorded under ``und`` (pass one ``--data cypher:<file>``
per language file). Pass the *train* split: the file's rows are not split again.
"""

from __future__ import annotations

from babelscope.cypher.prompts import build_prompt
from babelscope.cypher.public import load_text2cypher
from babelscope.cypher.questions import finetune_pairs
from babelscope.languages import resolve, resolve_many

BUILTIN = "builtin"
LANGUAGE_COLUMNS = ("language", "lang")  # the column that names a row's language, first found wins
UNLABELLED = "und"  # the language recorded for rows of a file without a language column


def file_pairs(source: str, languages=None) -> list[dict]:
    """Training pairs of a text2cypher-layout file, as ``finetune_pairs`` returns them."""
    wanted = None if languages is None or languages == "all" else set(resolve_many(languages))
    pairs = []
    for rec in load_text2cypher(source):
        column = next((c for c in LANGUAGE_COLUMNS if rec.extra.get(c)), None)
        if column is None:
            lang = UNLABELLED
        else:
            try:
                lang = resolve(str(rec.extra[column]))
            except Exception as exc:  # an unknown language name in the file
                raise ValueError(f"{source}: row {rec.instance_id} has {column} {rec.extra[column]!r}: {exc}") from None
            if wanted is not None and lang not in wanted:
                continue
        prompt = build_prompt(rec.question, rec.schema)
        completion = " " + rec.cypher
        pairs.append({"item_id": rec.instance_id, "language": lang, "kind": rec.data_source or "public",
                      "prompt": prompt, "completion": completion, "text": prompt + completion})
    if not pairs:
        raise ValueError(f"{source}: no rows in {', '.join(sorted(wanted or []))} (its language column names others)")
    return pairs


def training_pairs(languages=None, split: str = "train", source: str = BUILTIN) -> list[dict]:
    """The ``cypher_pairs`` source ``data.parallel.build_docs`` calls: built-in or a file."""
    if source == BUILTIN:
        return finetune_pairs(languages, split=split)
    return file_pairs(source, languages)
