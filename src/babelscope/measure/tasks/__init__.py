"""Tasks: one template per task family plus a language list, never a file per language.

A task turns a language list into per-language item lists that share ``item_id``s (and, for
multiple choice, the gold index) across languages::

    task = get_task("continuation")
    data = task.load(["eng_Latn", "fra_Latn"], source="builtin", limit=50)   # {lang: [MCItem]}

Kinds: ``mc`` (log-likelihood multiple choice), ``generate`` (greedy generation scored against
references) and ``bpc`` (bits per character/byte of a text).
"""

from __future__ import annotations

import difflib
from dataclasses import dataclass, field

from babelscope.errors import DataError, UsageError


@dataclass
class MCItem:
    """Multiple choice: score ``context + choice`` for every choice; ``gold`` is the right index.

    ``norm_texts``: what acc_norm / acc_bytes divide by when it is not the scored choice (lm-eval's
    tasks: the choice without its ``target_delimiter``).
    """

    item_id: str
    context: str
    choices: list[str]
    gold: int
    norm_texts: list[str] | None = None

    def check(self) -> MCItem:
        if not self.choices or not all(isinstance(c, str) and c.strip() for c in self.choices):
            raise DataError(f"item {self.item_id}: every choice must be non-empty text, got {self.choices!r}.")
        if not isinstance(self.gold, int) or not 0 <= self.gold < len(self.choices):
            raise DataError(f"item {self.item_id}: gold index {self.gold!r} is not in 0..{len(self.choices) - 1}.")
        if not isinstance(self.context, str):
            raise DataError(f"item {self.item_id}: the context must be text, got {type(self.context).__name__}.")
        return self


@dataclass
class GenItem:
    """Generation: greedy continuation of ``context`` until a stop string, scored against ``references``."""

    item_id: str
    context: str
    references: list[str]
    until: list[str] = field(default_factory=lambda: ["\n"])
    max_gen_toks: int = 64

    def check(self) -> GenItem:
        if not isinstance(self.context, str) or not self.context:
            raise DataError(f"item {self.item_id}: the prompt must be non-empty text.")
        if not self.references or not all(isinstance(r, str) for r in self.references):
            raise DataError(f"item {self.item_id}: give at least one reference answer as text.")
        return self


@dataclass
class TextItem:
    """A text whose bits per character/byte are measured."""

    item_id: str
    text: str

    def check(self) -> TextItem:
        if not isinstance(self.text, str) or not self.text.strip():
            raise DataError(f"item {self.item_id}: the text is empty.")
        return self


class Task:
    """Base class: ``name``, ``kind``, ``metrics``; ``load(languages, source, limit)``."""

    name: str = ""
    kind: str = "mc"  # "mc" | "generate" | "bpc"
    metrics: tuple = ()  # generation metrics (exact_match, f1, gold_in, chrf, bleu, number_match)
    description: str = ""

    def available_languages(self, source: str = "builtin") -> list[str] | None:
        """Languages the task can run in (None: any language the source has)."""
        return None

    def load(self, languages: list[str], source="builtin", limit: int | None = None) -> dict[str, list]:
        raise NotImplementedError

    def info(self) -> dict:
        """What results.json records about the task (beyond its numbers)."""
        return {"kind": self.kind, "description": self.description}


_REGISTRY: dict[str, object] = {}  # name -> Task instance or zero-argument factory


def register(name: str, task) -> None:
    """Add a task (an instance, or a callable returning one) under ``name``."""
    _REGISTRY[name] = task


def _ensure_defaults() -> None:
    if "continuation" not in _REGISTRY:
        from babelscope.measure.tasks import builtin, public  # noqa: F401  (they register themselves)


def available_tasks() -> list[str]:
    _ensure_defaults()
    return sorted(_REGISTRY)


def get_task(spec) -> Task:
    """A task by name, ``lm_eval:<task or group>``, a user task file (``.jsonl`` / ``.yaml``), or a ``Task``."""
    if isinstance(spec, Task):
        return spec
    _ensure_defaults()
    name = str(spec).strip()
    if name.startswith("lm_eval:"):
        from babelscope.measure.lm_eval_tasks import PREFIX, LMEvalTask

        return LMEvalTask(name[len(PREFIX) :])
    if name.endswith((".jsonl", ".yaml", ".yml", ".json")):
        from babelscope.measure.tasks.user import load_user_task

        return load_user_task(name)
    if name not in _REGISTRY:
        from babelscope.measure.lm_eval_tasks import is_lm_eval_task

        if is_lm_eval_task(name):
            raise UsageError(f"{name} is an lm-eval task; run it through lm-eval's own definition with "
                             f"--tasks lm_eval:{name}.")
        close = difflib.get_close_matches(name, list(_REGISTRY), n=1)
        hint = f" Did you mean {close[0]}?" if close else ""
        raise UsageError(
            f"unknown task {name!r}.{hint} Available: {', '.join(available_tasks())}; "
            "or pass a task file (.jsonl or .yaml)."
        )
    task = _REGISTRY[name]
    return task if isinstance(task, Task) else task()


def get_tasks(spec) -> list[Task]:
    """``"a,b"`` or a list -> tasks (each checked)."""
    parts = spec if isinstance(spec, (list, tuple)) else [p for p in str(spec).split(",") if p.strip()]
    if not parts:
        raise UsageError(f"no task given; choose from {', '.join(available_tasks())}.")
    return [get_task(p) for p in parts]
