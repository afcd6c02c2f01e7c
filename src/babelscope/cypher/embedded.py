"""The embedded graph database: LadybugDB (PyPI `ladybug`), the maintained fork of Kùzu.

Kùzu's repository was archived in October 2025; LadybugDB continues it with the same Cypher
dialect and Python API (`Database`, `Connection`, `execute`, `set_query_timeout`), under the
import name `ladybug`. Its file format is its own (a Kùzu file is not opened), so databases
are built afresh (`graph.GRAPH_VERSION`). It is the optional extra `babelscope[cypher]`;
everything here imports it through `library()`, which names the extra when it is missing.
"""

from __future__ import annotations

from pathlib import Path

from babelscope.errors import require

MODULE = "ladybug"  # the import name of PyPI's ladybug
EXTRA = "cypher"
SUFFIX = ".lbug"  # file suffix of built databases (a folder of them is keyed by <alias>.lbug)
SIDE_FILES = (".wal", ".lock", ".shadow", ".tmp")  # files the engine keeps beside a database


def library():
    """The `ladybug` module, or a one-line error naming `pip install "babelscope[cypher]"`."""
    return require(MODULE, extra=EXTRA, feature="the embedded graph database (babelscope cypher)")


def connect(path: str | Path, read_only: bool = True, threads: int = 0, **limits):
    """(database, connection) on the file at `path`; `limits` go to `ladybug.Database`
    (buffer_pool_size, max_db_size, ...). `threads` > 0 caps both the database and the connection."""
    lb = library()
    db = lb.Database(str(path), read_only=read_only, max_num_threads=threads, **limits)
    return db, lb.Connection(db, num_threads=threads)


def preload() -> None:
    """Import the library and load its native extension now: `ladybug` loads the extension only when
    the first Database opens, which inside the worker is after Landlock has closed site-packages."""
    library().Database.get_version()
