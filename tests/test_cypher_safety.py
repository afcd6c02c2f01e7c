"""Safety of generated Cypher: the read-only check on parsed statements, and hostile queries sent
through the isolated executor. The hostile-query test proves the graph is unchanged, no file
outside the database was read or written (inotify + hashes + listings), and this process lives."""

from __future__ import annotations

import hashlib
import json
import os
import resource
import subprocess
import sys
import time

import pytest
from tests.cypher_fixtures import (  # noqa: F401  (canary_file, executor, graph_path are pytest fixtures)
    IN_CLOSE_WRITE,
    IN_CREATE,
    IN_DELETE,
    IN_MODIFY,
    IN_MOVED_TO,
    SECRET,
    FileWatch,
    canary_file,
    executor,
    graph_path,
    parser_tricks,
)

from babelscope.cypher import sandbox
from babelscope.cypher.execute import SafeExecutor
from babelscope.cypher.graph import graph_counts
from babelscope.cypher.safety import MAX_QUERY_CHARS, check_read_only, render, tokenize


@pytest.mark.parametrize(
    "query",
    [
        "MATCH (c:Country) RETURN c.name",
        "MATCH (c:Country {name: 'Spain'})-[s:SPEAKS]->(l:Language) RETURN l.name ORDER BY s.population_percent DESC",
        "MATCH (c:Country) WHERE c.name = 'CREATE (x) DELETE y; DROP' RETURN c.code",  # keywords inside a string
        "MATCH (c:Country) RETURN c.name AS `load`",  # a backtick name
        "MATCH (n:Country) RETURN n.set, n.copy",  # property names that look like keywords... (none exist)
        "// a comment with DELETE\nMATCH (c:Country) RETURN count(c);",  # one trailing semicolon
        "UNWIND [1, 2, 3] AS x RETURN x",
        "CALL show_tables() RETURN *",
        "MATCH (c:Country) WITH c, count(*) AS n RETURN c.name ORDER BY n DESC LIMIT 1",
        "MATCH (a:Country) RETURN a.name UNION MATCH (b:Country) RETURN b.name",
    ],
)
def test_read_queries_pass(query):
    assert check_read_only(query).ok, check_read_only(query).reason


@pytest.mark.parametrize(
    "query,why",
    [
        ("MATCH (c:Country) RETURN c; MATCH (l:Language) RETURN l", "2 statements"),
        ("MATCH (c:Country) SET c.name = 'x' RETURN c", "SET"),
        ("match (c:Country) with c create (:Country {code: 'x'}) return c", "CREATE"),
        ("/* hidden */ DETACH DELETE", "DELETE"),
        ("MATCH (c:Country) RETURN 'unterminated", "syntax"),
        ("MATCH (c:Country WHERE c.name = 'x' RETURN c", "syntax"),
        ("MATCH (c:Country)", "RETURN"),
        ("CALL threads=4", "CALL must name"),
        ("CALL create_fts_index('Country', 'i', ['name'])", "allowlist"),
        ("", "empty"),
    ],
)
def test_unsafe_or_broken_queries_are_rejected(query, why):
    verdict = check_read_only(query)
    assert not verdict.ok and why in verdict.reason


def _tree_state(folder) -> dict:
    """{relative path: (size, mtime_ns, sha256)} for every file under folder."""
    state = {}
    for root, dirs, files in os.walk(folder):
        for name in dirs + files:
            path = os.path.join(root, name)
            st = os.stat(path)
            digest = hashlib.sha256(open(path, "rb").read()).hexdigest() if os.path.isfile(path) else "dir"
            state[os.path.relpath(path, folder)] = (st.st_size, st.st_mtime_ns, digest)
    return state


def _hostile_queries(canary: str, out: str) -> list[str]:
    return [
        "CREATE (:Country {code: 'XX', name: 'Atlantis'})",
        "MATCH (c:Country {code: 'ES'}) SET c.name = 'Hacked' RETURN c",
        "MATCH (c:Country) DETACH DELETE c",
        "MATCH (s:Subdivision) DELETE s",
        "MERGE (l:Language {code: 'zz'}) RETURN l",
        "MATCH (c:Country {code: 'ES'}) REMOVE c.alpha3 RETURN c",
        "DROP TABLE TimeZone",
        "ALTER TABLE Country ADD hacked STRING",
        "CREATE NODE TABLE Evil(id STRING, PRIMARY KEY(id))",
        f"LOAD FROM '{canary}' (file_format='csv', header=false) RETURN *",
        f"load with headers (a STRING) from '{canary}' return *",
        f"MATCH (c:Country) RETURN c.name UNION ALL LOAD FROM '{canary}' (file_format='csv', header=false) RETURN *",
        f"COPY Country FROM '{canary}'",
        f"COPY (MATCH (c:Country) RETURN c.name) TO '{out}/dump.csv'",
        "COPY (MATCH (c:Country) RETURN c.name) TO 'relative_dump.csv'",
        f"EXPORT DATABASE '{out}/export'",
        f"IMPORT DATABASE '{out}/export'",
        "INSTALL httpfs",
        "LOAD EXTENSION httpfs",
        f"ATTACH '{out}/other.kuzu' AS other (dbtype kuzu)",
        "MATCH (c:Country) RETURN count(c); CREATE (:Country {code: 'YY', name: 'Ys'})",
        f"MATCH (c:Country) RETURN c.name; COPY (MATCH (c:Country) RETURN c) TO '{out}/x.csv'",
        "CALL threads=64",
        "CALL create_fts_index('Country', 'idx', ['name'])",
        "CALL project_graph('g', ['Country'], ['SPEAKS'])",
        "BEGIN TRANSACTION",
        "CHECKPOINT",
        "/* looks harmless */ CREATE (:Country {code: 'ZZ', name: 'Zed'})",
    ]


def test_hostile_queries_change_nothing_read_nothing_and_the_evaluator_survives(graph_path, tmp_path):  # noqa: F811
    db_dir, outside, out = graph_path.parent, tmp_path / "outside", tmp_path / "out"
    outside.mkdir()
    out.mkdir()
    canary = outside / "secret.csv"
    canary.write_text(f"{SECRET},1\n{SECRET},2\n")
    counts_before = graph_counts(graph_path)
    state_before = {d: _tree_state(d) for d in (db_dir, outside, out)}
    rss_before = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    ex = SafeExecutor(graph_path, timeout_s=2.0, memory_mb=1024)
    watch = FileWatch([outside, out, db_dir, ex.workdir])
    try:
        hostile = _hostile_queries(str(canary), str(out))
        results = [ex.run(q) for q in hostile]
        for q, r in zip(hostile, results):
            assert r.status == "rejected", (q, r)  # never reaches LadybugDB
        assert ex.executed == 0
        bombs = [
            "UNWIND range(1, 300000000) AS x RETURN sum(x * x % 7)",  # memory bomb: ~24 GB in-process
            "UNWIND range(1, 100000) AS x UNWIND range(1, 100000) AS y RETURN sum((x * y) % 7)",  # CPU bomb
        ]
        bomb_results = [ex.run(q) for q in bombs]
        # RLIMIT_AS fails the allocation (or kills the worker); on a loaded machine the timeout may come first
        assert bomb_results[0].status in ("memory", "crashed", "timeout"), bomb_results[0]
        assert bomb_results[1].status == "timeout", bomb_results[1]
        after = ex.run("MATCH (c:Country) RETURN count(c)")  # the next query still runs
        assert after.ok and after.rows == [[counts_before["Country"]]]
        assert len(hostile) + len(bombs) >= 20
        workdir_files = os.listdir(ex.workdir)
        events = watch.events()
    finally:
        watch.close()
        ex.close()
    assert workdir_files == []  # nothing written relative to the worker's folder
    touched = [e for e in events if e[0] in (str(outside), str(out))]
    assert touched == [], touched  # no open, read, write or create outside the database folder
    writes = [e for e in events if e[1] & (IN_MODIFY | IN_CLOSE_WRITE | IN_CREATE | IN_DELETE | IN_MOVED_TO)]
    assert writes == [], writes  # the database folder was only read; nothing appeared in the worker's folder
    assert {d: _tree_state(d) for d in (db_dir, outside, out)} == state_before  # sizes, mtimes, hashes, no new files
    assert graph_counts(graph_path) == counts_before
    assert all(SECRET not in (r.error + repr(r.rows)) for r in results + bomb_results)
    rss_after = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    assert rss_after - rss_before < 512 * 1024  # KiB: the bombs did not grow this process


def test_the_worker_checks_again_when_the_parent_check_is_bypassed(graph_path, tmp_path, monkeypatch):  # noqa: F811
    from babelscope.cypher import execute
    from babelscope.cypher.safety import Verdict

    canary = tmp_path / "secret.csv"
    canary.write_text(f"{SECRET},1\n")
    watch = FileWatch([tmp_path])
    monkeypatch.setattr(execute, "check_read_only", lambda q: Verdict(True, "", q))  # parent-side only
    with SafeExecutor(graph_path, timeout_s=2.0) as ex:
        res = ex.run(f"LOAD FROM '{canary}' (file_format='csv', header=false) RETURN *")
    events = watch.events()
    watch.close()
    assert res.status == "rejected" and "LOAD" in res.error
    assert [e for e in events if e[2] == "secret.csv"] == []


def test_control_plain_read_only_ladybug_does_read_the_canary(graph_path, tmp_path):  # noqa: F811
    """Without the check, LadybugDB's read-only mode reads the file: the watch above can see reads."""
    ladybug = pytest.importorskip("ladybug")

    canary = tmp_path / "secret.csv"
    canary.write_text(f"{SECRET},1\n")
    watch = FileWatch([tmp_path])
    db = ladybug.Database(str(graph_path), read_only=True)
    con = ladybug.Connection(db)
    rows = con.execute(f"LOAD FROM '{canary}' (file_format='csv', header=false) RETURN *").get_all()
    con.close()
    db.close()
    events = watch.events()
    watch.close()
    assert rows[0][0] == SECRET
    assert any(name == "secret.csv" and mask & 0x21 for _, mask, name in events)


# Issue 15: execute exactly what was checked. The checker's lexer must read comments, strings and
# escapes as LadybugDB does, and only its canonical re-rendering of the tokens is ever executed.


TRICK_REASONS = {"load": (0, "LOAD"), "copy": (1, "2 statements"), "export": (2, "2 statements")}


@pytest.mark.parametrize("index,why", TRICK_REASONS.values(), ids=TRICK_REASONS.keys())
def test_the_comment_trick_and_its_copy_and_export_forms_are_rejected(index, why):
    query = parser_tricks("/home/user/secret.csv", "/tmp/out")[index]
    verdict = check_read_only(query)
    assert not verdict.ok and why in verdict.reason, verdict


def test_control_the_comment_trick_fools_plain_ladybug(graph_path, canary_file):  # noqa: F811
    """Without the check, read-only LadybugDB runs the hidden LOAD, COPY and EXPORT: the trick is real."""
    ladybug = pytest.importorskip("ladybug")

    secret_file, out = canary_file
    db = ladybug.Database(str(graph_path), read_only=True)
    con = ladybug.Connection(db)
    try:
        results = [con.execute(q) for q in parser_tricks(str(secret_file), str(out))[:3]]
        loaded = results[0].get_all()
    finally:
        con.close()
        db.close()
    assert loaded[0][1] == SECRET
    assert sorted(os.listdir(out)) == ["dump.csv", "export"]


@pytest.fixture(scope="module")
def ladybug_con():
    ladybug = pytest.importorskip("ladybug")

    db = ladybug.Database(":memory:")
    con = ladybug.Connection(db)
    yield con
    con.close()
    db.close()


def _outcome(con, query: str):
    """(columns, rows) as LadybugDB runs `query`, or "error" when LadybugDB refuses it."""
    try:
        result = con.execute(query)
    except RuntimeError:
        return "error"
    return result.get_column_names(), result.get_all()


COMMENTS = [
    "/**/", "/* */", "/***/", "/* **/", "/* ***/", "/* ****/", "/* *****/", "/* * / */", "/*/ */", "/*/*/",
    "/* ** / */", "/* *\n*/", "/*", "/* *", "/** /", "/* */ */", "/* // */", "/* '*/", '/* "*/', "/*\r*/",
    "/* *\\*/", "/* ` */", "// x\n", "// x\r\n", "// x\r", "// */\n", "// /* \n", "//\n", "// x", "//\r\n\r\n",
]  # fmt: skip
LITERALS = [
    r"'\x41'", r"'\X4a'", r"'\x4g'", r"'a\x27 b'", r"'\U00000041'", r"'\U0041'",
    r"'\u0041'", r"'\U0001F600'", r"'\u004'", r"'\uZZZZ'", r"'a\nb'", r"'\N\B\F\R\T\f'", r'"\""',
    r"'it\'s'", r'"it\'s"', '"it\'s"', r"'\\'", r"'\\\''", r"'\q'", r"'\/'", r"'\'", "'a\nb'", "'a\rb'", "'é'",
    r'"a\"b\'c"', "'`'", "'/* */'", "'//'", "'*/'", "1 AS `a`", "1 AS `a``b`", "1 AS ``",
    "1 AS `a b`", "1 AS `a\nb`", "1 AS `é`", "1 AS `a", "1e-5", "1e+5", "007", "0", "0.5", ".5", "00.5",
    "1.e5", "1.5E3", "5!", "1 <> 2", "1 != 2", "[1,2,3][1:2]", "[1,2,3][ 1]", "$x", "$0", "$01", "1\v+\f1",
]  # fmt: skip


@pytest.mark.parametrize("comment", COMMENTS)
def test_comments_end_where_ladybug_ends_them(ladybug_con, comment):
    """A differential on the comments themselves: where this lexer reads a comment, LadybugDB reads the
    same (the rendering with the comment replaced by a space runs the same); where it refuses, so does LadybugDB."""
    for query in (f"RETURN 1 {comment} + 2", f"RETURN 1 {comment} + 2 */ + 4", f"RETURN 1 {comment}\n+ 8 // */"):
        verdict = check_read_only(query)
        if not verdict.ok:
            assert _outcome(ladybug_con, query) == "error", (query, verdict.reason)
        else:
            assert _outcome(ladybug_con, query) == _outcome(ladybug_con, verdict.statement), query


@pytest.mark.parametrize("literal", LITERALS)
def test_strings_names_and_numbers_read_as_ladybug_reads_them(ladybug_con, literal):
    """Strings (every escape and quote kind), backtick names and numbers: accepted ones give LadybugDB the
    same value and column name in their canonical rendering; refused ones are refused by LadybugDB too."""
    query = f"RETURN {literal}"
    verdict = check_read_only(query)
    if not verdict.ok:
        assert _outcome(ladybug_con, query) == "error", (query, verdict.reason)
    else:
        assert _outcome(ladybug_con, query) == _outcome(ladybug_con, verdict.statement), (query, verdict.statement)
        assert check_read_only(verdict.statement).statement == verdict.statement


CONSERVATIVE = [
    "RETURN 1\u00a0+ 1", "WITH 1 AS a$b RETURN a$b", "RETURN 1 AS é", "RETURN 1 \u2212 1", "RETURN 1 AS ````",
    "RETURN 1 AS x\x00", "RETURN '\ud800'",
]  # fmt: skip


@pytest.mark.parametrize("query", CONSERVATIVE)
def test_what_the_lexer_cannot_classify_is_rejected(query):
    """LadybugDB accepts some of these (Unicode spaces, names, dashes; `$` inside names; a name of two empty
    backtick segments): rejected all the same."""
    assert check_read_only(query).reason.startswith("syntax:")


def test_the_statement_is_the_canonical_rendering():
    verdict = check_read_only('/* lead */ MATCH (c:Country)\r\n\tWHERE c.name = "Côte d\'Ivoire" // x\nRETURN c.code;')
    assert verdict.statement == "MATCH (c:Country) WHERE c.name = 'Côte d\\'Ivoire' RETURN c.code"
    assert render(tokenize("RETURN [1, 2][1], x->x+1")) == "RETURN [1, 2][1], x->x+1"  # adjacency is kept


def _seconds(text: str) -> float:
    """The fastest of five checks (robust to a busy machine)."""
    best = float("inf")
    for _ in range(5):
        start = time.perf_counter()
        check_read_only(text)
        best = min(best, time.perf_counter() - start)
    return best


def test_the_checker_is_linear_and_capped():
    start = time.perf_counter()
    verdict = check_read_only("/* " * 50_000)  # 150 KB: refused by the size cap before lexing
    assert not verdict.ok and f"longer than {MAX_QUERY_CHARS}" in verdict.reason
    assert time.perf_counter() - start < 1.0
    patterns = [lambda n: "/* " * n, lambda n: "/*" + "*" * 3 * n, lambda n: "RETURN '" + "\\'" * n,
                lambda n: "`" * 3 * n, lambda n: "// \r" * (n * 3 // 4), lambda n: "RETURN " + "/* ** */" * (n // 3),
                lambda n: "RETURN " + "1 + " * (n * 3 // 4) + "1"]  # fmt: skip
    for make in patterns:
        small, large = _seconds(make(750)), _seconds(make(6_000))  # 8x the text, both under the cap
        assert len(make(6_000)) <= MAX_QUERY_CHARS
        assert large < 24 * small, (make(4)[:20], small, large)  # linear: ~8x; quadratic: ~64x
        assert large < 0.5


def test_no_trick_returns_the_canary(graph_path, canary_file):  # noqa: F811
    secret_file, out = canary_file
    tricks = parser_tricks(str(secret_file), str(out))
    watch = FileWatch([secret_file.parent, out])
    try:
        with SafeExecutor(graph_path, timeout_s=2.0) as ex:
            results = [ex.run(q) for q in tricks]
        events = watch.events()
    finally:
        watch.close()
    assert all(r.status == "rejected" for r in results[:3]), results[:3]
    assert all(SECRET not in r.error + repr(r.rows) for r in results)
    assert [e for e in events if e[2] == "secret.csv"] == [] and os.listdir(out) == []


def test_the_worker_runs_only_canonical_checked_text(graph_path, canary_file, monkeypatch):  # noqa: F811
    """With the parent's check bypassed (raw text goes to the worker), the worker still rejects the
    trick, and it refuses safe text that is not the checker's own rendering."""
    from babelscope.cypher import execute
    from babelscope.cypher.safety import Verdict

    secret_file, out = canary_file
    monkeypatch.setattr(execute, "check_read_only", lambda q: Verdict(True, "", q))  # parent-side only
    with SafeExecutor(graph_path, timeout_s=2.0) as ex:
        trick = ex.run(parser_tricks(str(secret_file), str(out))[0])
        raw = ex.run("MATCH (c:Country)  RETURN /* n */ count(c)")
        canonical = ex.run("MATCH (c:Country) RETURN count(c)")
    assert trick.status == "rejected" and "LOAD" in trick.error
    assert raw.status == "rejected" and "canonical" in raw.error
    assert canonical.ok


def test_the_executor_reports_its_sandbox(executor):  # noqa: F811
    assert executor.sandbox == sandbox.describe()
    assert sandbox.describe(0).startswith("none (Landlock unavailable)")
    assert "network: denied" in sandbox.describe(4) and "network: not restricted" in sandbox.describe(3)


def test_without_landlock_nothing_is_applied_and_nothing_crashes(monkeypatch):
    monkeypatch.setattr(sandbox.platform, "machine", lambda: "sparc64")
    assert sandbox.abi_version() == 0
    assert sandbox.restrict(["/"]) == sandbox.NONE


_UNCHECKED_WORKER = """
import sys
from babelscope.cypher import execute
from babelscope.cypher.safety import Verdict
execute.check_read_only = lambda q: Verdict(True, "", q)  # this test's worker checks nothing
execute._serve(sys.argv[1], 2 << 30, 5000, 100)
"""


@pytest.mark.skipif(sandbox.abi_version() < 1, reason="Landlock is not available on this kernel")
def test_landlock_stops_a_worker_that_checks_nothing(graph_path, canary_file, tmp_path):  # noqa: F811
    """The checker bypassed in parent and worker alike: Landlock alone keeps the canary unread and
    the output folder empty, and the worker still answers graph queries."""
    secret_file, out = canary_file
    queries = [
        f"LOAD FROM '{secret_file}' (file_format='csv', header=false) RETURN *",
        f"COPY (MATCH (c:Country) RETURN c.name) TO '{out}/dump.csv'",
        f"EXPORT DATABASE '{out}/export'",
        "MATCH (c:Country) RETURN count(c)",
    ]
    cwd = tmp_path / "cwd"
    cwd.mkdir()
    lines = "".join(json.dumps(q) + "\n" for q in queries)
    args = [sys.executable, "-c", _UNCHECKED_WORKER, str(graph_path)]
    proc = subprocess.run(args, cwd=cwd, input=lines, text=True, capture_output=True, timeout=120)
    ready, *answers = [json.loads(line) for line in proc.stdout.splitlines()]
    assert ready == ["ready", sandbox.describe()]
    assert [a[0] for a in answers] == ["error", "error", "error", "ok"], answers
    assert "Permission denied" in answers[0][1] and SECRET not in proc.stdout
    assert os.listdir(out) == [] and os.listdir(cwd) == []
