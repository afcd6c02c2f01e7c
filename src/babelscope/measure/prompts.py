"""lm-eval's prompt options applied to babelscope's items: what the model is fed changes, nothing else.

For a zero-shot prompt this is lm-eval 0.4's ``ConfigurableTask.fewshot_context`` and
``construct_requests`` (checked string for string in tests/test_lm_eval_flags.py):

* no chat template: the context is ``system_instruction + context`` (lm-eval joins them with nothing);
* ``--apply_chat_template``: ``[system, user: context]`` rendered by the tokenizer's chat template
  with the generation prompt; multiple-choice continuations lose the task's target delimiter
  (a leading space unless the task says otherwise), as lm-eval drops it under a chat template;
* ``--fewshot_as_multiturn`` only changes how few-shot examples are laid out, and babelscope's
  prompts are zero-shot: it is accepted and the prompt stays the same, as in lm-eval with
  ``--num_fewshot 0``;
* ``--gen_kwargs until=...,max_gen_toks=...``: replaces the stop strings and the token budget of
  every generation item (decoding is greedy: sampling settings are refused).

``fraction_of`` is lm-eval's fractional ``--limit`` (``ceil(fraction * items)``) over aligned
items: the same item ids in every language.
"""

from __future__ import annotations

import ast
import json
import math
from dataclasses import dataclass, field, replace

from jinja2 import TemplateError

from babelscope.errors import UsageError
from babelscope.measure.tasks import GenItem, MCItem

DEFAULT_TEMPLATE = "default"  # --apply_chat_template without a name: the tokenizer's (default) template
GREEDY_KWARGS = "until, max_gen_toks, do_sample=false, temperature=0"


@dataclass(frozen=True)
class PromptFormat:
    """How items become prompts: a chat template (None: plain text), a system instruction, gen_kwargs."""

    chat_template: str | None = None
    system_instruction: str | None = None
    fewshot_as_multiturn: bool = False
    gen_kwargs: dict = field(default_factory=dict)

    def settings(self) -> dict:
        """What results.json records under config (only what is set)."""
        out = {"apply_chat_template": self.chat_template, "system_instruction": self.system_instruction,
               "fewshot_as_multiturn": self.fewshot_as_multiturn or None, "gen_kwargs": self.gen_kwargs or None}
        return {k: v for k, v in out.items() if v is not None}

    def apply(self, tokenizer, items: list, target_delimiter: str = " ") -> list:
        """Copies of ``items`` with the contexts (and choices, stop strings, budgets) the model is fed;
        ``target_delimiter``: what the task's choices start with (dropped under a chat template)."""
        if not self.settings():
            return items
        template = select_template(tokenizer, self.chat_template) if self.chat_template else None
        return [self._item(tokenizer, template, it, target_delimiter) for it in items]

    def _item(self, tokenizer, template, item, delimiter: str):
        if not isinstance(item, (MCItem, GenItem)):
            return item  # bits per character: a raw text, no prompt
        changes: dict = {"context": self.context(tokenizer, template, item.context)}
        if isinstance(item, MCItem) and template is not None and delimiter:
            changes["choices"] = [c[len(delimiter):] if c.startswith(delimiter) and c != delimiter else c
                                  for c in item.choices]
        if isinstance(item, GenItem):
            if "until" in self.gen_kwargs:
                changes["until"] = list(self.gen_kwargs["until"])
            if "max_gen_toks" in self.gen_kwargs:
                changes["max_gen_toks"] = self.gen_kwargs["max_gen_toks"]
        return replace(item, **changes)

    def context(self, tokenizer, template, text: str) -> str:
        if template is None:
            return (self.system_instruction or "") + text
        messages = [{"role": "system", "content": self.system_instruction}] if self.system_instruction else []
        messages.append({"role": "user", "content": text})
        try:
            return tokenizer.apply_chat_template(messages, chat_template=template, tokenize=False,
                                                 add_generation_prompt=True)
        except TemplateError:  # a template without a system role: lm-eval drops the system message
            return tokenizer.apply_chat_template(messages[-1:], chat_template=template, tokenize=False,
                                                 add_generation_prompt=True)


def select_template(tokenizer, name: str) -> str:
    """The template text ``--apply_chat_template [NAME]`` names (lm-eval's HFLM.chat_template rules)."""
    templates = getattr(tokenizer, "chat_template", None)
    if not templates:
        raise UsageError("--apply_chat_template: the model's tokenizer has no chat template (a base model?); "
                         "drop the flag or use an instruction-tuned model.")
    if isinstance(templates, str):
        if name != DEFAULT_TEMPLATE:
            raise UsageError(f"--apply_chat_template {name}: the tokenizer has one unnamed chat template; "
                             "write --apply_chat_template without a name.")
        return templates
    if name not in templates:
        raise UsageError(f"--apply_chat_template {name}: the tokenizer's chat templates are "
                         f"{', '.join(sorted(templates))}.")
    return templates[name]


def _split_top_level(text: str) -> list[str]:
    """Split on commas outside brackets and quotes (lm-eval's key=value lists)."""
    parts, buf, depth, quote = [], [], 0, None
    for char in text:
        if quote:
            quote = None if char == quote else quote
        elif char in "\"'":
            quote = char
        elif char in "([{":
            depth += 1
        elif char in ")]}":
            depth -= 1
        elif char == "," and depth == 0:
            parts.append("".join(buf))
            buf = []
            continue
        buf.append(char)
    return [p for p in [*parts, "".join(buf)] if p.strip()]


def _value(text: str):
    text = text.strip()
    if text.lower() in ("true", "false"):
        return text.lower() == "true"
    try:
        return ast.literal_eval(text)
    except (ValueError, SyntaxError):
        return text


def parse_gen_kwargs(text: str | dict | None) -> dict:
    """``until=["\\n\\n"],max_gen_toks=32,do_sample=false`` (or JSON) -> {until: [...], max_gen_toks: 32}."""
    if not text:
        return {}
    if isinstance(text, dict):
        raw = dict(text)
    elif text.strip().startswith("{"):
        raw = json.loads(text)
    else:
        raw = {}
        for part in _split_top_level(text):
            if "=" not in part:
                raise UsageError(f"--gen_kwargs: {part!r} is not key=value; write e.g. "
                                 "until=[\"\\n\"],max_gen_toks=32.")
            key, value = part.split("=", 1)
            raw[key.strip()] = _value(value)
    return _check_gen_kwargs(raw)


def _check_gen_kwargs(raw: dict) -> dict:
    out = {}
    for key, value in raw.items():
        if key == "until":
            until = [value] if isinstance(value, str) else value
            if not isinstance(until, list) or not until or not all(isinstance(s, str) and s for s in until):
                raise UsageError(f"--gen_kwargs until={value!r}: give a stop string or a list of them.")
            out["until"] = until
        elif key == "max_gen_toks":
            if not isinstance(value, int) or isinstance(value, bool) or value < 1:
                raise UsageError(f"--gen_kwargs max_gen_toks={value!r}: give a positive whole number of tokens.")
            out["max_gen_toks"] = value
        elif (key == "do_sample" and value is False) or (key == "temperature" and value in (0, 0.0)):
            continue  # greedy decoding, which is what babelscope does
        else:
            raise UsageError(f"--gen_kwargs {key}={value!r}: babelscope decodes greedily (its metrics and "
                             f"consistency need one answer per item); accepted: {GREEDY_KWARGS}.")
    return out


def check_limit(limit) -> int | float | None:
    """lm-eval's --limit: a fraction below 1 of each task's items, or a whole number of items."""
    if limit is None:
        return None
    if limit <= 0:
        raise UsageError(f"--limit must be at least 1 (items per language), or a fraction between 0 and 1 of the "
                         f"items (0.1 = 10%), not {limit:g}.")
    if limit < 1:
        return float(limit)
    if float(limit) != int(limit):
        raise UsageError(f"--limit {limit}: give a whole number of items, or a fraction below 1 (0.1 = 10%).")
    return int(limit)


def fraction_of(data: dict[str, list], fraction: float) -> dict[str, list]:
    """The first ``ceil(fraction * n)`` item ids (n: ids in any language, first-seen order), in every language."""
    ids: dict[str, None] = {}
    for items in data.values():
        ids.update((it.item_id, None) for it in items)
    keep = set(list(ids)[: math.ceil(fraction * len(ids))])
    return {lang: [it for it in items if it.item_id in keep] for lang, items in data.items()}
