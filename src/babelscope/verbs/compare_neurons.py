"""``babelscope compare-neurons``: the language neurons of two ``neurons`` runs side by side."""

from __future__ import annotations

from dataclasses import dataclass
from typing import ClassVar

from babelscope.interpret.compare import compare_runs, format_compare
from babelscope.verbs import VerbSpec
from babelscope.verbs.common import finish, start_run
from babelscope.verbs.config import Config, OutputOptions, option


@dataclass
class _Runs(Config):
    run_a: str = option(help="run folder of `babelscope neurons` (e.g. the base model)", positional=True,
                        metavar="RUN_A")
    run_b: str = option(help="run folder of `babelscope neurons` (e.g. the aligned or finetuned model)",
                        positional=True, metavar="RUN_B")


@dataclass
class CompareNeuronsConfig(OutputOptions, _Runs):
    lam: float | None = option(None, "two ternary runs: the one lambda both are re-selected at (default: run A's "
                               "own lambda, applied to run B, so the two sweeps do not confound class shifts)",
                               short="--lambda", minimum=0.0)

    RENAMED: ClassVar[dict] = {"lambda": "lam"}


def run(config: CompareNeuronsConfig):
    cmp = compare_runs(config.run_a, config.run_b, config.lam)
    run = start_run(config, "compare-neurons", f"{cmp['model_a']}-vs-{cmp['model_b']}")
    run.languages = cmp["languages"]
    run.write_results({k: v for k, v in cmp.items() if k != "languages"})
    text = format_compare(cmp)
    run.write_readme(text)
    return finish("compare-neurons", run, text)


def rows(results: dict) -> list[dict]:
    """language, neurons in A, in B, in both, Jaccard."""
    return [{"language": lang, "a": j["a"], "b": j["b"], "both": j["both"], "jaccard": j["jaccard"]}
            for lang, j in results["jaccard"].items()]


SPEC = VerbSpec(
    "compare-neurons", "interpret", "compare the language neurons of two `neurons` runs (Jaccard, class moves)",
    CompareNeuronsConfig, run,
    description="Per-language Jaccard overlap of neuron sets, transitions between classes (e.g. specific -> "
    "general) and per-layer shifts, for two runs on the same architecture (a base model and its aligned or "
    "finetuned version). Two ternary runs are compared at one lambda (run A's, or --lambda), recorded in "
    "results.json. Example: babelscope compare-neurons runs/base/neurons-X runs/tuned/neurons-Y",
)
