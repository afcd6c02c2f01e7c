"""Public Text2Cypher data (`neo4j/text2cypher-2024v1` layout) and routing each item to its own database.

The dataset's rows have `question`, `schema`, `cypher`, `data_source`, `instance_id` and
`database_reference_alias`. `load_text2cypher` reads them from a local JSONL / JSON / CSV /
Parquet file or, when the hub is reachable, from `hf:<dataset>[:<split>]`. Translated variants
(the paper's Spanish and Turkish questions) keep every field but the question, so
`question_column` picks which column holds the question.

`AliasExecutor` routes each item to its own database: `--database` names a folder of embedded
database files (`<alias>.lbug` or `<alias>`) or a JSON/YAML mapping {alias: path}, keyed by the
dataset's `database_reference_alias`; one `SafeExecutor` (its own sandboxed worker) per database.
A Neo4j server (`--database bolt://...`) is the other engine (`bolt.py`, chosen by `engine.py`).
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from pathlib import Path

import yaml

from babelscope.cypher import embedded
from babelscope.cypher.execute import DEFAULT_MAX_ROWS, DEFAULT_MEMORY_MB, DEFAULT_TIMEOUT_S, ExecResult, SafeExecutor
from babelscope.errors import DataError

REQUIRED = ("question", "schema", "cypher")
OPTIONAL = ("data_source", "instance_id", "database_reference_alias")


@dataclass(frozen=True)
class Text2CypherRecord:
    question: str
    schema: str
    cypher: str
    data_source: str = ""
    instance_id: str = ""
    database_reference_alias: str | None = None
    extra: dict = field(default_factory=dict)  # other columns (e.g. translated questions)


def _read_rows(source: str) -> list[dict]:
    if source.startswith("hf:"):
        name, _, split = source[3:].partition(":")
        try:
            import datasets

            return list(datasets.load_dataset(name, split=split or "test"))
        except Exception as e:
            raise DataError(
                f"cannot load {name} from the Hugging Face hub ({type(e).__name__}); download it where the hub is "
                "reachable and pass the local .parquet/.jsonl/.csv file instead"
            ) from None
    path = Path(source)
    if not path.exists():
        raise DataError(f"{source} does not exist; pass a .jsonl, .json, .csv or .parquet file in text2cypher layout")
    try:
        rows = _read_file(path)
    except (UnicodeDecodeError, ValueError, OSError) as exc:  # json, pandas and pyarrow parse errors
        raise DataError(f"{source} cannot be read as {path.suffix or 'a data file'} ({type(exc).__name__}: "
                        f"{str(exc).splitlines()[0] if str(exc) else ''}); pass a text2cypher file") from None
    if not all(isinstance(row, dict) for row in rows):
        raise DataError(f"{source}: every row must be an object with {', '.join(REQUIRED)}")
    return rows


def _read_file(path: Path) -> list:
    suffix = path.suffix.lower()
    if suffix == ".jsonl":
        with open(path, encoding="utf-8-sig") as f:
            return [json.loads(line) for line in f if line.strip()]
    if suffix == ".json":
        with open(path, encoding="utf-8-sig") as f:
            data = json.load(f)
        return data if isinstance(data, list) else data.get("data", [])
    if suffix in (".csv", ".parquet"):
        import pandas as pd

        frame = pd.read_csv(path, encoding="utf-8-sig") if suffix == ".csv" else pd.read_parquet(path)
        return frame.astype(object).where(frame.notna(), None).to_dict("records")
    raise DataError(f"{path}: unknown file type {suffix!r}; use .jsonl, .json, .csv or .parquet")


def load_text2cypher(source: str, question_column: str = "question", limit: int | None = None):
    """Rows of a text2cypher-2024v1-style dataset as `Text2CypherRecord`s."""
    rows = _read_rows(str(source))
    out = []
    for i, row in enumerate(rows[:limit] if limit else rows):
        needed = [question_column if c == "question" else c for c in REQUIRED]
        missing = [c for c in needed if not row.get(c)]
        if missing:
            raise DataError(f"{source}: row {i} lacks {', '.join(missing)} (text2cypher layout: {', '.join(REQUIRED)})")
        known = set(REQUIRED) | set(OPTIONAL) | {question_column}
        out.append(
            Text2CypherRecord(
                question=str(row[question_column]),
                schema=str(row["schema"]),
                cypher=str(row["cypher"]),
                data_source=str(row.get("data_source") or ""),
                instance_id=str(row.get("instance_id") or f"row-{i}"),
                database_reference_alias=row.get("database_reference_alias"),
                extra={k: v for k, v in row.items() if k not in known},
            )
        )
    return out


MAPPING_SUFFIXES = (".json", ".yaml", ".yml")


def database_map(spec: str | Path) -> dict[str, Path] | None:
    """{alias: database path} when `spec` is a folder of databases or a mapping file; None for one database."""
    path = Path(spec).expanduser().resolve()  # absolute: each worker runs in its own private folder
    if path.is_dir():
        found = {}
        for entry in sorted(path.iterdir()):
            if entry.name.startswith(".") or entry.suffix in embedded.SIDE_FILES:
                continue
            found[entry.name.removesuffix(embedded.SUFFIX)] = entry
        if not found:
            raise DataError(f"{spec}: the folder holds no databases (name them <database_reference_alias>"
                            f"{embedded.SUFFIX})")
        return found
    if path.suffix.lower() in MAPPING_SUFFIXES:
        if not path.exists():
            raise DataError(f"{spec} does not exist; pass a JSON/YAML mapping {{alias: database path}}")
        text = path.read_text(encoding="utf-8")
        try:
            data = json.loads(text) if path.suffix.lower() == ".json" else yaml.safe_load(text)
        except (ValueError, yaml.YAMLError) as exc:  # json and yaml parse errors
            raise DataError(f"{spec} cannot be read ({type(exc).__name__}); write {{alias: database path}}") from None
        if not isinstance(data, dict) or not data:
            raise DataError(f"{spec}: expected a non-empty mapping {{database_reference_alias: database path}}")
        return {str(k): (path.parent / str(v)) for k, v in data.items()}
    return None


class AliasExecutor:
    """Runs each query on the embedded database of its `database_reference_alias` (`run(query, alias)`).

    Each database gets its own `SafeExecutor` (read-only, sandboxed worker), started on first use.
    A query for an alias with no database returns an error result and the alias is remembered in
    `missing` (its gold query then fails, so the item is excluded and counted).
    """

    routes = True

    def __init__(self, databases: dict[str, Path], timeout_s: float = DEFAULT_TIMEOUT_S,
                 memory_mb: int = DEFAULT_MEMORY_MB, max_rows: int = DEFAULT_MAX_ROWS):
        embedded.library()  # a missing `babelscope[cypher]` is a one-line error before any query
        self.databases = {alias: Path(p) for alias, p in databases.items()}
        for alias, p in self.databases.items():
            if not p.exists():
                raise DataError(f"database {p} for alias {alias!r} does not exist")
        self.timeout_s, self.memory_mb, self.max_rows = timeout_s, memory_mb, max_rows
        self._executors: dict[str, SafeExecutor] = {}
        self.missing: set[str] = set()

    def executor(self, alias: str) -> SafeExecutor:
        if alias not in self._executors:
            self._executors[alias] = SafeExecutor(self.databases[alias], self.timeout_s, self.memory_mb, self.max_rows)
        return self._executors[alias]

    def run(self, query: str, alias: str | None = None) -> ExecResult:
        if alias is None or alias not in self.databases:
            self.missing.add(str(alias))
            return ExecResult("error", error=f"no database for database_reference_alias {alias!r}")
        return self.executor(alias).run(query)

    @property
    def sandbox(self) -> str:
        """The sandbox of the workers (that of the first database's worker)."""
        first = next(iter(self._executors.values()), None) or self.executor(next(iter(self.databases)))
        return f"{first.sandbox}; one worker per database ({len(self.databases)} databases)"

    @property
    def guard(self) -> str:
        return f"local worker, {self.sandbox}"

    def close(self) -> None:
        for ex in self._executors.values():
            ex.close()
        self._executors.clear()

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.close()
