"""``Result``: what every verb's ``run`` returns: the results.json document and its run folder."""

from __future__ import annotations

import importlib
import shutil
from dataclasses import dataclass, field
from pathlib import Path

from babelscope.runs import RunFolder, atomic_write_json
from babelscope.schema import ENVELOPE_KEYS, validate
from babelscope.verbs import MODULES


@dataclass
class Result:
    verb: str
    results: dict  # what results.json holds: the envelope and the verb's payload
    run: RunFolder | None = None
    summary: str = ""  # what the CLI prints when the verb ends
    exit_code: int = 0
    extras: dict = field(default_factory=dict)  # objects for Python callers (e.g. the EvalResult)

    @property
    def path(self) -> Path | None:
        return self.run.path if self.run else None

    def save(self, path=None) -> Path:
        """Validate and write results.json into the run folder, or copy the run folder to ``path``."""
        validate(self.results)
        if path is None:
            return atomic_write_json(self.run.path / "results.json", self.results)
        path = Path(path)
        if self.run is not None and self.run.path.resolve() != path.resolve():
            shutil.copytree(self.run.path, path, dirs_exist_ok=True)
        return atomic_write_json(path / "results.json", self.results)

    @classmethod
    def load(cls, path) -> Result:
        run = RunFolder.open(path)
        results = run.read_json("results.json")
        return cls(results.get("verb", ""), results, run)

    def to_frame(self):
        """A tidy pandas table: one row per numeric value (before/after, or the verb's own rows)."""
        import pandas as pd

        if "before_after" in self.results:
            rows = [{"task": t, "language": lang, "stage": s, "value": v}
                    for t, by_lang in self.results["before_after"].items()
                    for lang, per in by_lang.items() for s, v in per.items()]
            return pd.DataFrame(rows, columns=["task", "language", "stage", "value"])
        if self.verb in MODULES:
            module = importlib.import_module(f"babelscope.verbs.{MODULES[self.verb]}")
            if hasattr(module, "rows"):
                return pd.DataFrame(module.rows(self.results))
        return pd.DataFrame(_numeric_leaves({k: v for k, v in self.results.items() if k not in ENVELOPE_KEYS}),
                            columns=["key", "value"])

    def __str__(self) -> str:
        return self.summary or f"babelscope {self.verb}: {self.path}"


def _numeric_leaves(obj, prefix: str = "") -> list[dict]:
    if isinstance(obj, bool):
        return []
    if isinstance(obj, (int, float)):
        return [{"key": prefix, "value": obj}]
    if isinstance(obj, dict):
        return [row for k, v in obj.items() for row in _numeric_leaves(v, f"{prefix}.{k}" if prefix else str(k))]
    return []
