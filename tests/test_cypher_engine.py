"""The graph engine interface: LadybugDB gives the built-in gold queries the results Kùzu gave, `open_engine`
picks the engine from `--database`, and a missing engine package is a one-line error naming its extra."""

from __future__ import annotations

import hashlib
import json
from importlib import metadata
from pathlib import Path

import pytest
from tests.cypher_fixtures import executor, graph_path  # noqa: F401  (pytest fixtures)

from babelscope.cli.main import main
from babelscope.cypher import embedded
from babelscope.cypher.bolt import Neo4jExecutor
from babelscope.cypher.engine import open_engine
from babelscope.cypher.execute import SafeExecutor
from babelscope.cypher.metrics import has_order_by, result_key
from babelscope.cypher.public import AliasExecutor
from babelscope.cypher.questions import load_questions
from babelscope.errors import DataError, MissingExtraError

KUZU_GOLD = json.loads((Path(__file__).parent / "cypher_gold_kuzu.json").read_text())


def test_the_171_gold_queries_give_on_ladybug_the_results_kuzu_gave(executor):  # noqa: F811
    """Digests of Kùzu 0.11.3's results (scripts/cypher_gold_digests.py --module kuzu), compared with what the
    sandboxed LadybugDB worker returns; the graph's data comes from pycountry and Babel, so their versions
    must be those the digests were made with (constraints.txt pins them)."""
    data = {name: metadata.version(name) for name in KUZU_GOLD["data"]}
    if data != KUZU_GOLD["data"]:
        pytest.skip(f"the digests were made with {KUZU_GOLD['data']}, this environment has {data}")
    items = load_questions()
    got = {}
    for item in items:
        result = executor.run(item.cypher)
        key = result_key(result.status, result.rows, ordered=has_order_by(item.cypher))
        got[item.item_id] = hashlib.sha256(key.encode()).hexdigest() if key is not None else result.error
    assert len(items) == len(KUZU_GOLD["items"]) == 171
    assert len(set(got.values())) > 120  # 131 different results: some questions share an answer (a count, a name)
    differ = [item_id for item_id, digest in KUZU_GOLD["items"].items() if got.get(item_id) != digest]
    assert differ == [], differ


def test_open_engine_picks_the_engine_from_the_database_spelling(graph_path, tmp_path):  # noqa: F811
    folder = tmp_path / "dbs"
    folder.mkdir()
    (folder / f"movies{embedded.SUFFIX}").symlink_to(graph_path)
    file_engine = open_engine(str(graph_path), builtin=False)
    builtin = open_engine(None, graph=graph_path)
    routed = open_engine(str(folder))
    try:
        assert isinstance(file_engine, SafeExecutor) and file_engine.db_path == str(graph_path)
        assert isinstance(builtin, SafeExecutor) and builtin.db_path == str(graph_path)
        assert isinstance(routed, AliasExecutor) and sorted(routed.databases) == ["movies"]
        assert routed.run("MATCH (c:Country {code: 'FR'}) RETURN c.name", "movies").rows == [["France"]]
        assert builtin.guard.startswith("local worker, ") and routed.guard.startswith("local worker, ")
    finally:
        for engine in (file_engine, builtin, routed):
            engine.close()
    assert open_engine(None, builtin=False) is None  # a public set without --database: text metrics only
    with pytest.raises(DataError, match="does not exist"):
        open_engine(str(tmp_path / f"missing{embedded.SUFFIX}"))
    try:
        bolt = open_engine("bolt://127.0.0.1:9", password="x")  # nothing listens; a driver connects lazily
    except MissingExtraError as e:
        assert 'pip install "babelscope[neo4j]"' in str(e)
    else:
        assert isinstance(bolt, Neo4jExecutor) and bolt.guard.startswith("Neo4j server")
        assert bolt.run("MATCH (n) DETACH DELETE n").status == "rejected"  # checked before any connection
        bolt.close()


def test_without_the_engine_package_cypher_says_which_extra_to_install(monkeypatch, tmp_path, capsys):
    monkeypatch.setattr(embedded, "MODULE", "babelscope_no_such_engine")
    with pytest.raises(MissingExtraError, match=r'pip install "babelscope\[cypher\]"'):
        SafeExecutor(tmp_path)
    assert main(["cypher", "build-graph", "--graph", str(tmp_path / f"g{embedded.SUFFIX}")]) == 2
    err = capsys.readouterr().err.strip()
    assert err.count("\n") == 0 and 'pip install "babelscope[cypher]"' in err, err
    assert not (tmp_path / f"g{embedded.SUFFIX}").exists()
