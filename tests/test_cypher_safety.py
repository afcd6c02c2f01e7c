"""Safety of generated Cypher: the read-only check on parsed statements, and hostile queries sent
through the isolated executor. The hostile-query test proves the graph is unchanged, no file
outside the database was read or written (inotify + hashes + listings), and this process lives."""

from __future__ import annotations

import hashlib
import os
import resource

import pytest
from tests.cypher_fixtures import (  # noqa: F401  (graph_path is a pytest fixture)
    IN_CLOSE_WRITE,
    IN_CREATE,
    IN_DELETE,
    IN_MODIFY,
    IN_MOVED_TO,
    FileWatch,
    graph_path,
)

from babelscope.cypher.execute import SafeExecutor
from babelscope.cypher.graph import graph_counts
from babelscope.cypher.safety import check_read_only

SECRET = "CANARY-7f3a9c-do-not-read"


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
            assert r.status == "rejected", (q, r)  # never reaches Kùzu
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


def test_control_plain_read_only_kuzu_does_read_the_canary(graph_path, tmp_path):  # noqa: F811
    """Without the check, Kùzu's read-only mode reads the file: the watch above can see reads."""
    import kuzu

    canary = tmp_path / "secret.csv"
    canary.write_text(f"{SECRET},1\n")
    watch = FileWatch([tmp_path])
    db = kuzu.Database(str(graph_path), read_only=True)
    con = kuzu.Connection(db)
    rows = con.execute(f"LOAD FROM '{canary}' (file_format='csv', header=false) RETURN *").get_all()
    con.close()
    db.close()
    events = watch.events()
    watch.close()
    assert rows[0][0] == SECRET
    assert any(name == "secret.csv" and mask & 0x21 for _, mask, name in events)
