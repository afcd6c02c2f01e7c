"""``babelscope rescore``: recompute every metric of an eval run from its samples (no model)."""

from __future__ import annotations

from dataclasses import dataclass

from babelscope.measure.evaluate import format_table, rescore
from babelscope.runs import RunFolder
from babelscope.verbs import VerbSpec
from babelscope.verbs.config import Config, option
from babelscope.verbs.result import Result


@dataclass
class RescoreConfig(Config):
    run_folder: str = option(help="folder of a finished `babelscope eval` run", positional=True, metavar="RUN")


def run(config: RescoreConfig) -> Result:
    result, same = rescore(config.run_folder)
    folder = RunFolder.open(config.run_folder)
    folder.write_json("rescore.json", result.results)
    if same:
        note = f"babelscope: rescored from samples/: identical to {config.run_folder}/results.json"
    else:
        note = (f"babelscope: rescored numbers DIFFER from {config.run_folder}/results.json (were the samples "
                "edited?); see rescore.json")
    document = {**folder.read_json("results.json"), **result.results, "verb": "rescore"}
    return Result("rescore", document, folder, f"{format_table(result)}\n{note}", 0 if same else 1,
                  {"evaluation": result})


SPEC = VerbSpec(
    "rescore", "measure", "recompute every metric of an eval run from its samples (no model)", RescoreConfig, run,
    description="Reads samples/*.jsonl of a `babelscope eval` run, recomputes every metric, writes rescore.json "
    "and says whether the numbers equal results.json (exit 1 when not).",
)
