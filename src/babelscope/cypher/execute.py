"""The embedded engine: Cypher in a separate worker process with a memory limit, a wall-clock limit and
the database's own query timeout (LadybugDB, `embedded.py`; one of the two `engine.GraphEngine`s).

The database's query timeout does not bound memory: `UNWIND range(1, 300000000) ...` can take all
of the machine's RAM before the timeout fires. So every query runs in a worker process that
has `RLIMIT_AS` set (allocation fails inside the worker, not in the evaluator), a query
timeout, and a parent-side wall-clock limit after which the worker is killed. The database is
opened read-only and every query passes `safety.check_read_only` in the parent; only the
checker's canonical re-rendering (`Verdict.statement`) is sent, and the worker checks it again
and runs it only if it re-renders to itself. Before it opens the database, the worker locks
itself down with Landlock where the kernel has it (`sandbox.py`: read-only beneath the graph's
folder, no TCP); `SafeExecutor.sandbox` says which layer is active. A worker that dies or is killed is
replaced for the next query; the evaluation goes on. See docs/security.md.
"""

from __future__ import annotations

import datetime as _dt
import decimal
import json
import os
import select
import shutil
import subprocess
import sys
import tempfile
import time
import uuid
from dataclasses import dataclass, field
from pathlib import Path

from babelscope.cypher import embedded, sandbox
from babelscope.cypher.safety import check_read_only
from babelscope.errors import DataError

DEFAULT_TIMEOUT_S = 5.0  # the database's query timeout; the wall-clock limit adds WALL_SLACK_S
WALL_SLACK_S = 5.0  # extra seconds before the parent kills a worker that does not answer
DEFAULT_MEMORY_MB = 1536  # address-space limit of the worker (RLIMIT_AS)
DEFAULT_MAX_ROWS = 1000  # rows sent back per query; more are cut and marked truncated
STARTUP_TIMEOUT_S = 60.0  # the worker imports ladybug and opens the database


@dataclass
class ExecResult:
    status: str  # ok | rejected | error | timeout | memory | crashed
    rows: list = field(default_factory=list)
    columns: list = field(default_factory=list)
    error: str = ""
    truncated: bool = False
    seconds: float = 0.0

    @property
    def ok(self) -> bool:
        return self.status == "ok"


def plain(value):
    """Database values as plain comparable Python values (nodes/rels as property dicts)."""
    if isinstance(value, decimal.Decimal):
        return int(value) if value == value.to_integral_value() else float(value)
    if isinstance(value, dict):
        return {k: plain(v) for k, v in sorted(value.items()) if not k.startswith("_") or k == "_label"}
    if isinstance(value, (list, tuple)):
        return [plain(v) for v in value]
    if isinstance(value, (_dt.date, _dt.datetime, _dt.timedelta, uuid.UUID)):
        return str(value)
    return value


def _classify(message: str) -> str:
    low = message.lower()
    if "interrupt" in low or "timeout" in low:
        return "timeout"
    if "alloc" in low or "memory" in low:
        return "memory"
    return "error"


def _serve(db_path: str, memory_bytes: int, timeout_ms: int, max_rows: int) -> None:
    """Worker loop: one JSON request per stdin line, one JSON answer per stdout line."""
    import resource

    resource.setrlimit(resource.RLIMIT_AS, (memory_bytes, memory_bytes))
    resource.setrlimit(resource.RLIMIT_CORE, (0, 0))
    out = sys.stdout
    sys.stdout = sys.stderr  # nothing but answers goes to the parent's pipe
    embedded.preload()  # the native library is read before Landlock goes on

    # Landlock binds the calling thread and the threads it starts later, so it goes on before
    # the database starts its worker threads; opening the graph needs nothing outside its folder
    layer = sandbox.restrict([str(Path(db_path).resolve().parent)])
    db, con = embedded.connect(db_path, threads=1, buffer_pool_size=128 * 1024**2, max_db_size=1 << 28)
    con.set_query_timeout(timeout_ms)
    _send(out, ["ready", layer])
    for line in sys.stdin:
        statement = json.loads(line)
        verdict = check_read_only(statement)  # checked again here: the worker never trusts its caller
        if not verdict.ok:
            _send(out, ["rejected", verdict.reason])
        elif verdict.statement != statement:  # the parent sends only the canonical rendering
            _send(out, ["rejected", "syntax: the statement is not in the checker's canonical form"])
        else:
            _execute(out, con, verdict.statement, max_rows)


def _execute(out, con, statement: str, max_rows: int) -> None:
    """Run one checked statement and send its rows or its error."""
    try:
        result = con.execute(statement)
        columns = result.get_column_names()
        rows, truncated = [], False
        while result.has_next():
            if len(rows) >= max_rows:
                truncated = True
                break
            rows.append(plain(result.get_next()))
        result.close()
        _send(out, ["ok", columns, rows, truncated])
    except MemoryError:
        _send(out, ["memory", "MemoryError"])
    except Exception as e:  # the engine raises RuntimeError for parse, binder and runtime errors
        msg = str(e).splitlines()[0] if str(e) else type(e).__name__
        _send(out, [_classify(msg), msg])


def _send(out, obj) -> None:
    out.write(json.dumps(obj, default=str) + "\n")
    out.flush()


class SafeExecutor:
    """Executes read-only Cypher against an embedded database file, one isolated worker process at a time."""

    def __init__(
        self,
        db_path: str | Path,
        timeout_s: float = DEFAULT_TIMEOUT_S,
        memory_mb: int = DEFAULT_MEMORY_MB,
        max_rows: int = DEFAULT_MAX_ROWS,
    ):
        self.db_path = str(db_path)
        embedded.library()  # a missing `babelscope[cypher]` is a one-line error here, not a dead worker
        if not Path(self.db_path).exists():
            raise DataError(f"graph database {self.db_path} does not exist; run `babelscope cypher build-graph`")
        self.timeout_s = timeout_s
        self.memory_bytes = int(memory_mb) * 1024**2
        self.max_rows = max_rows
        self.workdir = tempfile.mkdtemp(prefix="babelscope-cypher-")  # the worker's empty, private cwd
        self._proc: subprocess.Popen | None = None
        self._buffer = b""
        self.restarts = 0  # workers replaced after a crash, kill or memory failure
        self.executed = 0  # queries that were sent to a worker (passed the safety check)
        self._layer = ""  # the worker's report of its sandbox (see `sandbox`)

    def _start(self) -> None:
        args = [self.db_path, str(self.memory_bytes), str(int(self.timeout_s * 1000)), str(self.max_rows)]
        env = dict(os.environ)
        src = str(Path(__file__).resolve().parents[2])  # the worker imports babelscope from here
        env["PYTHONPATH"] = os.pathsep.join(p for p in (src, env.get("PYTHONPATH")) if p)
        self._proc = subprocess.Popen(
            [sys.executable, "-m", "babelscope.cypher.execute", *args],
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            stderr=subprocess.DEVNULL,
            env=env,
            cwd=self.workdir,
        )
        self._buffer = b""
        ready = self._read(STARTUP_TIMEOUT_S)
        if ready is None:
            self._kill()
            raise RuntimeError(f"the Cypher worker could not open {self.db_path}")
        self._layer = ready[1]

    @property
    def sandbox(self) -> str:
        """The worker's operating-system layer, e.g. "landlock ABI 7 (files: graph folder read-only;
        ...)" or "none (Landlock unavailable): ..." (starts the worker if none is running)."""
        if self._proc is None or self._proc.poll() is not None:
            self._start()
        return self._layer

    @property
    def guard(self) -> str:
        """What guards execution, in one line (`engine.GraphEngine`): this worker and its sandbox."""
        return f"local worker, {self.sandbox}"

    def _read(self, timeout: float):
        """One JSON line from the worker, or None when it died or did not answer in time."""
        deadline = time.monotonic() + timeout
        fd = self._proc.stdout.fileno()
        while b"\n" not in self._buffer:
            left = deadline - time.monotonic()
            if left <= 0 or not select.select([fd], [], [], left)[0]:
                return None
            chunk = os.read(fd, 1 << 20)
            if not chunk:
                return None
            self._buffer += chunk
        line, self._buffer = self._buffer.split(b"\n", 1)
        return json.loads(line)

    def _kill(self) -> None:
        if self._proc is not None:
            if self._proc.poll() is None:
                self._proc.kill()
            self._proc.wait(10)
            for f in (self._proc.stdin, self._proc.stdout):
                f.close()
            self.restarts += 1
        self._proc = None

    def run(self, query: str) -> ExecResult:
        """Check, then execute `query`; never raises for a bad query (the status says what happened)."""
        start = time.perf_counter()
        verdict = check_read_only(query)
        if not verdict.ok:
            return ExecResult("rejected", error=verdict.reason)
        if self._proc is None or self._proc.poll() is not None:
            self._start()
        self.executed += 1
        try:
            self._proc.stdin.write((json.dumps(verdict.statement) + "\n").encode())  # never the raw text
            self._proc.stdin.flush()
        except OSError:
            self._kill()
            return ExecResult("crashed", error="worker pipe closed", seconds=time.perf_counter() - start)
        msg = self._read(self.timeout_s + WALL_SLACK_S)
        seconds = time.perf_counter() - start
        if msg is None:
            alive = self._proc.poll() is None
            code = self._proc.returncode
            self._kill()
            if alive:
                return ExecResult("timeout", error="wall-clock limit; worker killed", seconds=seconds)
            return ExecResult("crashed", error=f"worker died (exit code {code})", seconds=seconds)
        if msg[0] == "ok":
            return ExecResult("ok", rows=msg[2], columns=msg[1], truncated=msg[3], seconds=seconds)
        if msg[0] == "memory":  # a worker that hit its memory limit is not reused
            self._kill()
        return ExecResult(msg[0], error=msg[1], seconds=seconds)

    def close(self) -> None:
        if self._proc is not None and self._proc.poll() is None:
            try:
                self._proc.stdin.close()
                self._proc.wait(5)
            except (OSError, subprocess.TimeoutExpired):
                pass
        if self._proc is not None:
            self._kill()
            self.restarts -= 1  # a clean close is not a restart
        shutil.rmtree(self.workdir, ignore_errors=True)

    def __enter__(self) -> SafeExecutor:
        return self

    def __exit__(self, *exc) -> None:
        self.close()


if __name__ == "__main__":
    _serve(sys.argv[1], int(sys.argv[2]), int(sys.argv[3]), int(sys.argv[4]))
