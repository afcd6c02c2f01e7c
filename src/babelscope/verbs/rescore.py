"""``babelscope rescore``: recompute every metric of an eval run from its samples (no model)."""

from __future__ import annotations

from dataclasses import dataclass

from babelscope.errors import UsageError
from babelscope.measure.evaluate import format_table, rescore
from babelscope.runs import RunFolder
from babelscope.verbs import VerbSpec
from babelscope.verbs.config import Config, option
from babelscope.verbs.result import Result


@dataclass
class RescoreConfig(Config):
    run_folder: str = option(help="folder of a finished `babelscope eval` run", positional=True, metavar="RUN")


def _check_eval_run(path: str) -> RunFolder:
    """An eval run folder with readable results.json and samples, or a one-line error."""
    folder = RunFolder.open(path)
    if not (folder.path / "results.json").is_file():
        raise UsageError(f"{path} has no results.json; rescore reads the folder of a finished `babelscope eval` run.")
    try:
        results = folder.read_json("results.json")
    except (ValueError, UnicodeDecodeError):
        raise UsageError(f"{path}/results.json is not valid JSON (a damaged run?); rerun `babelscope eval`.") from None
    verb = results.get("verb", "eval") if isinstance(results, dict) else None
    if verb not in ("eval", "rescore") or not isinstance(results.get("tasks"), dict) or "task_info" not in results:
        raise UsageError(f"{path} is not an eval run (it was made by `{verb}`); rescore reads eval runs only.")
    return folder


def run(config: RescoreConfig) -> Result:
    folder = _check_eval_run(config.run_folder)
    try:
        result, same = rescore(config.run_folder)
    except (KeyError, TypeError, ValueError) as exc:
        raise UsageError(f"{config.run_folder}: samples/ or results.json are damaged ({type(exc).__name__}: "
                         f"{exc}); rerun `babelscope eval`.") from None
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
