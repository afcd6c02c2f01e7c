"""Fixtures for the Text2Cypher tests: the built-in graph built once per test session."""

from __future__ import annotations

import ctypes
import os

import pytest

from babelscope.cypher.graph import build_graph


@pytest.fixture(scope="session")
def graph_path(tmp_path_factory):
    """The built-in graph, built from pycountry + CLDR into a session folder (about 1.5 s); the tests that
    use it need `babelscope[cypher]` (LadybugDB), which `make test` installs."""
    pytest.importorskip("ladybug")
    return build_graph(tmp_path_factory.mktemp("cypher-graph") / "graph.lbug")


@pytest.fixture(scope="session")
def executor(graph_path):
    from babelscope.cypher.execute import SafeExecutor

    with SafeExecutor(graph_path, timeout_s=3.0) as ex:
        yield ex


SECRET = "CANARY-7f3a9c-do-not-read"


@pytest.fixture
def canary_file(tmp_path):
    """(a CSV file holding SECRET outside the graph folder, an empty folder for would-be outputs)."""
    outside, out = tmp_path / "outside", tmp_path / "out"
    outside.mkdir()
    out.mkdir()
    path = outside / "secret.csv"
    path.write_text(f"{SECRET},1\n{SECRET},2\n")
    return path, out


def parser_tricks(canary: str, out: str) -> list[str]:
    """Queries that hide a file read or write from a checker whose lexer differs from the engine's: comments
    that end later than they seem (`**/`), escapes, backticks, line ends, Unicode spaces."""
    load = f'LOAD FROM "{canary}" (file_format="csv", header=false) RETURN *'
    copy = f'COPY (MATCH (c:Country) RETURN c.name) TO "{out}/dump.csv"'
    export = f'EXPORT DATABASE "{out}/export"'
    return [
        f"UNWIND [1] AS x /* **/ RETURN '*/ {load} //'",  # issue 15's repro: Kùzu's comment ends at the second */
        f"RETURN 1 /* **/ RETURN '*/; {copy} //'",
        f"RETURN 1 /* **/ RETURN '*/; {export} //'",
        f"UNWIND [1] AS x /* ****/ RETURN '*/ {load} //'",
        f"UNWIND [1] AS x /* ***/ RETURN '*/ {load} //'",
        f"UNWIND [1] AS x /* * / */ RETURN '*/ {load} //'",
        f"UNWIND [1] AS x // \r RETURN '\n {load} //'",
        f"UNWIND [1] AS x RETURN 'a\\' /* ' */ {load} //'",
        f"UNWIND [1] AS x RETURN 'a\\' /* ' */ {load} // '",
        f'UNWIND [1] AS x RETURN "\\"" /* " */ {load} //"',
        f"UNWIND [1] AS x RETURN '\\x27' /* ' */ {load} //'",
        f"UNWIND [1] AS x RETURN 1 AS `a`` /* ` */ {load} //`",
        f"UNWIND [1] AS x RETURN 1 /* */ */ {load}",
        f"MATCH (c:Country) RETURN c.name\u00a0UNION ALL {load}",
        f"MATCH (c:Country) RETURN c.name\u2028UNION ALL {load}",
        f"MATCH (c:Country) RETURN c.name UNION ALL {load.lower()}",
        f"MATCH (c:Country) RETURN c.name UNION ALL LoAd FrOm '{canary}' RETURN *",
        f"UNWIND [1] AS x RETURN x; {load}",
        load,
        "CALL current_setting('home_directory') RETURN *",
    ]


IN_ACCESS, IN_MODIFY, IN_ATTRIB, IN_CLOSE_WRITE, IN_OPEN, IN_CREATE, IN_DELETE = 0x1, 0x2, 0x4, 0x8, 0x20, 0x100, 0x200
IN_MOVED_TO = 0x80


class FileWatch:
    """Linux inotify on folders: records every open/read/write/create in them (by any process)."""

    def __init__(self, folders, mask=IN_ACCESS | IN_MODIFY | IN_ATTRIB | IN_CLOSE_WRITE | IN_OPEN | IN_CREATE
                 | IN_DELETE | IN_MOVED_TO):  # fmt: skip
        self._libc = ctypes.CDLL(None, use_errno=True)
        self.fd = self._libc.inotify_init1(os.O_NONBLOCK)
        if self.fd < 0:
            raise OSError(ctypes.get_errno(), "inotify_init1 failed")
        self.names = {}
        for folder in folders:
            wd = self._libc.inotify_add_watch(self.fd, str(folder).encode(), mask)
            if wd < 0:
                raise OSError(ctypes.get_errno(), f"inotify_add_watch failed on {folder}")
            self.names[wd] = str(folder)

    def events(self) -> list[tuple[str, int, str]]:
        """(folder, mask, file name) for every event since the last call."""
        out = []
        while True:
            try:
                buf = os.read(self.fd, 65536)
            except BlockingIOError:
                return out
            i = 0
            while i < len(buf):
                wd, mask, _cookie, length = int.from_bytes(buf[i : i + 4], "little", signed=True), *(
                    int.from_bytes(buf[i + k : i + k + 4], "little") for k in (4, 8, 12))  # fmt: skip
                name = buf[i + 16 : i + 16 + length].rstrip(b"\0").decode(errors="replace")
                out.append((self.names.get(wd, "?"), mask, name))
                i += 16 + length

    def close(self) -> None:
        os.close(self.fd)


def make_db(path, table: str, names: list[str]) -> None:
    """A LadybugDB file at ``path`` holding one node table ``table(name)`` with ``names``."""
    ladybug = pytest.importorskip("ladybug")

    db = ladybug.Database(str(path))
    con = ladybug.Connection(db)
    con.execute(f"CREATE NODE TABLE {table}(name STRING, PRIMARY KEY(name))")
    for name in names:
        con.execute(f"CREATE (:{table} {{name: $n}})", {"n": name})
    con.close()
    db.close()
