"""The Neo4j engine: read-only Cypher on a user's Neo4j server over bolt (`--database bolt://...`).

Needs the optional driver (`pip install "babelscope[neo4j]"`). A query first passes the same
read-only check as for the embedded engine, then runs in a READ-mode session with a
transaction timeout, so the server itself refuses writes; the server, not a local worker,
executes it (docs/security.md says how to lock the server down).
"""

from __future__ import annotations

import time

from babelscope.cypher.execute import DEFAULT_MAX_ROWS, DEFAULT_TIMEOUT_S, ExecResult, plain
from babelscope.cypher.safety import check_read_only
from babelscope.errors import require


class Neo4jExecutor:
    """Read-only execution on a Neo4j server: an `engine.GraphEngine`, like `SafeExecutor`."""

    def __init__(
        self,
        uri: str,
        user: str = "neo4j",
        password: str | None = None,
        database: str | None = None,
        timeout_s: float = DEFAULT_TIMEOUT_S,
        max_rows: int = DEFAULT_MAX_ROWS,
    ):
        neo4j = require("neo4j", extra="neo4j", feature="--database bolt://... (a Neo4j server)")
        self._neo4j = neo4j
        auth = (user, password) if password is not None else None
        self._driver = neo4j.GraphDatabase.driver(uri, auth=auth)
        self.database = database
        self.timeout_s = timeout_s
        self.max_rows = max_rows
        self.executed = 0

    def run(self, query: str) -> ExecResult:
        verdict = check_read_only(query)
        if not verdict.ok:
            return ExecResult("rejected", error=verdict.reason)
        start = time.perf_counter()
        self.executed += 1
        neo4j = self._neo4j

        def work(tx):
            result = tx.run(neo4j.Query(verdict.statement, timeout=self.timeout_s))
            keys = list(result.keys())
            rows = []
            for record in result:
                if len(rows) >= self.max_rows:
                    return keys, rows, True
                rows.append([plain(_neo4j_value(v)) for v in record.values()])
            return keys, rows, False

        try:
            with self._driver.session(database=self.database, default_access_mode=neo4j.READ_ACCESS) as session:
                columns, rows, truncated = session.execute_read(work)
        except neo4j.exceptions.Neo4jError as e:
            status = "error"
            code = getattr(e, "code", "") or ""
            if "Syntax" in code:
                status, msg = "error", f"Parser exception: {e.message}"
            elif "Timeout" in code or "Terminated" in code:
                status, msg = "timeout", str(e.message)
            else:
                msg = f"{code}: {e.message}"
            return ExecResult(status, error=msg, seconds=time.perf_counter() - start)
        return ExecResult("ok", rows=rows, columns=columns, truncated=truncated, seconds=time.perf_counter() - start)

    @property
    def guard(self) -> str:
        return "Neo4j server: read-only session; lock the server down as docs/security.md says"

    def close(self) -> None:
        self._driver.close()

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.close()


def _neo4j_value(value):
    """Neo4j graph objects as property dicts (nodes keep their first label as `_label`)."""
    labels = getattr(value, "labels", None)
    if labels is not None and hasattr(value, "items"):
        return {"_label": sorted(labels)[0] if labels else "", **dict(value.items())}
    if hasattr(value, "type") and hasattr(value, "items"):
        return {"_label": value.type, **dict(value.items())}
    return value
