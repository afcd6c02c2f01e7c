"""``babelscope neurons``: language neurons in the MLPs (ternary specific / related / general, or
LAPE) and the deactivation check; ``TextOptions`` is shared with ``babelscope layers``."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import ClassVar

import torch

from babelscope import distributed as dist
from babelscope.data.corpus import load_corpus
from babelscope.data.split import split_texts
from babelscope.errors import UsageError
from babelscope.interpret import neurons as nr
from babelscope.interpret import ternary
from babelscope.interpret.compare import compare_results
from babelscope.interpret.deactivation import matrix_text
from babelscope.interpret.lape import BAR_RATE, FILTER_RATE, TOP_RATE
from babelscope.models.load import DEFAULT_MODEL, load_from_args, parse_model_args
from babelscope.models.reducers import NeuronReducer
from babelscope.verbs import VerbSpec
from babelscope.verbs.common import bind_model, finish, seed_everything, start_run
from babelscope.verbs.config import (
    SOURCE_HELP,
    Config,
    LanguageOptions,
    ModelOptions,
    OutputOptions,
    check_model_path,
    option,
)

COUNTS = ("all", "answer")
RENAMED = {"validate": "check", "lambda": "lam"}  # flag spellings whose config key differs


@dataclass
class TextOptions(Config):
    source: str = option("builtin", SOURCE_HELP, group="text")
    max_tokens: int = option(nr.MAX_TOKENS, "statistics tokens per language, from the training part of the "
                             "aligned items", minimum=1, group="text")
    count: str = option("all", "tokens whose activations count: all text tokens, or only answer tokens the model "
                        "generates greedily after the first tokens of each text (as the language-neurons paper "
                        "counts generated answers; slower)", choices=COUNTS, group="text")
    threads: int | None = option(None, "torch CPU threads (default: torch's choice)", minimum=1, group="text")

    def text_setup(self) -> tuple:
        """(corpus, resolved languages) after applying ``threads``."""
        if self.threads:
            torch.set_num_threads(self.threads)
        corpus = load_corpus(self.source)
        return corpus, corpus.resolve_languages(self.languages)


@dataclass
class NeuronsConfig(OutputOptions, TextOptions, LanguageOptions, ModelOptions):
    method: str = option("ternary", "ternary: specific / related / general (Zhang et al. 2025, lambda swept); "
                         "lape: lowest-entropy neurons above the 95th-percentile filter (Tang et al. 2024)",
                         choices=nr.METHODS, group="method")
    top_rate: float = option(TOP_RATE, "share of all MLP neurons selected", minimum=0.0, maximum=1.0,
                             group="method")
    bar_rate: float = option(BAR_RATE, "quantile of all activation probabilities a neuron must exceed to belong "
                             "to a language", minimum=0.0, maximum=1.0, group="method")
    filter_rate: float = option(FILTER_RATE, "LAPE only: quantile a neuron must exceed in some language to be "
                                "eligible", minimum=0.0, maximum=1.0, group="method")
    lam: float | None = option(None, "ternary only: fixed lambda instead of the binary search on [0, 0.2]",
                               short="--lambda", minimum=0.0, group="method")
    lambda_search: str = option("largest", "ternary only: largest (the largest lambda in [0, 0.2] without an "
                                "all-language neuron) or official (the released autosweep.py's steps: about "
                                "0.1998 where every lambda is fine, no lambda where none is)",
                                choices=ternary.SEARCHES, group="method")
    check: bool = option(False, "deactivation check (--validate): zero each language's neurons (and matched "
                         "random ones) and measure every language's loss on held-out aligned text",
                         short="--validate", group="checks")
    eval_tokens: int = option(nr.EVAL_TOKENS, "held-out tokens per language for --validate", minimum=1,
                              group="checks")
    prompts: str | None = option(None, "--count answer only: the prompts the model answers, given whole: qt (the "
                                 "question-translation prompts of finetune's qt kind, '<lang>: text\\n<pivot>:', from "
                                 "the source's training items) or a JSONL file of {language, question} rows (e.g. "
                                 "MGSM questions, as the language-neurons paper counts the answers to them); default: "
                                 "the first tokens of each text", metavar="qt|FILE", group="text")
    compare: str | None = option(None, "a second model (same --model_args syntax, e.g. pretrained=my-finetuned-"
                                 "dir): run the same analysis on it and compare the neuron sets",
                                 metavar="MODEL_ARGS", group="checks")

    # a run folder reused with --run_name keeps its statistics when only these change (docs/neurons.md);
    # a different --count recomputes them in place
    RERUN_IN_PLACE: ClassVar[tuple] = ("method", "top_rate", "bar_rate", "filter_rate", "lam", "lambda_search",
                                       "check", "eval_tokens", "compare", "count", "prompts", "threads")

    RENAMED: ClassVar[dict] = RENAMED

    def validate(self) -> None:
        super().validate()
        if self.prompts and self.count != "answer":
            raise UsageError("--prompts gives the questions whose answers are counted; add --count answer.")
        if self.prompts and self.prompts not in nr.PROMPT_KINDS and not Path(self.prompts).is_file():
            raise UsageError(f"--prompts {self.prompts!r}: use qt or a JSONL file of {{language, question}} rows.")
        if self.compare:
            compare = parse_model_args(self.compare) if "=" in self.compare else {"pretrained": self.compare}
            check_model_path(compare.get("pretrained"), "--compare")

    def token_selection(self) -> str:
        """What the statistics count: all, answer (continuations of text), answer:qt or answer:FILE."""
        return f"answer:{self.prompts}" if self.prompts and self.count == "answer" else self.count

    def selection(self) -> dict:
        """Keyword arguments of ``interpret.neurons.from_stats`` for the chosen method."""
        extra = {"filter_rate": self.filter_rate} if self.method == "lape" else {"lam": self.lam,
                                                                                 "search": self.lambda_search}
        return {"top_rate": self.top_rate, "bar_rate": self.bar_rate, **extra}


def _statistics(config, run, loaded, train: dict, name: str, prompts: dict | None = None):
    """Neuron statistics, reused from the run folder when it holds ones of the same token selection."""
    stats_path = run.path / nr.STATS_FILE
    stats = NeuronReducer.load(stats_path) if stats_path.exists() else None  # resume an interrupted run
    if stats is None or stats.token_selection != config.token_selection():
        stats = nr.collect_stats(loaded, train, config.max_tokens, config.batch_size, count=config.count,
                                 prompts=prompts, selection=config.token_selection())
        if dist.is_main():
            stats_path.parent.mkdir(parents=True, exist_ok=True)
            stats.save(stats_path, {"model": name, "source": config.source})
    return stats


def payload(result, source: str, token_selection: str = "all") -> dict:
    """results.json's payload: the selection summary (model and languages live in the envelope)."""
    return {"source": source, "token_selection": token_selection,
            **{k: v for k, v in result.summary().items() if k not in ("model", "languages")}}


def analyse(config: NeuronsConfig, spec: dict, corpus, languages: list[str], lam: float | None = None):
    """One model: statistics (resumed when present), selection, optional check; its run folder.

    ``lam``: a ternary lambda that overrides the sweep (``--compare`` applies the first model's)."""
    name = str(spec.get("pretrained", DEFAULT_MODEL))
    run = start_run(config, "neurons", name)
    run.languages = languages
    loaded = load_from_args(spec, device=config.device)
    bind_model(run, loaded, spec.get("revision"))
    train, held = split_texts(corpus, languages)
    prompts = nr.answer_prompts(config.prompts, corpus, languages) if config.prompts else None
    stats = _statistics(config, run, loaded, train, name, prompts)
    selection = config.selection()
    if lam is not None and config.method == "ternary":
        selection["lam"] = lam
    result = nr.from_stats(stats, name, config.method, **selection)
    if config.check:
        result.validation = nr.validate(loaded, result, held, config.eval_tokens, config.batch_size, config.seed)
    if dist.is_main():
        result.save(run)
        run.write_results(payload(result, config.source, config.token_selection()))
        run.write_readme(readme(result))
    return run, result


def readme(result) -> str:
    s = result.summary()
    lines = [
        f"# neurons: {result.model}", "",
        f"Method **{result.method}**; languages {', '.join(result.languages)}; selection {s['selection']}.", "",
        "Files: `neurons.json` (per language: layer -> neuron ids), `layer_counts.json` (per-layer counts "
        "of specific / related / general neurons and the phases), `neurons_per_layer.png`, "
        "`artifacts/neurons.safetensors` (class map, memberships, probabilities), "
        "`artifacts/neuron_stats.safetensors` (raw counts).", "",
        f"Class totals: {s['class_totals']}. Neurons per language: {s['neurons_per_language']}.", "",
        "Phases (heuristic): " + "; ".join(f"{p['phase']} {p['layers'][0]}-{p['layers'][1]}" for p in result.phases),
    ]
    if result.validation:
        lines += [
            "", "## Deactivation check (loss increase, nats/token)", "",
            "Rows: language whose neurons are switched off; columns: language evaluated. Random sets have "
            "the same number of neurons per layer.", "",
            matrix_text(result.validation), "",
            "| language | neurons | own increase | own / mean other languages | own / mean other neurons |",
            "|---|---|---|---|---|",
        ]
        lines += [f"| {lang} | {r['neurons']} | {r['own_increase']:+.4f} | {_fmt(r['own_vs_other_languages'])} | "
                  f"{_fmt(r['own_vs_other_neurons'])} |" for lang, r in result.validation["per_language"].items()]
    return "\n".join(lines) + "\n"


def _fmt(x) -> str:
    return "n/a" if x is None else f"{x:.2f}"


def summary_text(run, result) -> str:
    s = result.summary()
    lines = [f"babelscope: {result.method} neurons per language: {s['neurons_per_language']}",
             f"babelscope: class totals {s['class_totals']}"]
    for lang, r in (result.validation or {}).get("per_language", {}).items():
        lines.append(f"  {lang}: own +{r['own_increase']:.4f} nats, own/other-languages "
                     f"{_fmt(r['own_vs_other_languages'])}, own/other-neurons {_fmt(r['own_vs_other_neurons'])}, "
                     f"own/random {_fmt(r['own_vs_random'])}")
    lines.append(f"babelscope: wrote {run.path}")
    return "\n".join(lines)


def _compare(config: NeuronsConfig, run, result, corpus, languages: list[str]) -> str:
    """``--compare``: the same analysis on a second model (its own run folder); compare.json here.

    Ternary: the second model is selected at the first model's lambda (swept or --lambda), so class
    shifts are not confounded by two sweeps; compare.json records that lambda."""
    spec = parse_model_args(config.compare)
    lam = result.sets.info.get("lambda") if config.method == "ternary" else None
    other_run, other = analyse(config, spec, corpus, languages, lam=lam)
    if not dist.is_main():
        return ""
    applied = {"lambda": lam, "lambda_from": "model_a" if lam is not None else None}
    run.write_json("compare.json", {"other_run": str(other_run.path), **applied, **compare_results(result, other)})
    return f"\nbabelscope: comparison with {other.model} in {Path(run.path) / 'compare.json'}"


def run(config: NeuronsConfig):
    corpus, languages = config.text_setup()
    seed_everything(config.seed)
    folder, result = analyse(config, config.model_spec(), corpus, languages)
    summary = summary_text(folder, result) if dist.is_main() else ""
    if config.compare:
        summary += _compare(config, folder, result, corpus, languages)
    return finish("neurons", folder, summary, neurons=result)


def rows(results: dict) -> list[dict]:
    """class, layer, count (per-layer specific / related / general neurons)."""
    return [{"class": cls, "layer": i, "count": n} for cls, per in results["per_layer"].items()
            for i, n in enumerate(per)]


SPEC = VerbSpec(
    "neurons", "interpret", "language neurons (ternary specific/related/general, or LAPE) and a deactivation check",
    NeuronsConfig, run,
    description="Counts, per MLP neuron and language, the tokens with a positive gate output on the training "
    "part of the aligned corpus (decoder body only, no logits), then selects neurons with the ternary method "
    "(specific / related / general) or LAPE. Writes neurons.json, layer_counts.json, the per-layer plot and the "
    "raw statistics. --validate zeroes each language's neurons on the down_proj input and measures every "
    "language's loss on held-out aligned text, beside matched random neurons. Example: babelscope neurons "
    "--model_args pretrained=default --method ternary --languages eng_Latn,fra_Latn,deu_Latn,spa_Latn,rus_Cyrl "
    "--validate; torchrun --nproc_per_node 2 -m babelscope neurons --languages eng_Latn,fra_Latn shards batches",
)
