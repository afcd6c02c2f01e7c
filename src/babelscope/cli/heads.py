"""``babelscope heads`` (LAHIS head scores, specific/general heads, ablation and off-target checks)
and ``babelscope mask`` (train a soft head mask on the top heads, evaluate before/after)."""

from __future__ import annotations

import argparse

from babelscope.cli.common import Verb, add_model_args, add_output_args, add_source_args

DEFAULT_LANGUAGES = "eng_Latn,fra_Latn,deu_Latn,spa_Latn,rus_Cyrl,zho_Hans,pes_Arab,hin_Deva"
NUM_ITEMS = 64  # scored items per language (official: 1000 Wikipedia articles)
NUM_EVAL_ITEMS = 8  # held-out items per language for the ablation matrix (scored K + 2 times each)
NUM_PROMPTS = 8  # held-out prompts per language for the off-target check


def add_heads_arguments(p: argparse.ArgumentParser) -> None:
    from babelscope.interpret.lahis import MAX_LENGTH, QUANTILE
    from babelscope.interpret.lahis_validate import MAX_NEW_TOKENS

    add_model_args(p)
    p.add_argument(
        "--languages",
        "-l",
        default=DEFAULT_LANGUAGES,
        help=f"comma-separated codes (deu_Latn, de, German) or `all` (default: {DEFAULT_LANGUAGES})",
    )
    add_source_args(p)
    g = p.add_argument_group("LAHIS")
    g.add_argument(
        "--num_items",
        type=int,
        default=NUM_ITEMS,
        help=f"aligned items scored per language, from the training side of the split (default: {NUM_ITEMS})",
    )
    g.add_argument(
        "--max_length",
        type=int,
        default=MAX_LENGTH,
        help=f"tokens kept per item (official: 2048; default: {MAX_LENGTH})",
    )
    g.add_argument(
        "--quantile",
        type=float,
        default=QUANTILE,
        help=f"a language's candidate heads are those above this quantile of its scores (default: {QUANTILE})",
    )
    g.add_argument(
        "--min_languages",
        type=int,
        default=None,
        help="a head in at least this many languages' candidate lists is language-general "
        "(default: 4 from 8 languages on, else half the languages rounded up, at least 2)",
    )
    g.add_argument(
        "--reproduce_official",
        action="store_true",
        help="follow the official code: batch 1, bf16 mask with an AdamW(lr=1e-2) step after "
        "every sample (scores then depend on sample order; default: fixed mask at 1)",
    )
    g = p.add_argument_group("validation")
    g.add_argument(
        "--validate",
        action="store_true",
        help="zero each language's top heads in turn: loss matrix on held-out text with a random-heads "
        "baseline, and the off-target rate of generation before/after zeroing its specific heads",
    )
    g.add_argument(
        "--num_eval_items",
        type=int,
        default=NUM_EVAL_ITEMS,
        help=f"held-out items per language for the ablation matrix (default: {NUM_EVAL_ITEMS})",
    )
    g.add_argument(
        "--num_prompts",
        type=int,
        default=NUM_PROMPTS,
        help=f"held-out prompts per language for the off-target check; 0 skips it (default: {NUM_PROMPTS})",
    )
    g.add_argument(
        "--max_new_tokens",
        type=int,
        default=MAX_NEW_TOKENS,
        help=f"greedy tokens generated per off-target prompt (default: {MAX_NEW_TOKENS})",
    )
    add_output_args(p)


def split_items(corpus, languages: list[str] | None = None):
    """(train items, held-out items): the project-wide split of ``measure.tasks.builtin.split_for_eval``
    (a seeded hash of each item_id, so an item is on the same side in every language)."""
    from babelscope.measure.tasks.builtin import split_for_eval

    return split_for_eval(corpus)


def texts_of(items, languages, n: int) -> dict[str, list[str]]:
    """Up to ``n`` texts per language: items aligned across all ``languages`` first (comparable
    content), then the items that have this language only."""
    aligned = [it for it in items if all(it.texts.get(lang, "").strip() for lang in languages)]
    rest = [it for it in items if not all(it.texts.get(lang, "").strip() for lang in languages)]
    return {lang: [it.texts[lang] for it in aligned + rest if it.texts.get(lang, "").strip()][:n] for lang in languages}


def _load_texts(args):
    from babelscope.data.corpus import load_corpus
    from babelscope.errors import DataError

    corpus = load_corpus(args.source)
    languages = corpus.resolve_languages(args.languages)
    train, held = split_items(corpus, languages)
    empty = [lang for lang, t in texts_of(train, languages, 1).items() if not t]
    if empty:
        raise DataError(
            f"{args.source!r} has no training-side text in {', '.join(empty)}; drop it or use another --source."
        )
    return languages, train, held


def run_heads(args: argparse.Namespace) -> int:
    import time

    import torch
    from tqdm.auto import tqdm

    from babelscope import distributed
    from babelscope.cli.common import load_from_args, model_name_of, seed_everything, start_run
    from babelscope.interpret import heads_report as rep
    from babelscope.interpret.lahis import classify, lahis

    seed_everything(args.seed)
    distributed.init()
    languages, train, held = _load_texts(args)
    run = start_run(args, "heads", model_name_of(args)) if distributed.is_main() else None
    loaded = load_from_args(args)
    t0, c0 = time.time(), time.process_time()
    result = lahis(
        loaded, texts_of(train, languages, args.num_items), args.batch_size, args.max_length, args.reproduce_official
    )
    seconds = {"score": time.time() - t0, "cpu_score": time.process_time() - c0}
    if not distributed.is_main():
        return 0  # rank 0 writes the run folder and validates
    result.settings.update(model=loaded.name, source=args.source, seed=args.seed)
    result.save(run)
    classes = classify(result, args.quantile, args.min_languages)
    run.write_json("heads.json", classes)
    figs = rep.plot_language_heatmaps(result, run.path / "figures")
    figs.append(
        rep.plot_classes(
            classes, loaded.adapter.n_layers, loaded.adapter.n_heads, run.path / "figures" / "specific_general.png"
        )
    )
    results = {
        "method": "lahis",
        "model": loaded.name,
        "languages": languages,
        "n_items": result.n_items,
        "n_layers": loaded.adapter.n_layers,
        "n_heads": loaded.adapter.n_heads,
        "settings": result.settings,
        "general": classes["general"],
        "specific": classes["specific"],
        "candidates": classes["candidates"],
        "min_languages": classes["min_languages"],
        "quantile": args.quantile,
    }
    readme = [
        f"# LAHIS heads: {loaded.name}",
        "",
        f"Languages: {', '.join(languages)}; {args.num_items} items each (scored: {result.n_items}).",
        "",
        rep.classes_table(classes, result),
    ]
    if args.validate:
        readme += _validate(args, run, loaded, result, classes, languages, held, results, seconds, figs, rep)
    seconds["total"] = time.time() - t0
    seconds["cpu_total"] = time.process_time() - c0  # CPU time of all threads: / threads ~ wall on an idle machine
    results["seconds"] = seconds
    readme.append(
        f"\nTime: {seconds['total']:.0f} s wall, {seconds['cpu_total']:.0f} s CPU "
        f"({torch.get_num_threads()} threads); scoring {seconds['score']:.0f} s wall."
    )
    results["torch_threads"] = torch.get_num_threads()
    results["figures"] = [str(f.relative_to(run.path)) for f in figs]
    run.write_results(results)
    run.write_readme("\n".join(readme) + "\n")
    print(rep.classes_table(classes, result))
    if args.validate:
        print(rep.ablation_table(results["ablation"]))
        print("\nSpecific heads alone:\n" + rep.ablation_table(results["ablation_specific"]))
    tqdm.write(readme[-1].strip())
    tqdm.write(f"babelscope: wrote {run.path}")
    return 0


def _validate(args, run, loaded, result, classes, languages, held, results, seconds, figs, rep) -> list[str]:
    import time

    from tqdm.auto import tqdm

    from babelscope.interpret.lahis_validate import ablation_matrix, off_target

    t = time.time()
    eval_texts = texts_of(held, languages, args.num_eval_items)
    n = len(languages)
    lines = []
    # the top lists (as the paper ablates them), then the specific heads alone: the top lists share
    # the general heads, so only the second matrix separates a language's own heads from them
    for key, heads_of, title in (
        ("ablation", classes["candidates"], "each language's top heads"),
        ("ablation_specific", classes["specific"], "each language's specific heads alone (no general heads)"),
    ):
        heads = {lang: heads_of[lang] for lang in languages}
        base = results["ablation"]["base_loss"] if key != "ablation" else None
        steps = (n + 1) * sum(1 for h in heads.values() if h) + (n if base is None else 0)
        with tqdm(total=steps, desc=key.replace("_", " ")) as bar:
            abl = ablation_matrix(loaded, heads, eval_texts, args.seed, args.batch_size, args.max_length, bar, base)
        results[key] = abl
        run.write_json(f"{key}.json", abl)  # kept even if a later step is interrupted
        figs.append(rep.plot_ablation(abl, run.path / "figures" / f"{key}.png"))
        lines += ["", f"## Ablation of {title}: loss rise on held-out text", "", rep.ablation_table(abl)]
    seconds["ablation"] = time.time() - t
    if args.num_prompts > 0:
        t = time.time()
        prompts = texts_of(held, languages, args.num_prompts)
        with tqdm(total=2 * len(languages), desc="off-target") as bar:
            off = off_target(loaded, prompts, classes["specific"], args.batch_size, args.max_new_tokens, bar)
        seconds["off_target"] = time.time() - t
        for lang, row in off.items():
            recs = [
                dict(s, condition=c, item=i)
                for c in ("before", "after")
                if c in row
                for i, s in enumerate(row[c].pop("samples"))
            ]
            run.write_samples("off_target", lang, recs)
        results["off_target"] = off
        run.write_json("off_target.json", off)
        lines += [
            "",
            "## Off-target rate of greedy continuations (py3langid), before/after zeroing the "
            "language's specific heads",
            "",
            rep.off_target_table(off),
        ]
    return lines


def add_mask_arguments(p: argparse.ArgumentParser) -> None:
    from babelscope.improve.head_mask import EPOCHS, LR, MIN_HEADS, TOP_RATE, TRAIN_BATCH_SIZE
    from babelscope.improve.head_mask_run import EVAL_LIMIT, TRAIN_LIMIT

    add_model_args(p)
    p.add_argument(
        "--languages",
        "-l",
        required=True,
        help="languages to train and evaluate on (codes such as fra_Latn, or `all`); heads are "
        "ranked by their mean normalised LAHIS score over these languages",
    )
    g = p.add_argument_group("heads")
    g.add_argument(
        "--scores",
        default=None,
        help="a `babelscope heads` run folder (or its artifacts/lahis_scores.safetensors) covering "
        "--languages; default: score the heads now on --num_items built-in aligned items",
    )
    g.add_argument(
        "--num_items",
        type=int,
        default=NUM_ITEMS,
        help=f"items per language to score when --scores is not given (default: {NUM_ITEMS})",
    )
    g.add_argument(
        "--top_rate",
        type=float,
        default=TOP_RATE,
        help=f"share of all heads that get a trainable entry: n = max({MIN_HEADS}, int(top_rate * "
        f"layers * heads)), the official floor (20 on 32x32, 13 on 28x24, 2 on Gemma 3 270M's "
        f"18x4) (default: {TOP_RATE})",
    )
    g.add_argument("--num_heads", type=int, default=None, help="exact number of trainable heads (overrides --top_rate)")
    g.add_argument(
        "--random_heads", action="store_true", help="train on randomly chosen heads instead (the paper's control)"
    )
    g = p.add_argument_group("training")
    add_source_args(g)
    g.add_argument(
        "--tasks",
        default=None,
        help="built-in tasks (continuation, translation) whose formats build the training pairs from "
        "training items and whose held-out items are evaluated before/after (default: continuation,translation)",
    )
    g.add_argument(
        "--train_data",
        default=None,
        help="instead of --tasks: a JSONL file of question-answer pairs, one object per line with "
        "language, prompt (or question, optional context) and answer; 20%% is held out for "
        "the substring-accuracy evaluation",
    )
    g.add_argument(
        "--train_limit",
        type=int,
        default=TRAIN_LIMIT,
        help="training items per language: each gives one (prompt, answer) pair per task, or one "
        f"question-answer pair with --train_data (official: 200; default: {TRAIN_LIMIT})",
    )
    g.add_argument(
        "--eval_limit",
        "--limit",
        type=int,
        default=EVAL_LIMIT,
        help=f"held-out items per language evaluated before and after (default: {EVAL_LIMIT})",
    )
    g.add_argument("--epochs", type=int, default=EPOCHS, help=f"passes over the training pairs (default: {EPOCHS})")
    g.add_argument("--lr", type=float, default=LR, help=f"AdamW learning rate (default: {LR})")
    g.add_argument(
        "--train_batch_size",
        type=int,
        default=TRAIN_BATCH_SIZE,
        help=f"pairs per optimiser step (default: {TRAIN_BATCH_SIZE}, as in the paper)",
    )
    add_output_args(p)


def run_mask(args: argparse.Namespace) -> int:
    from babelscope.improve.head_mask_run import run

    return run(args)


VERBS = [
    Verb(
        name="heads",
        group="interpret",
        help="LAHIS attention-head importance per language; specific vs general",
        add_arguments=add_heads_arguments,
        run=run_heads,
        description="Score every (layer, query head) per language with LAHIS (one forward and backward per "
        "batch at a fixed mask of ones), split heads into language-specific and language-general, "
        "draw heatmaps, and with --validate check them by ablation and off-target generation. "
        "Runs under torchrun (items sharded, sums added).",
    ),
    Verb(
        name="mask",
        group="improve",
        help="train a soft head mask on the top LAHIS heads; accuracy before/after",
        add_arguments=add_mask_arguments,
        run=run_mask,
        description="Train a few scalars (one per top LAHIS head) on answer tokens, save them as a tiny "
        "safetensors file (load with --model_args ...,head_mask=<file>), and evaluate before and "
        "after on held-out items.",
    ),
]
