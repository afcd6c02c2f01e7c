"""The one interface that Text2Cypher execution goes through, and the choice between its two engines.

A `GraphEngine` checks a query with `safety.check_read_only`, runs only the checked statement,
and answers with an `ExecResult` (never raising for a bad query); `guard` says in one line what
protects execution (recorded as a run's `sandbox`); `close()` ends it. The engines:

- embedded (`execute.SafeExecutor`): a LadybugDB file (`embedded.py`, the maintained fork of
  Kùzu) opened read-only in a sandboxed worker process; `public.AliasExecutor` gives each
  `database_reference_alias` of a public set its own;
- Neo4j (`bolt.Neo4jExecutor`): a server over bolt, in a READ-mode session.

`open_engine` picks one from the spelling of `--database` (docs/cypher.md).
"""

from __future__ import annotations

from pathlib import Path
from typing import Protocol

from babelscope.cypher.bolt import Neo4jExecutor
from babelscope.cypher.execute import DEFAULT_MEMORY_MB, DEFAULT_TIMEOUT_S, ExecResult, SafeExecutor
from babelscope.cypher.graph import ensure_graph
from babelscope.cypher.public import AliasExecutor, database_map


class GraphEngine(Protocol):
    """Read-only Cypher execution: `run` checks, then executes; `guard` names the protection; `close` ends it."""

    def run(self, query: str) -> ExecResult: ...

    @property
    def guard(self) -> str: ...

    def close(self) -> None: ...


def open_engine(database: str | None = None, *, graph: str | Path | None = None, builtin: bool = True,
                timeout_s: float = DEFAULT_TIMEOUT_S, memory_mb: int = DEFAULT_MEMORY_MB,
                user: str = "neo4j", password: str | None = None, db_name: str | None = None) -> GraphEngine | None:
    """The engine for `database`: bolt:// or neo4j:// -> Neo4j; a folder of databases or a .json/.yaml
    mapping -> one embedded engine per alias; a file -> the embedded engine on it; nothing -> the built-in
    graph (`graph`, or the cached one) when `builtin`, else None (no execution)."""
    if database and "://" in database:
        return Neo4jExecutor(database, user, password, db_name, timeout_s)
    databases = database_map(database) if database else None
    if databases is not None:
        return AliasExecutor(databases, timeout_s, memory_mb)
    if database:
        return SafeExecutor(database, timeout_s, memory_mb)
    if builtin:
        return SafeExecutor(ensure_graph(graph), timeout_s, memory_mb)
    return None
