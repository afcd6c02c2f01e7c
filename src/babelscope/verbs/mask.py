"""``babelscope mask``: pick the top LAHIS heads, train a soft mask on answer tokens, evaluate before and after
on held-out items, and write everything into the run folder (the mask as a tiny safetensors file)."""

from __future__ import annotations

import random
from contextlib import nullcontext
from dataclasses import dataclass

from babelscope.data.corpus import load_corpus
from babelscope.data.split import split_for_eval, texts_of
from babelscope.errors import DataError, UsageError
from babelscope.improve.head_mask import EPOCHS, LR, MIN_HEADS, TOP_RATE, TRAIN_BATCH_SIZE, n_trainable, train_mask
from babelscope.improve.head_mask_data import (
    DEFAULT_TASKS,
    EVAL_LIMIT,
    TRAIN_LIMIT,
    TRAINABLE_TASKS,
    combined_scores,
    macro,
    qa_accuracy,
    qa_file,
    task_pairs,
)
from babelscope.interpret.lahis import LahisResult, head_name, lahis, top_heads
from babelscope.languages import resolve_many
from babelscope.measure.engine import Engine
from babelscope.measure.evaluate import evaluate
from babelscope.models.head_mask import SoftHeadMask, masked_heads
from babelscope.schema import before_after
from babelscope.verbs import VerbSpec
from babelscope.verbs.common import bind_model, finish, seed_everything, start_run
from babelscope.verbs.config import ModelOptions, OutputOptions, option
from babelscope.verbs.heads import NUM_ITEMS, SOURCE_HELP
from babelscope.verbs.result import Result

STAGES = ["before", "after"]


@dataclass(kw_only=True)
class MaskConfig(OutputOptions, ModelOptions):
    languages: str = option(help="languages to train and evaluate on (codes such as fra_Latn, or `all`); heads "
                            "are ranked by their mean normalised LAHIS score over these languages", short="-l")
    scores: str | None = option(None, "a `babelscope heads` run folder (or its artifacts/lahis_scores.safetensors) "
                                "covering --languages; default: score the heads now on --num_items built-in "
                                "aligned items", group="heads", existing=True)
    num_items: int = option(NUM_ITEMS, "items per language to score when --scores is not given", minimum=1,
                            group="heads")
    top_rate: float = option(TOP_RATE, f"share of all heads that get a trainable entry: n = max({MIN_HEADS}, "
                             "int(top_rate * layers * heads)), the official floor (20 on 32x32, 13 on 28x24, 2 on "
                             "Gemma 3 270M's 18x4)", minimum=0.0, maximum=1.0, group="heads")
    num_heads: int | None = option(None, "exact number of trainable heads (overrides --top_rate)", minimum=1,
                                   group="heads")
    random_heads: bool = option(False, "train on randomly chosen heads instead (the paper's control)",
                                group="heads")
    source: str = option("builtin", SOURCE_HELP, group="training")
    tasks: str | None = option(None, "built-in tasks (continuation, translation) whose formats build the training "
                               "pairs from training items and whose held-out items are evaluated before/after "
                               f"(default: {DEFAULT_TASKS})", group="training")
    train_data: str | None = option(None, "instead of --tasks: a JSONL file of question-answer pairs, one object "
                                    "per line with language, prompt (or question, optional context) and answer; "
                                    "20%% is held out for the substring-accuracy evaluation", group="training",
                                    existing=True)
    train_limit: int = option(TRAIN_LIMIT, "training items per language: each gives one (prompt, answer) pair per "
                              "task, or one question-answer pair with --train_data (official: 200)", minimum=1,
                              group="training")
    eval_limit: int = option(EVAL_LIMIT, "held-out items per language evaluated before and after", short="--limit",
                             minimum=1, group="training")
    epochs: int = option(EPOCHS, "passes over the training pairs", minimum=1, group="training")
    lr: float = option(LR, "AdamW learning rate", minimum=0.0, group="training")
    train_batch_size: int = option(TRAIN_BATCH_SIZE, "pairs per optimiser step (1 as in the paper)", minimum=1,
                                   group="training")

    def validate(self) -> None:
        super().validate()
        if self.top_rate <= 0.0:
            raise UsageError(f"--top_rate must be in (0, 1], got {self.top_rate}.")
        unknown = [t for t in self.task_list() if t not in TRAINABLE_TASKS]
        if unknown and not self.train_data:
            raise UsageError(f"--tasks {','.join(unknown)}: the mask trains on the built-in "
                             f"{' and '.join(TRAINABLE_TASKS)} formats; for other data pass --train_data qa.jsonl.")

    def task_list(self) -> list[str]:
        return [t.strip() for t in (self.tasks or DEFAULT_TASKS).split(",") if t.strip()]


def choose_heads(config: MaskConfig, loaded, languages: list[str]) -> tuple[list[int], dict]:
    """(flat head ids to train, how they were chosen: selection, scores_from, combined_scores)."""
    a = loaded.adapter
    n = n_trainable(a.n_layers, a.n_heads, config.top_rate, config.num_heads)
    if config.random_heads:
        return sorted(random.Random(config.seed).sample(range(a.n_layers * a.n_heads), n)), {"selection": "random"}
    if config.scores:
        result = LahisResult.load(config.scores)
    else:
        train, _ = split_for_eval(load_corpus(config.source))
        result = lahis(loaded, texts_of(train, languages, config.num_items), config.batch_size)
    if result.scores.shape[:2] != (a.n_layers, a.n_heads):
        raise UsageError(f"--scores has {tuple(result.scores.shape[:2])} layers x heads; the model has "
                         f"{a.n_layers} x {a.n_heads}. Score this model with `babelscope heads`.")
    combined = combined_scores(result, languages)
    return top_heads(combined, n), {"selection": "lahis", "scores_from": config.scores or "computed",
                                    "combined_scores": combined}


def training_data(config: MaskConfig, languages: list[str]) -> tuple[list, dict | None]:
    """(training (prompt, answer) pairs over all languages, held-out QA pairs per language or None)."""
    if config.train_data:
        train, held = qa_file(config.train_data, languages, config.seed)
        pairs = [p for lang in languages for p in train[lang][:config.train_limit]]
    else:  # task pairs are already limited per item
        train, held = task_pairs(languages, config.source, config.train_limit, config.task_list()), None
        pairs = [p for lang in languages for p in train[lang]]
    if not pairs:
        raise DataError("no training pairs for these languages; check --languages, --source or --train_data.")
    return pairs, held


def evaluate_mask(config: MaskConfig, loaded, languages, held_qa, mask=None) -> tuple[dict, dict]:
    """({task: {language: headline metric}}, the full measure results) with ``mask`` applied (scoped) or not."""
    with masked_heads(loaded, mask.full().detach().to(loaded.device)) if mask is not None else nullcontext():
        if held_qa is not None:
            table = {"qa_substring": qa_accuracy(Engine(loaded, batch_size=config.batch_size, progress=False),
                                                 held_qa)}
            return table, {"tasks": table}
        res = evaluate(loaded, ",".join(config.task_list()), languages, limit=config.eval_limit,
                       source=config.source, batch_size=config.batch_size, progress=False, fertility=False).results
    table = {task: {lang: m[res["headline"][task]["metric"]] for lang, m in per.items()}
             for task, per in res["tasks"].items()}
    return table, res


def run(config: MaskConfig) -> Result:
    seed_everything(config.seed)
    languages = resolve_many(config.languages)
    pairs, held = training_data(config, languages)  # bad data stops here, before any folder or model
    run = start_run(config, "mask")
    run.languages = languages
    loaded = config.load()
    bind_model(run, loaded, config.model_spec().get("revision"))
    a = loaded.adapter
    heads, how = choose_heads(config, loaded, languages)
    before, before_full = evaluate_mask(config, loaded, languages, held)
    run.write_json("eval_before.json", before_full)
    mask = SoftHeadMask(a.n_layers, a.n_heads, heads)
    losses = train_mask(loaded, mask, pairs, config.epochs, config.lr, config.train_batch_size, config.seed)
    after, after_full = evaluate_mask(config, loaded, languages, held, mask)
    run.write_json("eval_after.json", after_full)
    mask.save(run.path / "head_mask.safetensors", {"model": loaded.name, "languages": languages, "epochs":
                                                   config.epochs, "lr": config.lr, "selection": how["selection"],
                                                   "train_pairs": len(pairs)})
    if "combined_scores" in how:
        run.save_tensors("artifacts/combined_scores.safetensors", {"scores": how.pop("combined_scores")},
                         {"axes": ["layer", "head"], "languages": languages})
    table = {task: {lang: {"before": v, "after": after[task][lang]} for lang, v in per.items()}
             for task, per in before.items()}
    payload = {"method": "lahis_soft_head_mask", "n_trainable_parameters": sum(p.numel() for p in mask.parameters()),
               "heads": [head_name(h, a.n_heads) for h in heads], "values": mask.values.detach().tolist(),
               "before": before, "after": after, "before_macro": macro(before), "after_macro": macro(after),
               **before_after(table, STAGES), "train_pairs": len(pairs), "loss_first": losses[0],
               "loss_last": losses[-1], "losses": losses, **how}
    run.write_results(payload)
    lines = _readme(config, loaded.name, payload, run.path / "head_mask.safetensors")
    run.write_readme("\n".join(lines) + "\n")
    return finish("mask", run, "\n".join(lines), mask=mask)


def _readme(config: MaskConfig, model_name: str, payload: dict, mask_path) -> list[str]:
    before, after = payload["before"], payload["after"]
    lines = [f"# Soft head mask: {model_name}", "",
             f"{payload['n_trainable_parameters']} trainable parameters on heads {', '.join(payload['heads'])}; "
             f"values after training: {', '.join(f'{v:.3f}' for v in payload['values'])}.",
             f"Trained on {payload['train_pairs']} answer-token pairs, {config.epochs} epochs, lr {config.lr}.", "",
             "| task | language | before | after |", "|---|---|---|---|"]
    for task in before:
        for lang in before[task]:
            lines.append(f"| {task} | {lang} | {before[task][lang]:.3f} | {after[task][lang]:.3f} |")
        lines.append(f"| {task} | macro | {payload['before_macro'][task]:.3f} | {payload['after_macro'][task]:.3f} |")
    return [*lines, "", f"Use it: `--model_args pretrained={model_name},head_mask={mask_path}`"]


SPEC = VerbSpec(
    "mask", "improve", "train a soft head mask on the top LAHIS heads; accuracy before/after", MaskConfig, run,
    description="Train a few scalars (one per top LAHIS head) on answer tokens, save them as a tiny safetensors "
    "file (load with --model_args ...,head_mask=<file>), and evaluate before and after on held-out items.",
)
