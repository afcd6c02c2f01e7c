"""``babelscope finetune``: train only chosen layers (PLAST) on parallel / question-translation /
monolingual / Text2Cypher data (Just Go Parallel), optionally revert layers, and measure held-out
bits per character (and any other measure task) before and after, in the target and other languages.

results.json holds ``before_after`` ``{task: {language: {"before": x, "after": y}}}`` with
``stages`` ``["before", "after"]``, ``delta`` ``{task: {language: after - before}}``, the
layers trained, the trainable share, the training curve and ``language_roles`` (training,
pivot, evaluated); ``languages`` is the list of evaluated languages.
"""

from __future__ import annotations

import argparse
import math
import re
import sys
from dataclasses import dataclass
from pathlib import Path
from typing import ClassVar

import torch

from babelscope.cypher.training import training_pairs
from babelscope.data import visual
from babelscope.data.corpus import load_corpus
from babelscope.data.parallel import (
    DEFAULT_BLOCK_SIZE,
    KINDS,
    PLACEMENTS,
    build_docs,
    pack_docs,
    parse_spec,
    seen,
    subsample,
    summary,
)
from babelscope.data.split import held_out_items
from babelscope.errors import DataError, UsageError
from babelscope.improve import layer_finetune as lf
from babelscope.improve.report_to import HELP as REPORT_TO_HELP
from babelscope.improve.report_to import Reporter, parse_report_to
from babelscope.improve.train_loop import TrainConfig, steps_in, train
from babelscope.languages import REFERENCE, resolve, resolve_many
from babelscope.measure.evaluate import evaluate
from babelscope.measure.tasks import get_tasks
from babelscope.measure.visual import TASK as VISUAL_TASK
from babelscope.runs import redact
from babelscope.schema import before_after
from babelscope.verbs import VerbSpec
from babelscope.verbs import layers as layers_verb
from babelscope.verbs.common import bind_model, finish, seed_everything, start_run
from babelscope.verbs.config import Config, ModelOptions, OutputOptions, option

DEFAULT_DATA = "parallel:builtin"  # Just Go Parallel pairs from the built-in corpus (train split)
DEFAULT_EVAL_TASKS = "bpc"  # held-out bits per character (forgetting shows in the other languages)
DEFAULT_EVAL_LIMIT = 16  # held-out items per language for before/after
DEFAULT_TRAIN_BATCH = 2  # sequences per micro-batch: 50 steps stay within minutes on 2 CPU cores
DEFAULT_MAX_LENGTH = 64  # tokens per packed training sequence
OTHER_LANGUAGES = ("deu_Latn", "spa_Latn", "rus_Cyrl", "zho_Hans", "ita_Latn", "por_Latn", "jpn_Jpan", "arb_Arab")
MIN_OTHERS = 3  # languages outside training that the before/after table always includes
HEADLINE = "bpc"  # the task shown first (README table, summary)
STAGES = ["before", "after"]
BETTER = {"bpc": "bpc: lower is better", VISUAL_TASK: "accuracy: higher is better"}  # README note per headline
QUICK_LAYER_TOKENS = 1024  # statistics tokens per language when --layers auto must run the layer analysis
_D = TrainConfig()

LAYER_SPEC = re.compile(r"auto|all|\d+(-\d+)?([,\s]+\d+(-\d+)?)*")  # --layers syntax

@dataclass
class _TrainingLanguages(Config):
    languages: str = option(help="training languages, e.g. eng_Latn,fra_Latn; those other than --pivot are the "
                            "targets (required)", short="-l")


@dataclass
class FinetuneConfig(OutputOptions, ModelOptions, _TrainingLanguages):
    pivot: str = option(REFERENCE, "language every target is paired with")
    data: str = option(DEFAULT_DATA, f"one or more <kind>:<source> (space- or comma-separated), kind in "
                       f"{', '.join(KINDS)}; source builtin (train split only), a corpus file (JSONL/CSV/TSV), or "
                       "hf:<dataset>; cypher:builtin or cypher:<text2cypher-layout file> for Text2Cypher pairs",
                       group="data")
    parallel_location: str = option("end", "where parallel documents sit in the schedule: end (Parallel Last, "
                                    "the paper's best), start, or interleave", choices=PLACEMENTS, group="data")
    block_size: int = option(DEFAULT_BLOCK_SIZE, "parallel pairs per direction block before the order flips",
                             minimum=1, group="data")
    max_length: int = option(DEFAULT_MAX_LENGTH, "tokens per packed training sequence", minimum=2, group="data")
    layers: str = option("auto", "layers to train: auto (recommended.layers of a `babelscope layers` run: "
                         "--layers_json, else the newest layers run of this model under --output_path, else a quick "
                         "layer selection), a spec like 0-3,16-17, or all", group="layers and method")
    layers_json: str | None = option(None, "a `babelscope layers` run folder or its layers.json",
                                     group="layers and method")
    method: str = option("full", "full: the chosen layers are trainable, all else frozen; lora: PEFT LoRA adapters "
                         "on the chosen layers only", choices=lf.METHODS, group="layers and method")
    lora_r: int = option(lf.DEFAULT_LORA_R, "LoRA rank", minimum=1, group="layers and method")
    lora_alpha: int = option(lf.DEFAULT_LORA_ALPHA, "LoRA alpha", minimum=1, group="layers and method")
    revert_layers: str | None = option(None, "after training, set these layers (spec like 4-13) back to the base "
                                       "weights", group="layers and method")
    train_batch_size: int = option(DEFAULT_TRAIN_BATCH, "sequences per training micro-batch (--batch_size is for "
                                   "evaluation)", minimum=1, group="optimisation")
    epochs: float = option(1.0, "passes over the training schedule: it sets the budget (a fraction trains an evenly "
                           "spaced share of it; more than 1 repeats it)", minimum=0.0, group="optimisation")
    max_tokens: int | None = option(None, "token budget instead of --epochs (sequences x --max_length)", minimum=1,
                                    group="optimisation")
    max_steps: int | None = option(_D.max_steps, "at most this many optimizer steps (a cap on the --epochs / "
                                   "--max_tokens budget; null in YAML, None in Python: no cap); the data never "
                                   "wraps around",
                                   minimum=1, group="optimisation")
    grad_accum: int = option(_D.grad_accum, "micro-batches per optimizer step", minimum=1, group="optimisation")
    lr: float = option(_D.lr, "peak AdamW learning rate", minimum=0.0, group="optimisation")
    warmup: float = option(_D.warmup, "share of steps with linear warmup, then linear decay", minimum=0.0,
                           maximum=1.0, group="optimisation")
    weight_decay: float = option(_D.weight_decay, "AdamW weight decay", minimum=0.0, group="optimisation")
    max_grad_norm: float = option(_D.max_grad_norm, "gradient clipping norm, 0 = off", minimum=0.0,
                                  group="optimisation")
    checkpoint_every: int = option(_D.checkpoint_every, "steps between checkpoints in <run>/checkpoints (0: only "
                                   "at the end); re-running with the same --run_name resumes exactly from the last "
                                   "one", minimum=0, group="optimisation")
    report_to: str = option("none", REPORT_TO_HELP, group="optimisation")
    RERUN_IN_PLACE: ClassVar[tuple] = ("report_to",)  # where the losses are also sent does not change results
    eval_languages: str | None = option(None, f"languages measured before and after (default: the training "
                                        f"languages plus {MIN_OTHERS} others from {', '.join(OTHER_LANGUAGES)})",
                                        group="before/after evaluation")
    eval_source: str = option("builtin", "aligned corpus whose held-out split is measured (and never trained on): "
                              "builtin, a corpus file, or hf:<dataset>", group="before/after evaluation")
    eval_tasks: str = option(DEFAULT_EVAL_TASKS, "measure tasks run before and after, comma-separated",
                             group="before/after evaluation")
    eval_limit: int = option(DEFAULT_EVAL_LIMIT, "held-out items per language", minimum=1,
                             group="before/after evaluation")
    task_data: str | None = option(None, "with --data visual:mmbench or visual:mmmb: folder DIR holding DIR/mmmb/ "
                                   "(local copies, one MM-Bench-schema file per language)", metavar="DIR", group="data")
    no_save: bool = option(False, "do not write the trained model / adapter", group="before/after evaluation")

    @classmethod
    def add_to_parser(cls, parser: argparse.ArgumentParser) -> None:
        super().add_to_parser(parser)
        for action in parser._actions:  # --data a b (several specs, as before)
            if action.dest == "data":
                action.nargs = "+"

    def validate(self) -> None:
        """What can be checked before the model loads: layer syntax, files, task names, languages."""
        super().validate()
        parse_report_to(self.report_to)
        if self.epochs <= 0 and not self.max_tokens:
            raise UsageError(f"--epochs must be above 0 (passes over the schedule), got {self.epochs}.")
        if not LAYER_SPEC.fullmatch(self.layers.strip()):
            raise UsageError(f"--layers {self.layers!r} is not auto, all, or indices and ranges like 0-3,16.")
        for spec in self.data_specs():
            if visual.is_visual(spec):
                visual.load_visual(spec, task_data=self.task_data)  # unreadable: stops here, before the model loads
                continue
            kind, source = parse_spec(spec)
            if source != "builtin" and not source.startswith("hf:"):
                if not Path(source).expanduser().is_file():
                    raise UsageError(f"--data {spec}: {source} does not exist; pass a corpus file, builtin or "
                                     "hf:<dataset>.")
                if kind == "cypher":
                    try:  # an unreadable Text2Cypher file stops here, before the model loads
                        training_pairs(self.languages, source=source)
                    except ValueError as exc:
                        raise DataError(f"--data {spec}: {exc}") from None
                else:
                    load_corpus(source)  # an unreadable corpus stops here, before the model loads
        if self.layers_json and not Path(self.layers_json).expanduser().exists():
            raise UsageError(f"--layers_json {self.layers_json} does not exist; pass a `babelscope layers` run "
                             "folder or its layers.json.")
        get_tasks(self.eval_tasks)
        resolve(self.pivot)
        resolve_many(self.languages)

    def data_specs(self) -> list[str]:
        return [s for s in re.split(r"[,\s]+", self.data) if s]

    def train_config(self, steps: int | None = None) -> TrainConfig:
        return TrainConfig(max_steps=steps or self.max_steps or _D.max_steps, batch_size=self.train_batch_size,
                           grad_accum=self.grad_accum,
                           lr=self.lr, warmup=self.warmup, weight_decay=self.weight_decay,
                           max_grad_norm=self.max_grad_norm, seed=self.seed, checkpoint_every=self.checkpoint_every)


# layers -------------------------------------------------------------------------------------------


def resolve_layers(config: FinetuneConfig, loaded, languages: list[str]) -> tuple[list[int], str]:
    """(layer indices, where they came from) for ``--layers`` / ``--layers_json``.

    ``auto``: ``--layers_json``, else the newest ``layers`` run of this model under
    ``--output_path``, else a quick ``babelscope layers`` run on ``languages`` (kept for next time).
    """
    n = loaded.adapter.n_layers
    if config.layers != "auto":
        return lf.parse_layers(config.layers, n), f"--layers {config.layers}"
    source = config.layers_json or lf.find_layers_run(config.output_path, config.model_name)
    how = "layers.json of"
    if source is None:
        source, how = quick_layer_selection(config, languages), "quick `babelscope layers` run"
    return lf.parse_layers(lf.read_layers_json(source), n), f"{how} {source}"


def quick_layer_selection(config: FinetuneConfig, languages: list[str]):
    """No layers run yet: run the ``layers`` verb with few tokens; returns its run folder."""
    print(f"babelscope: --layers auto found no `babelscope layers` run under {config.output_path}; running a quick "
          f"one ({QUICK_LAYER_TOKENS} tokens per language). For a thorough one: babelscope layers --model "
          f"{config.model_name} --languages {','.join(languages)}", file=sys.stderr, flush=True)
    quick = layers_verb.LayersConfig(model=config.model, model_args=config.model_args, device=config.device,
                                     languages=",".join(languages), output_path=config.output_path,
                                     max_tokens=QUICK_LAYER_TOKENS, seed=config.seed,
                                     tasks=config.data if visual.is_visual(config.data) else None,
                                     task_data=config.task_data)
    quick.validate()
    result = layers_verb.run(quick)
    if result.path is None or not (result.path / "layers.json").is_file():
        raise UsageError("the quick layer selection wrote no layers.json; run `babelscope layers` yourself and "
                         "pass --layers_json <run folder>, or pass --layers 0-3.")
    return result.path


# before / after -----------------------------------------------------------------------------------


def training_languages(config: FinetuneConfig) -> tuple[str, list[str]]:
    """(pivot, training languages with the pivot first when it was not named)."""
    pivot = resolve(config.pivot)
    training = resolve_many(config.languages)
    return pivot, training if pivot in training else [pivot, *training]


def eval_languages(config: FinetuneConfig, training: list[str]) -> list[str]:
    """Training languages plus at least MIN_OTHERS others available in the evaluation corpus."""
    available = load_corpus(config.eval_source).languages
    if config.eval_languages:
        return resolve_many(config.eval_languages, available=available)
    others = [lang for lang in OTHER_LANGUAGES if lang in available and lang not in training][:MIN_OTHERS]
    return [lang for lang in training if lang in available] + others


def measure(loaded, tasks, languages, limit: int, batch_size: int, source, run=None, tag="") -> dict:
    """``{task: {language: value}}`` on held-out items: bits per character for bpc, else the task's
    headline metric. Per-item records go to ``samples/<task>_<tag>.<language>.jsonl``."""
    result = evaluate(loaded, tasks, languages, limit=limit, source=source, batch_size=batch_size, fertility=False)
    out = {}
    for task, per_lang in result.results["tasks"].items():
        metric = "bits_per_char" if task == "bpc" else result.results["task_info"][task]["headline"]
        out[task] = {lang: per_lang[lang].get(metric) for lang in languages if lang in per_lang}
        if run is not None:
            for lang, records in result.records.get(task, {}).items():
                run.write_samples(f"{task}_{tag}", lang, records)
    return out


def _measure_before(config: FinetuneConfig, loaded, tasks, languages, run) -> dict:
    """The base model's values, cached in before.json so a resumed run does not measure them again."""
    if (run.path / "before.json").exists():
        return run.read_json("before.json")
    before = measure(loaded, tasks, languages, config.eval_limit, config.batch_size, config.eval_source, run,
                     "before")
    run.write_json("before.json", before)
    return before


def stage_table(before: dict, after: dict) -> tuple[dict, dict]:
    """(``{task: {lang: {"before", "after"}}}``, ``{task: {lang: after - before}}``)."""
    table, delta = {}, {}
    for task, per_lang in before.items():
        table[task], delta[task] = {}, {}
        for lang, b in per_lang.items():
            a = after.get(task, {}).get(lang)
            table[task][lang] = {"before": b, "after": a}
            delta[task][lang] = None if a is None or b is None else round(a - b, 6)
    return table, delta


# training -----------------------------------------------------------------------------------------


def schedule(config: FinetuneConfig, docs: list, tokenizer) -> tuple[list, list, list, dict]:
    """(documents, sequences, documents per sequence, budget) sized by --epochs / --max_tokens and
    capped by --max_steps. A budget below the data trains an evenly spaced share of the schedule (so
    placement and the direction rounds keep their shares); above it, the schedule is repeated. Each
    case is said in one line and recorded."""
    chunks, starts = pack_docs(docs, tokenizer, config.max_length)
    per_step = config.train_batch_size * config.grad_accum
    if config.max_tokens:
        wanted, asked = max(1, config.max_tokens // config.max_length), f"--max_tokens {config.max_tokens}"
    else:
        wanted, asked = max(1, math.ceil(config.epochs * len(chunks))), f"--epochs {config.epochs:g}"
    target = min(wanted, config.max_steps * per_step) if config.max_steps else wanted
    budget = {"asked": asked, "data_sequences": len(chunks), "budget_sequences": target, "epochs": target / len(chunks),
              "capped_by_max_steps": target < wanted}
    if target < len(chunks):
        keep = max(1, round(len(docs) * target / len(chunks)))
        docs = subsample(docs, keep)
        chunks, starts = pack_docs(docs, tokenizer, config.max_length)
        chunks, starts = chunks[:target], starts[:target]
        note = f"an evenly spaced share of the schedule ({keep} documents)"
    elif target > len(chunks):
        reps = math.ceil(target / len(chunks))
        chunks, starts = (chunks * reps)[:target], (starts * reps)[:target]
        note = f"the schedule {target / budget['data_sequences']:.2f} times"
    else:
        note = "the schedule once"
    cap = f", capped by --max_steps {config.max_steps}" if budget["capped_by_max_steps"] else ""
    print(f"babelscope: budget {target} sequences = {steps_in(target, config.train_config())} steps ({asked}{cap}); "
          f"the data holds {budget['data_sequences']}: training on {note}.", file=sys.stderr, flush=True)
    return docs, chunks, starts, {**budget, "trains_on": note}


def _train(config: FinetuneConfig, loaded, layers: list[int], revert: list[int], chunks, run, starts=None) -> dict:
    """Train the chosen layers (full or LoRA), revert, save; the model ends merged and frozen in ``loaded``."""
    base = lf.snapshot_layers(loaded.model, loaded.adapter, revert) if revert and config.method == "full" else {}
    if config.method == "lora":
        model = lf.add_lora(loaded, layers, r=config.lora_r, alpha=config.lora_alpha, seed=config.seed)
        share = lf.trainable_share(model)
    else:
        model, share = loaded.model, lf.freeze_except(loaded, layers)
    print(f"babelscope: trainable parameters {share['trainable']:,} of {share['total']:,} "
          f"({100 * share['share']:.2f}%)", file=sys.stderr, flush=True)
    cfg = config.train_config(steps_in(len(chunks), config.train_config()))
    with Reporter(config.report_to, run.path, run.path.name, redact(config.to_dict())) as reporter:
        trained = train(model, chunks, cfg, checkpoint_dir=run.path / "checkpoints", chunk_docs=starts,
                        reporter=reporter)
    reverted = lf.revert_layers(model, loaded.adapter, revert, base) if revert else 0
    saved = None
    if config.method == "lora":
        if not config.no_save:
            saved = lf.save_lora(model, loaded.tokenizer, run.path / "adapter", config.model_name)
        loaded.model = model.merge_and_unload()
    elif not config.no_save:
        saved = lf.save_full(loaded, run.path / "model")
    for p in loaded.model.parameters():
        p.requires_grad_(False)
    return {"trainable_parameters": share, "trainable_share": share["share"], "revert_layers": revert,
            "reverted_tensors": reverted, "training": trained, "saved": str(saved) if saved else None}


def run(config: FinetuneConfig):
    if visual.is_visual(config.data):  # PLAST on a vision-language model
        from babelscope.verbs.finetune_visual import run_visual

        return run_visual(config)
    pivot, training = training_languages(config)
    tasks = [t for t in config.eval_tasks.split(",") if t]
    run = start_run(config, "finetune")
    seed_everything(config.seed)
    loaded = config.load()
    bind_model(run, loaded, config.model_spec().get("revision"))
    evl = eval_languages(config, training)
    run.languages = evl
    layers, layer_source = resolve_layers(config, loaded, evl)
    revert = lf.parse_layers(config.revert_layers, loaded.adapter.n_layers) if config.revert_layers else []
    held = held_out_items(config.eval_source, evl)
    print(f"babelscope: training layers {layers} ({layer_source}); before/after on {', '.join(evl)}",
          file=sys.stderr, flush=True)
    before = _measure_before(config, loaded, tasks, evl, run)
    docs = build_docs(config.data_specs(), training, pivot=pivot, eval_items=held, block_size=config.block_size,
                      placement=config.parallel_location, seed=config.seed, cypher_pairs=training_pairs)
    scheduled = summary(docs)
    docs, chunks, starts, budget = schedule(config, docs, loaded.tokenizer)
    outcome = _train(config, loaded, layers, revert, chunks, run, starts)
    fed = [i for step in outcome["training"].pop("documents_per_step") for i in step]
    with torch.no_grad():
        after = measure(loaded, tasks, evl, config.eval_limit, config.batch_size, config.eval_source, run, "after")
    table, delta = stage_table(before, after)
    results = {
        **before_after(table, STAGES), "delta": delta, "headline": HEADLINE if HEADLINE in table else tasks[0],
        "layers": layers, "layer_source": layer_source, "method": config.method, **outcome,
        "data": {"specs": config.data_specs(), "documents": len(docs), "sequences": len(chunks),
                 "by_kind": scheduled, "trained": seen(docs, fed), "budget": budget,
                 "held_out_items_kept_out": len(held)},
        "language_roles": {"training": training, "pivot": pivot, "evaluated": evl},
    }
    run.write_results(results)
    run.write_readme(readme(results))
    return finish("finetune", run, readme_table(results))


# README -------------------------------------------------------------------------------------------


def readme_table(results: dict) -> str:
    task = results["headline"]
    rows = [f"| {lang} | {v['before']:.4f} | {v['after']:.4f} | {results['delta'][task][lang]:+.4f} |"
            for lang, v in results["before_after"].get(task, {}).items()
            if v["after"] is not None and v["before"] is not None]
    return "\n".join([f"| language | {task} before | {task} after | delta |", "|---|---|---|---|", *rows])


def readme(results: dict) -> str:
    share, loss, data = results["trainable_parameters"], results["training"]["losses"], results["data"]
    return (
        f"# finetune\n\nLayers {results['layers']} ({results['layer_source']}), method {results['method']}; "
        f"trainable {share['trainable']:,} of {share['total']:,} parameters ({100 * share['share']:.2f}%).\n"
        f"Data: {', '.join(data['specs'])} ({data['documents']} documents, {data['sequences']} sequences); "
        f"{results['training']['steps']} steps, loss {loss[0]:.3f} -> {loss[-1]:.3f}, "
        f"{results['training']['tokens_per_second']} tokens/s.\n"
        f"Reverted layers: {results['revert_layers'] or 'none'}. Saved: {results['saved'] or 'not saved'}.\n\n"
        f"Held-out {results['headline']} before and after ({BETTER.get(results['headline'], BETTER[HEADLINE])}):"
        f"\n\n{readme_table(results)}\n"
    )


SPEC = VerbSpec(
    "finetune", "improve", "train only chosen (language-specific) layers on parallel data; bpc before/after",
    FinetuneConfig, run,
    description="PLAST-style layer-targeted finetuning with Just Go Parallel data formats; held-out bits per "
    "character (and --eval_tasks) before and after in the training and other languages. Example: babelscope "
    "finetune --layers auto --data parallel:builtin --languages eng_Latn,fra_Latn --max_steps 50",
)
