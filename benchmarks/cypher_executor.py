"""What isolation costs: the built-in gold queries through `SafeExecutor` (one persistent worker
process with RLIMIT_AS, the database's timeout and wall-clock kill) vs in-process read-only LadybugDB (no
protection), vs a fresh worker per query (the naive way to isolate). Same graph, same queries.

    python benchmarks/cypher_executor.py [--spawn_queries 20]
"""

from __future__ import annotations

import argparse
import tempfile
import time
from pathlib import Path


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--spawn_queries", type=int, default=20, help="queries for the worker-per-query baseline")
    args = parser.parse_args()

    from babelscope.cypher import embedded
    from babelscope.cypher.execute import SafeExecutor
    from babelscope.cypher.graph import build_graph
    from babelscope.cypher.questions import load_questions

    queries = [item.cypher for item in load_questions()]
    with tempfile.TemporaryDirectory() as tmp:
        path = build_graph(Path(tmp) / f"graph{embedded.SUFFIX}")

        db, con = embedded.connect(path, threads=1)
        t = time.perf_counter()
        plain_rows = [con.execute(q).get_all() for q in queries]
        in_process = (time.perf_counter() - t) / len(queries)
        con.close()
        db.close()

        with SafeExecutor(path) as ex:
            ex.run("RETURN 1")  # start the worker outside the timing, as an evaluation does once
            t = time.perf_counter()
            safe_rows = [ex.run(q).rows for q in queries]
            persistent = (time.perf_counter() - t) / len(queries)
        assert len(safe_rows) == len(plain_rows) and all(r for r in safe_rows)

        t = time.perf_counter()
        for q in queries[: args.spawn_queries]:
            with SafeExecutor(path) as ex:
                ex.run(q)
        per_query_worker = (time.perf_counter() - t) / args.spawn_queries

    print(f"{len(queries)} gold queries, seconds per query:")
    print(f"  in-process ladybug (unprotected)   {in_process * 1000:8.2f} ms")
    print(f"  SafeExecutor (persistent worker)   {persistent * 1000:8.2f} ms")
    print(f"  fresh worker per query             {per_query_worker * 1000:8.2f} ms")
    print(f"ratio SafeExecutor / in-process:      {persistent / in_process:6.2f}x")
    print(f"ratio worker-per-query / SafeExecutor: {per_query_worker / persistent:6.1f}x")


if __name__ == "__main__":
    main()
