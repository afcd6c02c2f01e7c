"""Built-in corpus load time: `load_corpus("builtin")` in a fresh process vs the floor (just
decompressing the .xz files and `json.loads` of each line, nothing else), and a second
in-process call (the parsed corpus is cached).

    python benchmarks/corpus_load.py [--repeats 3]
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys

COLD = """
import time
t = time.perf_counter()
from babelscope.data import load_corpus
c = load_corpus("builtin")
cold = time.perf_counter() - t
t = time.perf_counter()
load_corpus("builtin", languages="en,de,ja")
warm = time.perf_counter() - t
print(cold, warm, len(c), len(c.languages))
"""

FLOOR = """
import json, lzma, time
from importlib import resources
t = time.perf_counter()
d = resources.files("babelscope.data") / "builtin"
for name in ("gnome", "libreoffice", "django"):
    raw = lzma.decompress((d / f"{name}.jsonl.xz").read_bytes()).decode("utf-8")
    rows = [json.loads(line) for line in raw.splitlines()]
print(time.perf_counter() - t)
"""


def run(code: str) -> list[float]:
    env = {**os.environ, "PYTHONPATH": os.path.join(os.path.dirname(__file__), "..", "src")}
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True, env=env)
    return [float(x) for x in out.stdout.split()]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeats", type=int, default=3, help="fresh processes per measurement (best is kept)")
    args = parser.parse_args()
    cold = [run(COLD) for _ in range(args.repeats)]
    floor = [run(FLOOR)[0] for _ in range(args.repeats)]
    best = min(cold, key=lambda r: r[0])
    result = {
        "items": int(best[2]),
        "languages": int(best[3]),
        "load_corpus_cold_s": round(best[0], 3),
        "floor_decompress_json_s": round(min(floor), 3),
        "cold_over_floor": round(best[0] / min(floor), 2),
        "second_call_s": round(best[1], 4),
        "load_average_1min": round(os.getloadavg()[0], 1),
    }
    print(json.dumps(result, indent=1))


if __name__ == "__main__":
    main()
