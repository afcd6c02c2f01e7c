"""``babelscope neurons`` (LAPE / ternary language neurons), ``compare-neurons`` and ``layers``."""

from __future__ import annotations

import argparse

from babelscope.cli.common import Verb, add_language_args, add_model_args, add_output_args, add_source_args


def _add_text_args(p: argparse.ArgumentParser) -> None:
    from babelscope.interpret.neurons import MAX_TOKENS

    g = p.add_argument_group("text")
    add_source_args(g)
    g.add_argument(
        "--max_tokens",
        type=int,
        default=MAX_TOKENS,
        help=f"statistics tokens per language, from the training part of the aligned items (default: {MAX_TOKENS})",
    )
    g.add_argument(
        "--count",
        choices=("all", "answer"),
        default="all",
        help="tokens whose activations count: all text tokens, or only answer tokens the model "
        "generates greedily after the first tokens of each text (as the language-neurons paper "
        "counts generated answers; slower) (default: all)",
    )
    g.add_argument("--threads", type=int, default=None, help="torch CPU threads (default: torch's choice)")


def add_neuron_arguments(p: argparse.ArgumentParser) -> None:
    from babelscope.interpret.lape import BAR_RATE, FILTER_RATE, TOP_RATE
    from babelscope.interpret.neurons import EVAL_TOKENS

    add_model_args(p)
    add_language_args(p)
    _add_text_args(p)
    g = p.add_argument_group("method")
    g.add_argument(
        "--method",
        choices=("ternary", "lape"),
        default="ternary",
        help="ternary: specific / related / general (Zhang et al. 2025, lambda swept); "
        "lape: lowest-entropy neurons above the 95th-percentile filter (Tang et al. 2024) "
        "(default: ternary)",
    )
    g.add_argument(
        "--top_rate", type=float, default=TOP_RATE, help=f"share of all MLP neurons selected (default: {TOP_RATE})"
    )
    g.add_argument(
        "--bar_rate",
        type=float,
        default=BAR_RATE,
        help=f"quantile of all activation probabilities a neuron must exceed to belong to a language "
        f"(default: {BAR_RATE})",
    )
    g.add_argument(
        "--filter_rate",
        type=float,
        default=FILTER_RATE,
        help=f"LAPE only: quantile a neuron must exceed in some language to be eligible (default: {FILTER_RATE})",
    )
    g.add_argument(
        "--lambda",
        dest="lam",
        type=float,
        default=None,
        help="ternary only: fixed lambda instead of the binary search on [0, 0.2]",
    )
    v = p.add_argument_group("checks")
    v.add_argument(
        "--validate",
        action="store_true",
        help="deactivation check: zero each language's neurons (and matched random ones) and measure "
        "every language's loss on held-out aligned text",
    )
    v.add_argument(
        "--eval_tokens",
        type=int,
        default=EVAL_TOKENS,
        help=f"held-out tokens per language for --validate (default: {EVAL_TOKENS})",
    )
    v.add_argument(
        "--compare",
        default=None,
        metavar="MODEL_ARGS",
        help="a second model (same --model_args syntax, e.g. pretrained=my-finetuned-dir): run the "
        "same analysis on it and compare the neuron sets",
    )
    add_output_args(p)


def _setup(args):
    import torch

    from babelscope.data.corpus import load_corpus

    if args.threads:
        torch.set_num_threads(args.threads)
    corpus = load_corpus(args.source)
    languages = corpus.resolve_languages(args.languages)
    return corpus, languages


def _analyse(args, model_args: str, corpus, languages, verb: str):
    """Statistics (resumed from the run folder when present), selection, optional check; files."""
    from pathlib import Path

    from babelscope.cli.common import start_run
    from babelscope.distributed import gather_objects, is_main
    from babelscope.interpret import neurons as nr
    from babelscope.models.load import load_from_args, parse_model_args
    from babelscope.models.reducers import NeuronReducer

    name = str(parse_model_args(model_args).get("pretrained", "default"))
    run = start_run(args, verb, name) if is_main() else None
    loaded = load_from_args(model_args, device=args.device)
    train, held = nr.split_texts(corpus, languages)
    stats_path = Path(gather_objects([str(run.path / nr.STATS_FILE) if run else None])[0])  # rank 0's path
    stats = NeuronReducer.load(stats_path) if stats_path.exists() else None  # resume an interrupted run
    if stats is None or stats.token_selection != args.count:
        stats = nr.collect_stats(loaded, train, args.max_tokens, args.batch_size, count=args.count)
        if run:
            stats_path.parent.mkdir(parents=True, exist_ok=True)
            stats.save(stats_path, {"model": name, "source": args.source})
    result = nr.from_stats(
        stats,
        name,
        args.method,
        top_rate=args.top_rate,
        bar_rate=args.bar_rate,
        **({"filter_rate": args.filter_rate} if args.method == "lape" else {"lam": args.lam}),
    )
    if args.validate:
        result.validation = nr.validate(loaded, result, held, args.eval_tokens, args.batch_size, args.seed)
    if run:
        result.save(run)
        run.write_results({"verb": verb, "source": args.source, **result.summary()})
        run.write_readme(_readme(result))
    return run, result


def _readme(result) -> str:
    from babelscope.interpret.deactivation import matrix_text

    s = result.summary()
    lines = [
        f"# neurons: {result.model}",
        "",
        f"Method **{result.method}**; languages {', '.join(result.languages)}; selection {s['selection']}.",
        "",
        "Files: `neurons.json` (per language: layer -> neuron ids), `layer_counts.json` (per-layer counts "
        "of specific / related / general neurons and the phases), `neurons_per_layer.png`, "
        "`artifacts/neurons.safetensors` (class map, memberships, probabilities), "
        "`artifacts/neuron_stats.safetensors` (raw counts).",
        "",
        f"Class totals: {s['class_totals']}. Neurons per language: {s['neurons_per_language']}.",
        "",
        "Phases (heuristic): " + "; ".join(f"{p['phase']} {p['layers'][0]}-{p['layers'][1]}" for p in result.phases),
    ]
    if result.validation:
        v = result.validation
        lines += [
            "",
            "## Deactivation check (loss increase, nats/token)",
            "",
            "Rows: language whose neurons are switched off; columns: language evaluated. Random sets have "
            "the same number of neurons per layer.",
            "",
            matrix_text(v),
            "",
            "| language | neurons | own increase | own / mean other languages | own / mean other neurons |",
            "|---|---|---|---|---|",
        ]
        for lang, r in v["per_language"].items():
            lines.append(
                f"| {lang} | {r['neurons']} | {r['own_increase']:+.4f} | "
                f"{_fmt(r['own_vs_other_languages'])} | {_fmt(r['own_vs_other_neurons'])} |"
            )
    return "\n".join(lines) + "\n"


def _fmt(x) -> str:
    return "n/a" if x is None else f"{x:.2f}"


def _print_summary(run, result) -> None:
    s = result.summary()
    print(f"babelscope: {result.method} neurons per language: {s['neurons_per_language']}")
    print(f"babelscope: class totals {s['class_totals']}")
    if result.validation:
        for lang, r in result.validation["per_language"].items():
            print(
                f"  {lang}: own +{r['own_increase']:.4f} nats, own/other-languages "
                f"{_fmt(r['own_vs_other_languages'])}, own/other-neurons {_fmt(r['own_vs_other_neurons'])}, "
                f"own/random {_fmt(r['own_vs_random'])}"
            )
    if run:
        print(f"babelscope: wrote {run.path}")


def run_neurons(args: argparse.Namespace) -> int:
    from babelscope.distributed import is_main

    corpus, languages = _setup(args)
    run, result = _analyse(args, args.model_args, corpus, languages, "neurons")
    if is_main():
        _print_summary(run, result)
    if args.compare:
        other_run, other = _analyse(args, args.compare, corpus, languages, "neurons")
        if is_main():
            from babelscope.interpret.compare import compare_results

            cmp = compare_results(result, other)
            run.write_json("compare.json", {"other_run": str(other_run.path), **cmp})
            print(f"babelscope: comparison with {other.model} in {run.path / 'compare.json'}")
    return 0


def add_compare_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument("run_a", help="run folder of `babelscope neurons` (e.g. the base model)")
    p.add_argument("run_b", help="run folder of `babelscope neurons` (e.g. the aligned or finetuned model)")
    add_output_args(p)


def run_compare(args: argparse.Namespace) -> int:
    from babelscope.cli.common import start_run
    from babelscope.interpret.compare import compare_runs, format_compare

    cmp = compare_runs(args.run_a, args.run_b)
    run = start_run(args, "compare-neurons", f"{cmp['model_a']}-vs-{cmp['model_b']}")
    run.write_results({"verb": "compare-neurons", **cmp})
    text = format_compare(cmp)
    run.write_readme(text)
    print(text)
    return 0


def add_layer_arguments(p: argparse.ArgumentParser) -> None:
    from babelscope.interpret.layers import BUDGET, LENS_POSITIONS, MAX_DEPTH

    add_model_args(p)
    add_language_args(p, default="eng_Latn,fra_Latn,deu_Latn,spa_Latn,rus_Cyrl,zho_Hans,hin_Deva")
    _add_text_args(p)
    g = p.add_argument_group("selection")
    g.add_argument(
        "--neurons_run",
        default=None,
        help="reuse the neuron classes of a `babelscope neurons` run folder (same model) instead of "
        "computing ternary neurons here",
    )
    g.add_argument(
        "--budget",
        type=float,
        default=BUDGET,
        help=f"share of decoder layers to finetune (PLAST tunes ~14%% of parameters; default: {BUDGET})",
    )
    g.add_argument(
        "--max_depth",
        type=float,
        default=MAX_DEPTH,
        help=f"recommend only layers in this leading share of the stack (PLAST: shallow layers; "
        f"1.0 = anywhere; default: {MAX_DEPTH})",
    )
    g.add_argument(
        "--lens_positions",
        type=int,
        default=LENS_POSITIONS,
        help=f"positions per language for the logit lens (default: {LENS_POSITIONS})",
    )
    add_output_args(p)


def run_layers(args: argparse.Namespace) -> int:
    from babelscope.interpret.layers import run_layers_verb

    corpus, languages = _setup(args)
    return run_layers_verb(args, corpus, languages)


_NEURONS_HELP = """Find language neurons in the MLPs and check them.

Counts, per MLP neuron and language, the tokens with a positive gate output on the training part of
the aligned corpus (decoder body only, no logits), then selects neurons with the ternary method
(specific / related / general) or LAPE. Writes neurons.json, layer_counts.json, the per-layer plot
and the raw statistics. --validate zeroes each language's neurons on the down_proj input and
measures every language's loss on held-out aligned text, beside matched random neurons.

Example:
  babelscope neurons --model_args pretrained=default --method ternary \\
      --languages eng_Latn,fra_Latn,deu_Latn,spa_Latn,rus_Cyrl,zho_Hans,pes_Arab,hin_Deva --validate
  torchrun --nproc_per_node 2 -m babelscope neurons --languages eng_Latn,fra_Latn   # shards batches"""

VERBS = [
    Verb(
        "neurons",
        "interpret",
        "language neurons (ternary specific/related/general, or LAPE) and a deactivation check",
        add_neuron_arguments,
        run_neurons,
        description=_NEURONS_HELP,
    ),
    Verb(
        "compare-neurons",
        "interpret",
        "compare the language neurons of two `neurons` runs (Jaccard, class moves)",
        add_compare_arguments,
        run_compare,
        description="Per-language Jaccard overlap of neuron sets, transitions between classes (e.g. specific -> "
        "general) and per-layer shifts, for two runs on the same architecture (a base model and its "
        "aligned or finetuned version).\n\nExample:\n  babelscope compare-neurons runs/base/neurons-X "
        "runs/tuned/neurons-Y",
    ),
    Verb(
        "layers",
        "interpret",
        "rank layers by language specificity, logit lens, recommend PLAST layers (layers.json)",
        add_layer_arguments,
        run_layers,
        description="Ranks decoder layers by language specificity (share of language neurons, activation "
        "difference between each language and English on parallel text), adds a logit-lens view "
        "(the layer where the next-token guess turns into the target language) and writes layers.json "
        "with the recommended shallow layers to finetune (PLAST) and bottom/top counts for layer "
        "swapping.\n\nExample:\n  babelscope layers --model_args pretrained=default "
        "--languages eng_Latn,fra_Latn,rus_Cyrl,hin_Deva",
    ),
]
