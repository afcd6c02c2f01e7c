#!/usr/bin/env python
"""The built-in Text2Cypher set's 171 gold results on one embedded engine, as one digest per item.

Builds the built-in graph with the engine (into a temporary folder), runs every gold query
in-process, read-only, and prints {item_id: sha256 of the canonical result} (`metrics.result_key`:
order kept only where the query orders its result). Kùzu and its fork LadybugDB share the Python
API, so the same code runs on either; they cannot be loaded into one process (their native
extensions collide), hence one run per engine:

    python scripts/cypher_gold_digests.py --module kuzu > kuzu.json        # pip install kuzu==0.11.3
    python scripts/cypher_gold_digests.py --module ladybug > ladybug.json

`tests/test_cypher_engine.py` compares the ladybug results with the Kùzu digests recorded in
`tests/cypher_gold_kuzu.json` (written by this script with `--module kuzu`).
"""

from __future__ import annotations

import argparse
import hashlib
import json
import tempfile
from importlib import metadata
from pathlib import Path


def gold_digests(module: str) -> dict:
    from babelscope.cypher import embedded
    from babelscope.cypher.execute import plain
    from babelscope.cypher.graph import build_graph
    from babelscope.cypher.metrics import has_order_by, result_key
    from babelscope.cypher.questions import load_questions

    embedded.MODULE = module  # the same API under another import name
    items = load_questions()
    with tempfile.TemporaryDirectory() as tmp:
        db, con = embedded.connect(build_graph(Path(tmp) / f"graph{embedded.SUFFIX}"), threads=1)
        digests = {}
        for item in items:
            rows = [plain(row) for row in con.execute(item.cypher).get_all()]  # as the worker sends them
            key = result_key("ok", rows, ordered=has_order_by(item.cypher))
            digests[item.item_id] = hashlib.sha256(key.encode()).hexdigest()
        con.close()
        db.close()
    versions = {name: metadata.version(name) for name in (module, "pycountry", "babel")}
    return {"engine": f"{module} {versions[module]}", "data": {k: versions[k] for k in ("pycountry", "babel")},
            "items": digests}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--module", default="ladybug", help="import name of the engine: ladybug or kuzu")
    print(json.dumps(gold_digests(parser.parse_args().module), indent=1, sort_keys=True))


if __name__ == "__main__":
    main()
