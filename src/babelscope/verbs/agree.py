"""``babelscope agree RUN...``: do LAHIS heads, language neurons and PLAST layers point at the same layers?

Give run folders of ``heads``, ``neurons`` and (optionally) ``layers``, or folders holding them (a
``loop`` folder). Runs are grouped by model; each model gets the per-layer series, their rank
correlations with bootstrap intervals and the per-language overlap of head and neuron layers
(``interpret.agreement``); with two models (the first named is "before"), their series are compared::

    import babelscope as bs
    r = bs.agree(runs="runs/default/loop-20260101-000000")
    r.results["agreement"]["models"]["default"]["correlations"]   # [{a, b, rho, low, high, n}]
"""

from __future__ import annotations

import argparse
from dataclasses import dataclass
from pathlib import Path

from babelscope.errors import UsageError
from babelscope.interpret.agreement import N_BOOT, across_models, across_rows, agreement, as_rows
from babelscope.report import write_report
from babelscope.runs import RunFolder
from babelscope.verbs import VerbSpec
from babelscope.verbs.common import finish, start_run
from babelscope.verbs.config import OutputOptions, option

VERBS = ("heads", "neurons", "layers")  # the runs agreement reads
MAX_DEPTH = 5  # how deep to look for runs inside a given folder
SKIP = ("artifacts", "samples", "checkpoints", "figures")  # folders of a run that hold no runs


@dataclass(kw_only=True)
class AgreeConfig(OutputOptions):
    runs: str = option(help="run folders of heads, neurons and layers (or folders holding them, e.g. a loop "
                       "folder); runs of two models compare before (first) and after", positional=True,
                       metavar="RUN")
    n_boot: int = option(N_BOOT, "bootstrap resamples of layers for every interval", minimum=10)

    @classmethod
    def add_to_parser(cls, parser: argparse.ArgumentParser) -> None:
        super().add_to_parser(parser)
        for action in parser._actions:  # agree RUN RUN ...
            if action.dest == "runs":
                action.nargs = "+"

    def validate(self) -> None:
        super().validate()
        for folder in self.folders():
            if not Path(folder).expanduser().is_dir():
                raise UsageError(f"{folder} is not a folder; pass run folders of heads, neurons and layers.")

    def folders(self) -> list[str]:
        return [p.strip() for p in self.runs.split(",") if p.strip()]


def find_runs(folders: list[str]) -> dict[str, dict[str, Path]]:
    """``{model: {verb: newest run folder}}`` of the heads, neurons and layers runs in or below ``folders``,
    models in the order first met."""
    found: dict[str, dict[str, Path]] = {}
    for folder in folders:
        for results in _results_files(Path(folder).expanduser(), MAX_DEPTH):
            doc = RunFolder.open(results.parent).read_json("results.json")
            if doc.get("verb") in VERBS:
                model = (doc.get("model") or {}).get("name") or "model"
                per = found.setdefault(model, {})
                if doc["verb"] not in per or str(results.parent) > str(per[doc["verb"]]):
                    per[doc["verb"]] = results.parent
    return found


def _results_files(folder: Path, depth: int):
    if (folder / "results.json").is_file():
        yield folder / "results.json"
    if depth > 0:
        for child in sorted(folder.iterdir()):
            if child.is_dir() and child.name not in SKIP and not (child / "config.json").is_file():  # not a model
                yield from _results_files(child, depth - 1)


def agreement_of(heads_run, neurons_run=None, layers_run=None, n_boot: int = N_BOOT, seed: int = 0) -> dict:
    """The agreement document of one model's runs (files read here, math in interpret.agreement)."""
    heads = RunFolder.open(heads_run).read_json("results.json")
    neurons = RunFolder.open(neurons_run) if neurons_run else None
    doc = agreement(heads, neurons.read_json("neurons.json") if neurons else None,
                    neurons.read_json("layer_counts.json") if neurons else None,
                    RunFolder.open(layers_run).read_json("layers.json") if layers_run else None, n_boot, seed)
    return {**doc, "runs": {"heads": str(heads_run), "neurons": str(neurons_run) if neurons_run else None,
                            "layers": str(layers_run) if layers_run else None}}


def run(config: AgreeConfig):
    found = find_runs(config.folders())
    usable = {m: per for m, per in found.items() if "heads" in per}
    if not usable:
        raise UsageError(f"no `babelscope heads` run in or below {', '.join(config.folders())}; agreement needs "
                         "one (and a neurons run, optionally a layers run, of the same model).")
    models = {m: agreement_of(per["heads"], per.get("neurons"), per.get("layers"), config.n_boot, config.seed)
              for m, per in usable.items()}
    names = list(models)
    run = start_run(config, "agree", model_name=Path(names[0]).name or names[0])
    payload = {"models": {m: as_rows(doc) for m, doc in models.items()}, "before_after": None}
    if len(names) >= 2:
        across = across_models(models[names[0]], models[names[1]], config.n_boot, config.seed)
        payload["before_after"] = {"before": names[0], "after": names[1], **across_rows(across)}
    run.write_results({"agreement": payload})
    report = write_report([run.path], run.path / "report.html", title="babelscope agree")
    run.write_readme(readme(payload) + f"\nReport: {report.name}.\n")
    return finish("agree", run, readme(payload) + f"\nbabelscope: wrote {run.path}", report=report)


def readme(payload: dict) -> str:
    lines = ["# agree: heads, neurons and layers", ""]
    for model, doc in payload["models"].items():
        lines += [f"## {model}", "", "| series | series | Spearman rho | 95% interval |", "|---|---|---|---|"]
        lines += [f"| {c['a']} | {c['b']} | {_num(c['rho'])} | [{_num(c['low'])}, {_num(c['high'])}] |"
                  for c in doc["correlations"]]
        lines += ["", "| language | head layers | neuron layers | Jaccard | chance | rho of counts |",
                  "|---|---|---|---|---|---|"]
        lines += [f"| {r['language']} | {r['head_layers']} | {r['neuron_layers']} | {_num(r['jaccard'])} | "
                  f"{_num(r['chance_jaccard'])} | {_num(r['rho'])} |" for r in doc["languages"]]
        lines.append("")
    return "\n".join(lines)


def _num(x) -> str:
    return "n/a" if x is None else f"{x:.3f}"


def rows(results: dict) -> list[dict]:
    """model, a, b, rho, low, high, n."""
    return [{"model": m, **c} for m, doc in results["agreement"]["models"].items() for c in doc["correlations"]]


SPEC = VerbSpec(
    "agree", "interpret", "do LAHIS heads, language neurons and PLAST layers agree? per-layer rank correlations",
    AgreeConfig, run,
    description="Reads heads, neurons and layers runs (or a loop folder holding them), and per model: the share "
    "per layer of top LAHIS heads, of specific / related / general neurons and the PLAST score; Spearman "
    "correlations between them with bootstrap intervals over layers; per language, whether its specific heads "
    "and specific neurons sit in the same layers (Jaccard beside chance, rank correlation of per-layer counts); "
    "with runs of two models, the same series compared before/after. Example: babelscope agree "
    "runs/default/heads-* runs/default/neurons-* runs/default/layers-*",
)
