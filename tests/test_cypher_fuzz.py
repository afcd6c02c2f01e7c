"""Differential fuzz of the read-only check (issue 15): random queries from fragments that mix block
and line comments (`**/`, `*/` inside strings), strings with every escape and quote kind, backticks,
write / file keywords, semicolons and CR/LF. Every query the checker accepts is run, rendered and raw,
in-process on a writable scratch copy of the graph whose file paths point at a canary file and an
output folder: the secret is never returned, no file appears, the graph is unchanged, the rendering
is a fixed point of the checker, and LadybugDB reads the raw text as the checker did (same outcome)."""

from __future__ import annotations

import os
import random
import shutil

import pytest
from tests.cypher_fixtures import SECRET, canary_file, graph_path  # noqa: F401  (pytest fixtures)

from babelscope.cypher.graph import NODE_TABLES, REL_TABLES
from babelscope.cypher.safety import check_read_only

SEED = 15
N_QUERIES = 2500

TEMPLATES = [
    ["UNWIND", "[1, 2]", "AS", "x", "RETURN", "<E>"],
    ["MATCH", "(c:Country)", "WHERE", "c.code", "=", "<S>", "RETURN", "c.name", ",", "<E>"],
    ["RETURN", "<E>", ",", "<E>"],
    ["WITH", "<E>", "AS", "`a b`", "RETURN", "`a b`"],
    ["MATCH", "(c:Country)-[:SPEAKS]->(l:Language)", "WHERE", "l.code", "=", "<S>", "RETURN", "count(*)"],
    ["CALL", "show_tables()", "RETURN", "*"],
    ["CALL", "current_setting('home_directory')", "RETURN", "*"],
]
EXPRESSIONS = ["<S>", "<S>", "<S>", "1", "1.5e-3", "[1, 2][0]", "size(<S>)", "`load`", "x", "c.name", "$p", "'a' + <S>"]
SEPARATORS = [
    " ", " ", " ", "  ", "\n", "\r\n", "\t", "\r", "\f", "/**/", "/* c */", " /* ***/ ", "/* * / */", "// c\n",
    "// c\r\n", "/* '*/", '/* "*/', "/*/*/", " /* // */ ", "// */\n", "/* ` */", "/* LOAD */", "// COPY\n",
]  # fmt: skip
TRICKY_SEPARATORS = ["", "/* **/", "/* ****/", "/*", "*/", "//", "// c\r", "**/", "'", '"', "`", "\\", "\u00a0", "$"]


def _strings(load_sq: str, load_dq: str, copy: str, export: str) -> list[str]:
    plain = [
        "'plain'", '"double"', r"'it\'s'", r'"it\'s"', '"it\'s"', r"'\\'", r"'a\nb'", r"'\u0041'", r"'\U0001F600'",
        r'"\""', r"'\"'", "'*/'", "'/*'", "'//'", "'**/'", "'/* **/'", r"'\x41'", r"'\q'", "'unterminated",
        "'a\rb'", "'é'", r"'\''", "'`'", "'a\nb'", r"'\N\t'",
    ]  # fmt: skip
    hostile = [f"'*/ {load_dq} //'", f'"*/ {load_sq} //"', f"'; {copy} //'", f"'*/; {export} //'", f"'\\' {load_dq}'"]
    return plain + hostile


def _hostile(load_sq: str, load_dq: str, copy: str, export: str, canary: str, out: str) -> list[str]:
    return [
        load_sq, load_dq, f"LOAD WITH HEADERS (a STRING) FROM '{canary}' RETURN *", f"; {copy}", f"; {export}",
        f"UNION ALL {load_sq}", "CREATE (:Country {code: 'ZZ', name: 'Zed'})", "SET c.name = 'x'", "DELETE c",
        "DETACH DELETE c", "MERGE (:Language {code: 'zz'})", "REMOVE c.alpha3", f"COPY Country FROM '{canary}'",
        "CALL current_setting('home_directory')", f"ATTACH '{out}/x.kuzu' AS x (dbtype kuzu)", "INSTALL json",
        "CHECKPOINT", "BEGIN TRANSACTION", "DROP TABLE TimeZone", "EXPLAIN", "PROFILE", "; RETURN 1", ";",
        f"/* **/ RETURN '*/ {load_dq} //'", f"/* **/ '*/; {copy} //'", f"// \r {load_sq}", f"/* ****/ {load_sq} */",
    ]  # fmt: skip


class QueryMaker:
    def __init__(self, rng: random.Random, canary: str, out: str):
        load_sq = f"LOAD FROM '{canary}' (file_format='csv', header=false) RETURN *"
        load_dq = f'LOAD FROM "{canary}" (file_format="csv", header=false) RETURN *'
        copy = f'COPY (MATCH (c:Country) RETURN c.name) TO "{out}/dump.csv"'
        export = f"EXPORT DATABASE '{out}/export'"
        self.rng = rng
        self.strings = _strings(load_sq, load_dq, copy, export)
        self.hostile = _hostile(load_sq, load_dq, copy, export, canary, out)
        self.separators = SEPARATORS + [f"/* ' {load_sq} */", f"// {load_dq}\n", f"/* **/ {copy} */"]

    def _fill(self, piece: str) -> str:
        """A template piece with <E> replaced by an expression and <S> by a string literal."""
        if piece == "<E>":
            piece = self.rng.choice(EXPRESSIONS)
        return piece.replace("<S>", self.rng.choice(self.strings))

    def _separator(self) -> str:
        return self.rng.choice(TRICKY_SEPARATORS) if self.rng.random() < 0.08 else self.rng.choice(self.separators)

    def query(self) -> str:
        pieces = [self._fill(p) for p in self.rng.choice(TEMPLATES)]
        for _ in range(self.rng.choice([0, 0, 0, 1, 1, 2])):
            pieces.insert(self.rng.randrange(len(pieces) + 1), self.rng.choice(self.hostile))
        if self.rng.random() < 0.15:
            pieces.append(self.rng.choice([";", "; ", ";\n// end"]))
        text = pieces[0]
        for piece in pieces[1:]:
            text += self._separator() + piece
        return self._separator() + text if self.rng.random() < 0.2 else text


def _outcome(con, query: str):
    """Sorted rows (with column names) as LadybugDB runs `query`, "multi" for several statements, or "error"."""
    try:
        result = con.execute(query)
    except Exception:  # LadybugDB raises RuntimeError for parse, binder and runtime errors
        return "error"
    if isinstance(result, list):
        return "multi", [sorted(map(repr, r.get_all())) for r in result]
    return result.get_column_names(), sorted(map(repr, result.get_all()))


def _counts(con) -> dict[str, int]:
    out = {t: con.execute(f"MATCH (n:{t}) RETURN count(n)").get_next()[0] for t in NODE_TABLES}
    out.update({t: con.execute(f"MATCH ()-[r:{t}]->() RETURN count(r)").get_next()[0] for t in REL_TABLES})
    return out


@pytest.fixture
def scratch_con(graph_path, tmp_path):  # noqa: F811
    """A writable in-process connection on a copy of the built-in graph."""
    ladybug = pytest.importorskip("ladybug")

    folder = tmp_path / "scratch"
    folder.mkdir()
    for path in graph_path.parent.glob(graph_path.name + "*"):
        shutil.copy(path, folder / path.name)
    db = ladybug.Database(str(folder / graph_path.name))
    con = ladybug.Connection(db, num_threads=1)
    con.set_query_timeout(2000)
    yield con
    con.close()
    db.close()


def test_every_accepted_query_reads_only_and_means_the_same_to_ladybug(scratch_con, canary_file):  # noqa: F811
    secret_file, out = canary_file
    maker = QueryMaker(random.Random(SEED), str(secret_file), str(out))
    counts_before = _counts(scratch_con)
    accepted, rejected, ran, naming_the_canary = 0, 0, 0, 0
    for _ in range(N_QUERIES):
        query = maker.query()
        verdict = check_read_only(query)
        if not verdict.ok:
            rejected += 1
            continue
        accepted += 1
        naming_the_canary += str(secret_file) in query  # in a string or comment, or the check is wrong
        assert check_read_only(verdict.statement).statement == verdict.statement, query  # a fixed point
        rendered = _outcome(scratch_con, verdict.statement)
        raw = _outcome(scratch_con, query)
        assert raw == rendered, (query, verdict.statement)  # LadybugDB reads the raw text as the checker did
        assert SECRET not in repr(rendered) + repr(raw), query
        ran += rendered != "error"
    assert os.listdir(out) == []
    assert _counts(scratch_con) == counts_before
    assert accepted >= N_QUERIES // 4 and rejected >= N_QUERIES // 4, (accepted, rejected)
    assert ran >= N_QUERIES // 10, ran  # not all binder or parser errors
    assert naming_the_canary >= 100, naming_the_canary  # accepted queries did carry the tricks' text
