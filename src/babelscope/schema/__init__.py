"""The results envelope every verb writes to results.json, and its JSON Schema (shipped here).

``envelope(...)`` builds the common part; each verb adds its payload. ``validate(results)``
checks a results dict against ``envelope.schema.json`` and the verb's own
``verbs/<verb>.schema.json``; the report reads only what these schemas name.
"""

from __future__ import annotations

import json
from functools import cache
from importlib import resources

from babelscope.errors import BabelscopeError

SCHEMA_VERSION = 1
ENVELOPE_KEYS = ("schema_version", "verb", "model", "languages", "config", "environment", "started", "seconds")


class SchemaError(BabelscopeError):
    """A results.json that does not follow the shipped schema."""


@cache
def load_schema(name: str) -> dict:
    """``envelope`` or a verb name -> the parsed JSON Schema."""
    root = resources.files(__package__)
    path = root / "envelope.schema.json" if name == "envelope" else root / "verbs" / f"{name}.schema.json"
    if not path.is_file():
        raise SchemaError(f"no results schema for verb {name!r}")
    return json.loads(path.read_text(encoding="utf-8"))


def verbs_with_schema() -> list[str]:
    return sorted(p.name.removesuffix(".schema.json") for p in (resources.files(__package__) / "verbs").iterdir()
                  if p.name.endswith(".schema.json"))


def validate(results: dict) -> None:
    """Raise SchemaError naming the first place where ``results`` breaks the envelope or its verb's schema."""
    import jsonschema

    if not isinstance(results, dict) or "verb" not in results:
        raise SchemaError("results.json has no `verb`: it was not written by this version of babelscope")
    for name in ("envelope", results["verb"]):
        errors = sorted(jsonschema.Draft202012Validator(load_schema(name)).iter_errors(results), key=str)
        if errors:
            where = "/".join(map(str, errors[0].absolute_path)) or "(top)"
            raise SchemaError(f"results.json ({name} schema) at {where}: {errors[0].message}")


def envelope(verb: str, *, model: dict | None, languages: list[str], config: dict, environment: dict,
             started: str, seconds: float) -> dict:
    """The common part of every results.json, in schema order."""
    return {"schema_version": SCHEMA_VERSION, "verb": verb, "model": model, "languages": list(languages),
            "config": config, "environment": environment, "started": started, "seconds": round(float(seconds), 3)}


def before_after(values: dict, stages: list[str]) -> dict:
    """``{"stages": [...], "before_after": {task: {language: {stage: value}}}}`` with every stage present."""
    table = {task: {lang: {s: per.get(s) for s in stages} for lang, per in by_lang.items()}
             for task, by_lang in values.items()}
    return {"stages": list(stages), "before_after": table}
