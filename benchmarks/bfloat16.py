"""What ``dtype=bfloat16`` changes against float32, on the same items, with babelscope's engines.

Scoring: the built-in ``continuation`` and ``translation`` multiple-choice items (accuracy and the
largest per-choice log-likelihood change). Generation: the MGSM-style and Text2Cypher few-shot
prompts of ``benchmarks/generate.py`` (how many outputs stay identical, MGSM answers right).
Also the time of each pass, both on this machine (a CPU without native bfloat16 matmuls pays for
the conversions)::

    python benchmarks/bfloat16.py
    python benchmarks/bfloat16.py --languages eng_Latn,fra_Latn --limit 4 --cypher 4 --mgsm 8
"""

from __future__ import annotations

import argparse
import json
import os
import re
import sys
import time
from pathlib import Path

os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("HF_DATASETS_OFFLINE", "1")
os.environ.setdefault("TRANSFORMERS_VERBOSITY", "error")


def run(dtype: str, items, requests, batch_size) -> dict:
    from babelscope.measure.engine import Engine
    from babelscope.models.load import load_from_args

    engine = Engine(load_from_args(f"pretrained=default,dtype={dtype}"), batch_size=batch_size, progress=False)
    start = time.process_time()
    scores = engine.loglikelihood([(it.context, c) for it in items for c in it.choices])
    scoring_s = time.process_time() - start
    start = time.process_time()
    outputs = engine.generate_until(requests)
    return {"scores": [lp for lp, _ in scores], "outputs": outputs, "scoring_cpu_s": scoring_s,
            "generation_cpu_s": time.process_time() - start}


def predictions(items, scores) -> list[int]:
    """The choice with the highest log-likelihood, per item."""
    out, k = [], 0
    for it in items:
        s = scores[k : k + len(it.choices)]
        out.append(max(range(len(s)), key=s.__getitem__))
        k += len(it.choices)
    return out


def main() -> int:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--languages", default="eng_Latn,fra_Latn,rus_Cyrl,zho_Hans")
    p.add_argument("--limit", type=int, default=4, help="MC items per language and task")
    p.add_argument("--cypher", type=int, default=4)
    p.add_argument("--mgsm", type=int, default=16)
    p.add_argument("--batch_size", default="8")
    p.add_argument("--json", default=None)
    args = p.parse_args()
    sys.path.insert(0, str(Path(__file__).parent))
    from generate import cypher_requests, mgsm_requests

    from babelscope.languages import resolve_many
    from babelscope.measure.tasks import get_task

    langs = resolve_many(args.languages)
    items = []
    for name in ("continuation", "translation"):
        data = get_task(name).load(langs, limit=args.limit)
        items += [it for lang in langs for it in data[lang]]
    requests = mgsm_requests(args.mgsm, 32) + (cypher_requests(args.cypher, "eng_Latn") if args.cypher else [])
    rows = [json.loads(line) for line in (Path(__file__).parent / "data" / "mgsm_style.jsonl").open(encoding="utf-8")]
    size = args.batch_size if args.batch_size == "auto" else int(args.batch_size)
    res = {dtype: run(dtype, items, requests, size) for dtype in ("float32", "bfloat16")}
    figures = {"items": len(items), "choices": len(res["float32"]["scores"]), "generation_requests": len(requests)}
    for dtype, r in res.items():
        r["preds"] = predictions(items, r["scores"])
        figures[f"{dtype}_mc_acc"] = sum(p == it.gold for p, it in zip(r["preds"], items)) / len(items)
        answers = [re.findall(r"-?\d+", o) for o in r["outputs"][: args.mgsm]]
        figures[f"{dtype}_mgsm_right"] = sum(bool(a) and a[0] == row["answer"] for a, row in zip(answers, rows))
        figures[f"{dtype}_scoring_cpu_s"] = r["scoring_cpu_s"]
        figures[f"{dtype}_generation_cpu_s"] = r["generation_cpu_s"]
    figures["max_abs_logprob_change"] = max(abs(a - b) for a, b in zip(res["float32"]["scores"],
                                                                       res["bfloat16"]["scores"], strict=True))
    figures["mc_predictions_changed"] = sum(a != b for a, b in zip(res["float32"]["preds"], res["bfloat16"]["preds"]))
    figures["identical_outputs"] = sum(a == b for a, b in zip(res["float32"]["outputs"], res["bfloat16"]["outputs"]))
    for key, value in figures.items():
        print(f"{key}: {value:.4g}" if isinstance(value, float) else f"{key}: {value}")
    if args.json:
        Path(args.json).write_text(json.dumps(figures, indent=2), encoding="utf-8")
    return 0


if __name__ == "__main__":
    sys.exit(main())
