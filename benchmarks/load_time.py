"""Load time of the embedded default model from the safetensors cache, against reading the same
weights with safetensors alone (the floor) in the same run.

    python benchmarks/load_time.py            # converts once first if the cache is empty
"""

from __future__ import annotations

import os
import subprocess
import sys
import time

CHILD = """
import sys, time, torch
torch.set_num_threads(2)
t = time.perf_counter()
if sys.argv[1] == "babelscope":
    from babelscope.models.load import load_model
    load_model("default")
else:
    from safetensors.torch import load_file
    from babelscope.models.load import embedded_folder
    load_file(str(embedded_folder("default") / "model.safetensors"))
print(time.perf_counter() - t)
"""


def timed(kind: str) -> float:
    out = subprocess.run([sys.executable, "-c", CHILD, kind], capture_output=True, text=True, check=True,
                         env={**os.environ, "HF_HUB_OFFLINE": "1"})
    return float(out.stdout.strip().splitlines()[-1])


def main() -> None:
    from babelscope.models.load import embedded_folder

    t = time.perf_counter()
    embedded_folder("default")  # convert once if needed (not timed below)
    print(f"cache ready in {time.perf_counter() - t:.1f} s")
    floor = min(timed("safetensors") for _ in range(2))
    ours = min(timed("babelscope") for _ in range(2))
    print(f"load_model('default') from cache: {ours:.2f} s; raw safetensors read: {floor:.2f} s; "
          f"ratio {ours / floor:.2f}")


if __name__ == "__main__":
    main()
