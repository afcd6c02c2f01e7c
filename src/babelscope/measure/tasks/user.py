"""A user's own task: a JSONL file of items, optionally described by a short YAML file.

JSONL rows (one item in one language; rows of the same item in other languages share ``item_id``)::

    {"item_id": "q1", "language": "deu_Latn", "context": "Hauptstadt:", "choices": [" Berlin", " Rom"], "gold": 0}
    {"item_id": "q1", "language": "fra_Latn", "context": "Q: 2+2?\\nA:", "references": ["4"]}

``choices`` + ``gold`` make a multiple-choice item; ``references`` a generation item (optional
``until``, ``max_gen_toks``). A YAML file can rename fields and set defaults::

    name: capitals
    data: capitals.jsonl            # relative to the YAML file
    kind: mc                        # or generate (default: from the first row)
    context: "Q: {question}\\nA:"   # a template over the row's fields (default: the context field)
    choices_field: options
    gold_field: answer
    metrics: [exact_match, f1]      # generation: exact_match, f1, gold_in, number_match, chrf, bleu
    until: ["\\n"]
    max_gen_toks: 32

lm-eval's task YAML keys work as in lm-eval: ``doc_to_text``, ``doc_to_target`` and
``doc_to_choice`` are a field name or a Jinja template over the row (``"Q: {{question}}\\nA:"``,
``"{{options}}"``), ``target_delimiter`` goes between context and choice (lm-eval's default " "
when the doc_to_* keys are used; otherwise the choices are scored as written), ``output_type``
is multiple_choice or generate_until and ``generation_kwargs`` may give ``until`` and
``max_gen_toks``.
"""

from __future__ import annotations

import ast
import json
import re
from functools import lru_cache
from pathlib import Path

from babelscope.errors import DataError, LanguageError, UsageError
from babelscope.languages import resolve
from babelscope.measure.tasks import GenItem, MCItem, Task
from babelscope.runs import read_yaml_mapping

GEN_METRICS = ("exact_match", "f1", "gold_in")  # default metrics of a user generation task
KNOWN_METRICS = ("exact_match", "f1", "gold_in", "number_match", "chrf", "bleu")
LM_EVAL_KEYS = ("doc_to_text", "doc_to_target", "doc_to_choice")  # lm-eval's prompt fields
OUTPUT_TYPES = {"multiple_choice": "mc", "generate_until": "generate"}  # lm-eval output_type -> kind


class UserTask(Task):
    def __init__(self, name: str, rows: list[tuple[int, dict]], spec: dict, origin: str, data: str | None = None):
        """``rows``: (line number, item) pairs read from the items file ``data`` (default: ``origin``)."""
        self.name, self.spec, self.origin = name, spec, origin
        data = data or origin
        for n, row in rows:
            if not isinstance(row, dict) or "item_id" not in row or "language" not in row:
                raise DataError(f"{data} line {n}: every row is a JSON object with item_id and language.")
        self.rows = [row for _, row in rows]
        self.lm_eval_style = any(k in spec for k in LM_EVAL_KEYS)
        self.target_delimiter = str(spec.get("target_delimiter", " " if self.lm_eval_style else ""))
        self.generation = spec.get("generation_kwargs") or {}
        self.kind = spec.get("kind") or OUTPUT_TYPES.get(spec.get("output_type")) or (
            "mc" if "doc_to_choice" in spec or spec.get("choices_field", "choices") in self.rows[0] else "generate")
        if self.kind not in ("mc", "generate"):
            raise UsageError(f"{origin}: kind must be mc or generate, not {self.kind!r}.")
        self.metrics = tuple(spec.get("metrics") or (() if self.kind == "mc" else GEN_METRICS))
        unknown = set(self.metrics) - set(KNOWN_METRICS)
        if unknown:
            raise UsageError(f"{origin}: unknown metric(s) {sorted(unknown)}; known: {', '.join(KNOWN_METRICS)}.")
        self.description = spec.get("description", f"user task from {origin}")
        self.by_lang: dict[str, list[dict]] = {}
        seen: dict[tuple[str, str], int] = {}
        for n, row in rows:
            try:
                self._item(row)  # a malformed item fails here, before any model is loaded
                language = resolve(str(row["language"]))
            except (DataError, LanguageError) as exc:
                raise DataError(f"{data} line {n}: {exc}") from None
            key = (language, str(row["item_id"]))
            if key in seen:
                raise DataError(f"{data} line {n}: item_id {key[1]!r} in {language} repeats line {seen[key]}; "
                                "every item_id appears once per language.")
            seen[key] = n
            self.by_lang.setdefault(language, []).append(row)

    def available_languages(self, source="builtin"):
        return sorted(self.by_lang)

    def _context(self, row: dict) -> str:
        template = self.spec.get("context")
        if template:
            try:
                return str(template).format(**row)
            except KeyError as exc:
                raise DataError(f"item {row['item_id']} has no field {exc} for the context template.") from None
            except (IndexError, AttributeError, ValueError) as exc:
                raise DataError(f"the context template {template!r} cannot be filled ({exc}); write fields by "
                                "name, e.g. \"Q: {question}\\nA:\".") from None
        context = row.get(self.spec.get("context_field", "context"), "")
        if not isinstance(context, str):
            raise DataError(f"item {row['item_id']}: the context must be a string, not {type(context).__name__}.")
        return context

    def _item(self, row: dict):
        iid = str(row["item_id"])
        try:
            if self.kind == "mc":
                choices = self._field(row, "doc_to_choice", self.spec.get("choices_field", "choices"))
                choices = list(choices.values()) if isinstance(choices, dict) else choices
                if not isinstance(choices, list):
                    raise DataError(f"item {iid}: the choices must be a list, not {choices!r}.")
                gold = _gold(choices, self._field(row, "doc_to_target", self.spec.get("gold_field", "gold")))
                choices = [self.target_delimiter + c if isinstance(c, str) else c for c in choices]
                return MCItem(iid, self._text(row), choices, gold).check()
            refs = self._field(row, "doc_to_target", self.spec.get("references_field", "references"))
            if "doc_to_target" in self.spec and isinstance(refs, (int, float)) and not isinstance(refs, bool):
                refs = str(refs)  # lm-eval compares a numeric target as text
            until = row.get("until", self.generation.get("until", self.spec.get("until", ["\n"])))
            budget = row.get("max_gen_toks", self.generation.get("max_gen_toks", self.spec.get("max_gen_toks", 64)))
            return GenItem(iid, self._text(row), _strings(iid, "references", refs), until=_strings(iid, "until", until),
                           max_gen_toks=_positive(iid, "max_gen_toks", budget)).check()
        except KeyError as exc:
            raise DataError(f"item {iid} has no field {exc}.") from None
        except TypeError as exc:
            raise DataError(f"item {iid}: a field has the wrong type ({exc}).") from None

    def _text(self, row: dict) -> str:
        return str(self._field(row, "doc_to_text", None)) if "doc_to_text" in self.spec else self._context(row)

    def _field(self, row: dict, key: str, default_field: str | None):
        """lm-eval's doc_to_*: a field name, a Jinja template, or a literal list (default: ``default_field``)."""
        how = self.spec.get(key)
        if how is None:
            return row[default_field]
        if isinstance(how, (int, list, dict)):
            return how
        if how in row:
            return row[how]
        text = _render(str(how), row)
        if key == "doc_to_choice" or (key == "doc_to_target" and text[:1] == "[" and text[-1:] == "]"):
            return _literal(row["item_id"], key, text)
        if key != "doc_to_text" and text.isdigit() and self.kind == "mc":
            return int(text)
        return text

    def load(self, languages, source="builtin", limit=None):
        missing = [lang for lang in languages if lang not in self.by_lang]
        if missing:
            raise LanguageError(
                f"task {self.name} has no items in {', '.join(missing)}; available: {', '.join(sorted(self.by_lang))}."
            )
        return {lang: [self._item(r) for r in self.by_lang[lang][: limit or None]] for lang in languages}


@lru_cache(maxsize=64)
def _template(text: str):
    """A Jinja template in lm-eval's environment (strict about missing fields), sandboxed."""
    from jinja2 import BaseLoader, StrictUndefined, TemplateSyntaxError
    from jinja2.sandbox import SandboxedEnvironment

    env = SandboxedEnvironment(loader=BaseLoader(), undefined=StrictUndefined, keep_trailing_newline=True)
    env.filters["regex_replace"] = lambda string, pattern, repl, count=0: re.sub(pattern, repl, string, count=count)
    try:
        return env.from_string(text)
    except TemplateSyntaxError as exc:
        raise UsageError(f"template {text!r} is not valid Jinja ({exc.message}).") from None


def _render(text: str, row: dict) -> str:
    from jinja2 import TemplateError

    try:
        return _template(text).render(**row)
    except TemplateError as exc:
        raise DataError(f"item {row['item_id']}: template {text!r} cannot be filled ({exc}).") from None


def _literal(iid, key: str, text: str):
    try:
        return ast.literal_eval(text)
    except (ValueError, SyntaxError):
        raise DataError(f"item {iid}: {key} gave {text!r}, not a Python list literal.") from None


def _gold(choices: list, target):
    """lm-eval's target of a multiple-choice doc: an index, a digit string, or the text of a choice
    (anything else is left for ``MCItem.check`` to report)."""
    if isinstance(target, str) and target.lstrip("-").isdigit():
        return int(target)
    if isinstance(target, str) and target in choices:
        return choices.index(target)
    return target


def _strings(iid: str, field: str, value) -> list[str]:
    """A string or a list of strings, as a list."""
    if isinstance(value, str):
        return [value]
    if isinstance(value, list) and all(isinstance(v, str) for v in value):
        return list(value)
    raise DataError(f"item {iid}: {field} must be a string or a list of strings, not {value!r}.")


def _positive(iid: str, field: str, value) -> int:
    if isinstance(value, int) and not isinstance(value, bool) and value > 0:
        return value
    raise DataError(f"item {iid}: {field} must be a positive whole number, not {value!r}.")


def _read_jsonl(path: Path) -> list[tuple[int, dict]]:
    """(line number, object) for every non-blank line of a JSONL file (UTF-8, with or without a BOM)."""
    if not path.is_file():
        raise UsageError(f"task file {path} does not exist.")
    rows = []
    try:
        with open(path, encoding="utf-8-sig") as f:
            for n, line in enumerate(f, 1):
                if line.strip():
                    try:
                        rows.append((n, json.loads(line)))
                    except json.JSONDecodeError as exc:
                        raise DataError(f"{path} line {n} is not JSON ({exc.msg}).") from None
    except UnicodeDecodeError:
        raise DataError(f"{path} is not UTF-8 text (a binary file?); task files are JSONL in UTF-8.") from None
    if not rows:
        raise DataError(f"{path} has no items.")
    return rows


def _read_spec(p: Path) -> dict:
    """The YAML description of a task; unreadable or malformed files are one-line errors."""
    if not p.is_file():
        raise UsageError(f"task file {p} does not exist.")
    return read_yaml_mapping(p, "task file", "name:, data:, kind:, ...")


def load_user_task(path: str) -> UserTask:
    """A task from ``items.jsonl`` or from ``task.yaml`` naming its data file."""
    p = Path(path)
    if p.suffix in (".yaml", ".yml"):
        spec = _read_spec(p)
        if not isinstance(spec.get("data"), str):
            raise UsageError(f"{p}: name the items file with `data: items.jsonl`.")
        data = (p.parent / spec["data"]) if not Path(spec["data"]).is_absolute() else Path(spec["data"])
        return UserTask(str(spec.get("name", p.stem)), _read_jsonl(data), spec, str(p), data=str(data))
    return UserTask(p.stem, _read_jsonl(p), {}, str(p))
