"""``babelscope mask``: pick the top LAHIS heads, train a soft mask on answer tokens, evaluate before and after
on held-out items, and write everything into the run folder (the mask as a tiny safetensors file).

Two modes: one mask shared by all languages (default: heads ranked by the mean normalised score over the
languages, all languages' pairs pooled), or ``per_language`` as the LAHIS paper trains them
(``Linuxin-xxx/LAHIS:src/lan_head_mask.py``): one mask per language on that language's own top-n raw scores and
its own pairs, each language evaluated after training with its own mask (``head_mask_<language>.safetensors``)."""

from __future__ import annotations

import random
from contextlib import nullcontext
from dataclasses import dataclass
from typing import ClassVar

from babelscope.data.corpus import load_corpus
from babelscope.data.split import split_for_eval, texts_of
from babelscope.errors import DataError, UsageError
from babelscope.improve.head_mask import EPOCHS, LR, MIN_HEADS, TOP_RATE, TRAIN_BATCH_SIZE, n_trainable, train_mask
from babelscope.improve.head_mask_data import (
    DEFAULT_TASKS,
    EVAL_LIMIT,
    QA_TEMPLATES,
    TRAIN_LIMIT,
    TRAINABLE_TASKS,
    combined_scores,
    macro,
    qa_accuracy,
    qa_file,
    task_pairs,
)
from babelscope.improve.report_to import HELP as REPORT_TO_HELP
from babelscope.improve.report_to import Reporter, parse_report_to
from babelscope.interpret.lahis import LahisResult, head_name, lahis, top_heads
from babelscope.languages import resolve_many
from babelscope.measure.engine import Engine
from babelscope.measure.evaluate import evaluate
from babelscope.models.head_mask import SoftHeadMask, masked_heads
from babelscope.runs import redact
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
    per_language: bool = option(False, "train one mask per language on that language's own top-n raw LAHIS heads "
                                "and its own training pairs, and evaluate each language with its own mask (the "
                                "paper); default: one mask shared by all languages, on the heads with the best mean "
                                "normalised score, trained on all languages' pairs", group="heads")
    source: str = option("builtin", SOURCE_HELP, group="training")
    tasks: str | None = option(None, "built-in tasks (continuation, translation) whose formats build the training "
                               "pairs from training items and whose held-out items are evaluated before/after "
                               f"(default: {DEFAULT_TASKS})", group="training")
    train_data: str | None = option(None, "instead of --tasks: a JSONL file of question-answer pairs, one object "
                                    "per line with language, prompt (or question, optional context) and answer; "
                                    "20%% is held out for the substring-accuracy evaluation", group="training",
                                    existing=True)
    qa_template: str = option("plain", "prompt of a --train_data row without its own prompt: plain "
                              "(context\\nquestion\\n) or lahis (the paper's per-language XQuAD template; English "
                              "for languages it has none for; the answer follows it directly, dots stripped)",
                              choices=QA_TEMPLATES, group="training")
    train_pool: int | None = option(None, "with --train_data: each language's first N rows are the training pool "
                                    "(--train_limit of them drawn with the seed) and the rest is held out (the "
                                    "paper: 390, i.e. XQuAD train[:390] / train[390:1190]); default: 20%% held out "
                                    "by a seeded hash", minimum=1, group="training")
    train_limit: int = option(TRAIN_LIMIT, "training items per language: each gives one (prompt, answer) pair per "
                              "task, or one question-answer pair with --train_data (official: 200)", minimum=1,
                              group="training")
    eval_limit: int = option(EVAL_LIMIT, "held-out items per language evaluated before and after", short="--limit",
                             minimum=1, group="training")
    epochs: int = option(EPOCHS, "passes over the training pairs", minimum=1, group="training")
    lr: float = option(LR, "AdamW learning rate", minimum=0.0, group="training")
    train_batch_size: int = option(TRAIN_BATCH_SIZE, "pairs per optimiser step (1 as in the paper)", minimum=1,
                                   group="training")
    report_to: str = option("none", REPORT_TO_HELP, group="training")
    RERUN_IN_PLACE: ClassVar[tuple] = ("report_to",)  # where the losses are also sent does not change results

    def validate(self) -> None:
        super().validate()
        parse_report_to(self.report_to)
        if self.top_rate <= 0.0:
            raise UsageError(f"--top_rate must be in (0, 1], got {self.top_rate}.")
        unknown = [t for t in self.task_list() if t not in TRAINABLE_TASKS]
        if unknown and not self.train_data:
            raise UsageError(f"--tasks {','.join(unknown)}: the mask trains on the built-in "
                             f"{' and '.join(TRAINABLE_TASKS)} formats; for other data pass --train_data qa.jsonl.")

    def task_list(self) -> list[str]:
        return [t.strip() for t in (self.tasks or DEFAULT_TASKS).split(",") if t.strip()]


def choose_heads(config: MaskConfig, loaded, languages: list[str]) -> tuple[list[int] | dict, dict]:
    """(flat head ids to train, or {language: ids} with per_language; how they were chosen: selection,
    scores_from, combined_scores)."""
    a = loaded.adapter
    n = n_trainable(a.n_layers, a.n_heads, config.top_rate, config.num_heads)
    if config.random_heads:
        if config.per_language:
            return {lang: sorted(random.Random(f"{config.seed}:{lang}").sample(range(a.n_layers * a.n_heads), n))
                    for lang in languages}, {"selection": "random"}
        return sorted(random.Random(config.seed).sample(range(a.n_layers * a.n_heads), n)), {"selection": "random"}
    if config.scores:
        result = LahisResult.load(config.scores)
    else:
        train, _ = split_for_eval(load_corpus(config.source))
        result = lahis(loaded, texts_of(train, languages, config.num_items), config.batch_size)
    if result.scores.shape[:2] != (a.n_layers, a.n_heads):
        raise UsageError(f"--scores has {tuple(result.scores.shape[:2])} layers x heads; the model has "
                         f"{a.n_layers} x {a.n_heads}. Score this model with `babelscope heads`.")
    combined = combined_scores(result, languages)  # also checks that every language is scored
    how = {"selection": "lahis", "scores_from": config.scores or "computed"}
    if config.per_language:  # each language's own raw scores (official torch.topk of its matrix)
        return {lang: top_heads(result.of(lang), n) for lang in languages}, how
    return top_heads(combined, n), {**how, "combined_scores": combined}


def training_data(config: MaskConfig, languages: list[str]) -> tuple[dict, dict | None]:
    """(training (prompt, answer) pairs per language, held-out QA pairs per language or None)."""
    if config.train_data:
        train, held = qa_file(config.train_data, languages, config.seed, config.qa_template, config.train_pool)
        pairs = {lang: train[lang][:config.train_limit] for lang in languages}
    elif config.per_language:  # each language alone, as it is evaluated (e.g. its translation source)
        pairs = {lang: task_pairs([lang], config.source, config.train_limit, config.task_list())[lang]
                 for lang in languages}
        held = None
    else:  # task pairs are already limited per item
        pairs, held = task_pairs(languages, config.source, config.train_limit, config.task_list()), None
    empty = [lang for lang in languages if not pairs[lang]]
    if len(empty) == len(languages) or (config.per_language and empty):
        raise DataError(f"no training pairs for {', '.join(empty)}; check --languages, --source or --train_data.")
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
    heads, how = choose_heads(config, loaded, languages)
    with Reporter(config.report_to, run.path, run.path.name, redact(config.to_dict())) as reporter:
        if config.per_language:
            payload, masks = _per_language(config, run, loaded, languages, heads, pairs, held, how, reporter)
            extras = {"masks": masks}
        else:
            payload, mask = _shared(config, run, loaded, languages, heads, pairs, held, how, reporter)
            extras = {"mask": mask}
    run.write_results(payload)
    lines = _readme(config, loaded.name, payload)
    run.write_readme("\n".join(lines) + "\n")
    return finish("mask", run, "\n".join(lines), **extras)


def _shared(config: MaskConfig, run, loaded, languages, heads, pairs, held, how, reporter=None
            ) -> tuple[dict, SoftHeadMask]:
    """One mask for all languages, trained on all their pairs: (payload, mask)."""
    a = loaded.adapter
    pairs = [p for lang in languages for p in pairs[lang]]
    before, before_full = evaluate_mask(config, loaded, languages, held)
    run.write_json("eval_before.json", before_full)
    mask = SoftHeadMask(a.n_layers, a.n_heads, heads)
    losses = train_mask(loaded, mask, pairs, config.epochs, config.lr, config.train_batch_size, config.seed,
                        reporter=reporter)
    after, after_full = evaluate_mask(config, loaded, languages, held, mask)
    run.write_json("eval_after.json", after_full)
    mask.save(run.path / "head_mask.safetensors", {"model": loaded.name, "languages": languages, "epochs":
                                                   config.epochs, "lr": config.lr, "selection": how["selection"],
                                                   "train_pairs": len(pairs)})
    if "combined_scores" in how:
        run.save_tensors("artifacts/combined_scores.safetensors", {"scores": how.pop("combined_scores")},
                         {"axes": ["layer", "head"], "languages": languages})
    payload = {"method": "lahis_soft_head_mask", "mode": "shared",
               "n_trainable_parameters": sum(p.numel() for p in mask.parameters()),
               "heads": [head_name(h, a.n_heads) for h in heads], "values": mask.values.detach().tolist(),
               **_tables(before, after), "train_pairs": len(pairs), "loss_first": losses[0],
               "loss_last": losses[-1], "losses": losses, "mask_files": {"all": "head_mask.safetensors"}, **how}
    return payload, mask


def _per_language(config: MaskConfig, run, loaded, languages, heads, pairs, held, how, reporter=None
                  ) -> tuple[dict, dict]:
    """One mask per language on its own heads and pairs; each language evaluated with its own mask."""
    a = loaded.adapter
    before, after, full, masks, losses, files = {}, {}, {"before": {}, "after": {}}, {}, {}, {}
    for lang in languages:
        held_lang = {lang: held[lang]} if held is not None else None
        b, full["before"][lang] = evaluate_mask(config, loaded, [lang], held_lang)
        mask = SoftHeadMask(a.n_layers, a.n_heads, heads[lang])
        losses[lang] = train_mask(loaded, mask, pairs[lang], config.epochs, config.lr, config.train_batch_size,
                                  config.seed, reporter=reporter, tag=f"train/{lang}")
        after_lang, full["after"][lang] = evaluate_mask(config, loaded, [lang], held_lang, mask)
        for table, part in ((before, b), (after, after_lang)):
            for task, per in part.items():
                table.setdefault(task, {}).update(per)
        files[lang] = f"head_mask_{lang}.safetensors"
        mask.save(run.path / files[lang], {"model": loaded.name, "languages": [lang], "epochs": config.epochs,
                                           "lr": config.lr, "selection": how["selection"],
                                           "train_pairs": len(pairs[lang])})
        masks[lang] = mask
    run.write_json("eval_before.json", full["before"])
    run.write_json("eval_after.json", full["after"])
    payload = {"method": "lahis_soft_head_mask", "mode": "per_language",
               "n_trainable_parameters": sum(p.numel() for m in masks.values() for p in m.parameters()),
               "heads": {lang: [head_name(h, a.n_heads) for h in heads[lang]] for lang in languages},
               "values": {lang: m.values.detach().tolist() for lang, m in masks.items()},
               **_tables(before, after), "train_pairs": {lang: len(pairs[lang]) for lang in languages},
               "loss_first": {lang: v[0] for lang, v in losses.items()},
               "loss_last": {lang: v[-1] for lang, v in losses.items()}, "losses": losses, "mask_files": files, **how}
    return payload, masks


def _tables(before: dict, after: dict) -> dict:
    table = {task: {lang: {"before": v, "after": after[task][lang]} for lang, v in per.items()}
             for task, per in before.items()}
    return {"before": before, "after": after, "before_macro": macro(before), "after_macro": macro(after),
            **before_after(table, STAGES)}


def _readme(config: MaskConfig, model_name: str, payload: dict) -> list[str]:
    before, after = payload["before"], payload["after"]
    if payload["mode"] == "per_language":
        lines = [f"# Soft head masks, one per language: {model_name}", "",
                 f"{payload['n_trainable_parameters']} trainable parameters in all; each language's mask is "
                 f"trained on its own top LAHIS heads and its own pairs ({config.epochs} epochs, lr {config.lr}) "
                 "and evaluated with its own mask.", "", "| language | heads | mask values | training pairs |",
                 "|---|---|---|---|"]
        for lang, heads in payload["heads"].items():
            lines.append(f"| {lang} | {', '.join(heads)} | {', '.join(f'{v:.3f}' for v in payload['values'][lang])} "
                         f"| {payload['train_pairs'][lang]} |")
        lines.append("")
    else:
        lines = [f"# Soft head mask: {model_name}", "",
                 f"{payload['n_trainable_parameters']} trainable parameters on heads {', '.join(payload['heads'])}; "
                 f"values after training: {', '.join(f'{v:.3f}' for v in payload['values'])}.",
                 f"Trained on {payload['train_pairs']} answer-token pairs, {config.epochs} epochs, lr {config.lr}.",
                 ""]
    lines += ["| task | language | before | after |", "|---|---|---|---|"]
    for task in before:
        for lang in before[task]:
            lines.append(f"| {task} | {lang} | {before[task][lang]:.3f} | {after[task][lang]:.3f} |")
        lines.append(f"| {task} | macro | {payload['before_macro'][task]:.3f} | {payload['after_macro'][task]:.3f} |")
    files = ", ".join(str(f) for f in payload["mask_files"].values())
    return [*lines, "", f"Use it: `--model_args pretrained={model_name},head_mask=<run folder>/<file>` ({files})"]


SPEC = VerbSpec(
    "mask", "improve", "train a soft head mask on the top LAHIS heads; accuracy before/after", MaskConfig, run,
    description="Train a few scalars (one per top LAHIS head) on answer tokens, save them as a tiny safetensors "
    "file (load with --model_args ...,head_mask=<file>), and evaluate before and after on held-out items.",
)
