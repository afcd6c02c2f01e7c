"""One ``babelscope finetune`` run from start to finish: choose layers, measure the base on
held-out items, build the data, train, revert, save, measure again, write the run folder.

The before/after table goes to ``results.json`` under ``before_after``:
``{task: {language: {"before": x, "after": y, "delta": y - x}}}`` (``before_after`` itself is the
headline task, bits per character, so ``before_after[lang]["delta"]`` reads directly).
"""

from __future__ import annotations

import time
from pathlib import Path

from babelscope.errors import UsageError

HEADLINE = "bpc"  # the task whose table is results.json's ``before_after``
QUICK_LAYER_TOKENS = 1024  # statistics tokens per language when --layers auto must run the layer analysis


def resolve_layers(args, loaded, languages: list[str]) -> tuple[list[int], str]:
    """(layer indices, where they came from) for ``--layers`` / ``--layers_json``.

    ``auto``: ``--layers_json``, else the newest ``layers`` run of this model under
    ``--output_path``, else a quick ``babelscope layers`` run on ``languages`` (kept for next time).
    """
    from babelscope.cli.common import model_name_of
    from babelscope.improve.layer_finetune import find_layers_run, parse_layers, read_layers_json

    n = loaded.adapter.n_layers
    if args.layers != "auto":
        return parse_layers(args.layers, n), f"--layers {args.layers}"
    source = args.layers_json or find_layers_run(args.output_path, model_name_of(args))
    how = "layers.json of"
    if source is None:
        source, how = _quick_layer_selection(args, languages), "quick `babelscope layers` run"
    return parse_layers(read_layers_json(source), n), f"{how} {source}"


def _quick_layer_selection(args, languages: list[str]):
    """No layers run yet: run ``babelscope layers`` with few tokens; returns its run folder."""
    import argparse

    from babelscope.cli.common import model_name_of
    from babelscope.cli.neurons import add_layer_arguments, run_layers
    from babelscope.improve.layer_finetune import find_layers_run

    print(
        f"babelscope: --layers auto found no `babelscope layers` run under {args.output_path}; running a quick "
        f"one ({QUICK_LAYER_TOKENS} tokens per language). For a thorough one: babelscope layers "
        f"--model_args {args.model_args} --languages {','.join(languages)}",
        flush=True,
    )
    parser = argparse.ArgumentParser(prog="babelscope layers")
    add_layer_arguments(parser)
    argv = [
        "--model_args",
        args.model_args,
        "--languages",
        ",".join(languages),
        "--output_path",
        str(args.output_path),
        "--max_tokens",
        str(QUICK_LAYER_TOKENS),
        "--seed",
        str(args.seed),
    ]
    run_layers(parser.parse_args(argv + (["--device", args.device] if args.device else [])))
    found = find_layers_run(args.output_path, model_name_of(args))
    if found is None:
        raise UsageError(
            "the quick layer selection wrote no layers.json; run `babelscope layers` yourself and "
            "pass --layers_json <run folder>, or pass --layers 0-3."
        )
    return found


def eval_languages(args, training: list[str]) -> list[str]:
    """Training languages plus at least MIN_OTHERS others available in the built-in corpus."""
    from babelscope.cli.finetune import MIN_OTHERS, OTHER_LANGUAGES
    from babelscope.data.corpus import load_corpus
    from babelscope.languages import resolve_many

    available = load_corpus(args.eval_source).languages
    if args.eval_languages:
        return resolve_many(args.eval_languages, available=available)
    others = [lang for lang in OTHER_LANGUAGES if lang in available and lang not in training][:MIN_OTHERS]
    return [lang for lang in training if lang in available] + others


def held_out_items(source, languages) -> list:
    """The evaluation items of the ``--eval_source`` corpus (never trained on)."""
    from babelscope.data.corpus import load_corpus
    from babelscope.measure.tasks.builtin import split_for_eval

    _, held = split_for_eval(load_corpus(source, languages=languages))
    return list(getattr(held, "items", held))


def measure(loaded, tasks, languages, limit: int, batch_size: int, source, run=None, tag="") -> dict:
    """``{task: {language: value}}`` from the measure harness on held-out items.

    bpc reports bits per character; other tasks their headline metric (accuracy for the MC
    tasks). Per-item records go to ``samples/<task>_<tag>.<language>.jsonl``.
    """
    from babelscope.measure import evaluate

    result = evaluate(loaded, tasks, languages, limit=limit, source=source, batch_size=batch_size, fertility=False)
    out = {}
    for task, per_lang in result.results["tasks"].items():
        metric = "bits_per_char" if task == HEADLINE else result.results["task_info"][task]["headline"]
        out[task] = {lang: per_lang[lang].get(metric) for lang in languages if lang in per_lang}
        if run is not None:
            for lang, records in result.records.get(task, {}).items():
                run.write_samples(f"{task}_{tag}", lang, records)
    return out


def before_after(before: dict, after: dict) -> dict:
    """``{task: {lang: {before, after, delta}}}``."""
    table = {}
    for task, per_lang in before.items():
        table[task] = {}
        for lang, b in per_lang.items():
            a = after.get(task, {}).get(lang)
            delta = None if a is None or b is None else round(a - b, 6)
            table[task][lang] = {"before": b, "after": a, "delta": delta}
    return table


def finetune_from_args(args) -> dict:
    import torch

    from babelscope.cli.common import load_from_args, model_name_of, seed_everything, start_run
    from babelscope.data.parallel import build_docs, pack, summary
    from babelscope.improve import layer_finetune as lf
    from babelscope.improve.train_loop import TrainConfig, train
    from babelscope.languages import resolve, resolve_many

    pivot = resolve(args.pivot)
    training = resolve_many(args.languages)
    if pivot not in training:
        training = [pivot, *training]
    tasks = [t for t in args.eval_tasks.split(",") if t]
    run = start_run(args, "finetune", model_name_of(args))
    seed_everything(args.seed)
    t0 = time.perf_counter()
    loaded = load_from_args(args)
    evl = eval_languages(args, training)
    layers, layer_source = resolve_layers(args, loaded, evl)
    revert = lf.parse_layers(args.revert_layers, loaded.adapter.n_layers) if args.revert_layers else []
    held = held_out_items(args.eval_source, evl)
    print(f"babelscope: training layers {layers} ({layer_source}); before/after on {', '.join(evl)}", flush=True)

    before_path = run.path / "before.json"  # cached, so a resumed run does not measure the base again
    if before_path.exists():
        before = run.read_json("before.json")
    else:
        before = measure(loaded, tasks, evl, args.eval_limit, args.batch_size, args.eval_source, run, "before")
        run.write_json("before.json", before)

    docs = build_docs(
        args.data,
        training,
        pivot=pivot,
        eval_items=held,
        block_size=args.block_size,
        placement=args.parallel_location,
        seed=args.seed,
    )
    chunks = pack(docs, loaded.tokenizer, args.max_length)
    base = lf.snapshot_layers(loaded.model, loaded.adapter, revert) if revert and args.method == "full" else {}
    if args.method == "lora":
        model = lf.add_lora(loaded, layers, r=args.lora_r, alpha=args.lora_alpha, seed=args.seed)
        share = lf.trainable_share(model)
    else:
        model = loaded.model
        share = lf.freeze_except(loaded, layers)
    print(
        f"babelscope: trainable parameters {share['trainable']:,} of {share['total']:,} ({100 * share['share']:.2f}%)",
        flush=True,
    )
    cfg = TrainConfig(
        max_steps=args.max_steps,
        batch_size=args.train_batch_size,
        grad_accum=args.grad_accum,
        lr=args.lr,
        warmup=args.warmup,
        weight_decay=args.weight_decay,
        max_grad_norm=args.max_grad_norm,
        seed=args.seed,
        checkpoint_every=args.checkpoint_every,
    )
    trained = train(model, chunks, cfg, checkpoint_dir=run.path / "checkpoints")
    reverted = lf.revert_layers(model, loaded.adapter, revert, base) if revert else 0

    saved = None
    if args.method == "lora":
        if not args.no_save:
            saved = lf.save_lora(model, loaded.tokenizer, run.path / "adapter", model_name_of(args))
        loaded.model = model.merge_and_unload()
    elif not args.no_save:
        saved = lf.save_full(loaded, run.path / "model")
    for p in loaded.model.parameters():
        p.requires_grad_(False)
    with torch.no_grad():
        after = measure(loaded, tasks, evl, args.eval_limit, args.batch_size, args.eval_source, run, "after")
    table = before_after(before, after)
    results = {
        "before_after": table.get(HEADLINE, next(iter(table.values()), {})),
        "before_after_tasks": table,
        "layers": layers,
        "layer_source": layer_source,
        "method": args.method,
        "trainable_parameters": share,
        "trainable_share": share["share"],
        "revert_layers": revert,
        "reverted_tensors": reverted,
        "training": trained,
        "data": {
            "specs": args.data,
            "documents": len(docs),
            "sequences": len(chunks),
            "by_kind": summary(docs),
            "held_out_items_kept_out": len(held),
        },
        "languages": {"training": training, "pivot": pivot, "evaluated": evl},
        "saved": str(saved) if saved else None,
        "seconds": round(time.perf_counter() - t0, 1),
    }
    run.write_results(results)
    run.write_readme(readme(results, run.path))
    print(readme_table(results), flush=True)
    return results


def readme_table(results: dict) -> str:
    rows = [
        f"| {lang} | {v['before']:.4f} | {v['after']:.4f} | {v['delta']:+.4f} |"
        for lang, v in results["before_after"].items()
        if v["after"] is not None
    ]
    return "\n".join([f"| language | {HEADLINE} before | {HEADLINE} after | delta |", "|---|---|---|---|", *rows])


def readme(results: dict, path: Path) -> str:
    share = results["trainable_parameters"]
    loss = results["training"]["losses"]
    return (
        f"# finetune\n\nLayers {results['layers']} ({results['layer_source']}), method {results['method']}; "
        f"trainable {share['trainable']:,} of {share['total']:,} parameters ({100 * share['share']:.2f}%).\n"
        f"Data: {', '.join(results['data']['specs'])} ({results['data']['documents']} documents, "
        f"{results['data']['sequences']} sequences); {results['training']['steps']} steps, loss "
        f"{loss[0]:.3f} -> {loss[-1]:.3f}, {results['training']['tokens_per_second']} tokens/s.\n"
        f"Reverted layers: {results['revert_layers'] or 'none'}. Saved: {results['saved'] or 'not saved'}.\n\n"
        f"Held-out {HEADLINE} (lower is better) before and after:\n\n{readme_table(results)}\n"
    )
