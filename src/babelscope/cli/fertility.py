"""``babelscope fertility``: tokens per word/character, bytes per token and parity vs English."""

from __future__ import annotations

import argparse

from babelscope.cli.common import (
    Verb,
    add_language_args,
    add_limit_args,
    add_output_args,
    add_source_args,
    start_run,
)


def add_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument("--model_args", "-a", default="pretrained=default",
                   help="the model whose tokenizer is measured (only the tokenizer is loaded; "
                        "default: pretrained=default)")
    p.add_argument("--tokenizers", default=None,
                   help="comma-separated tokenizers side by side instead of the model's: default (Gemma 3), "
                        "smollm2-135m, tekken (Mistral, from mistral_common), a folder or a hub id")
    add_language_args(p, default="all")
    add_source_args(p)
    add_limit_args(p)
    add_output_args(p)


def run(args: argparse.Namespace) -> int:
    from rich.console import Console

    from babelscope.data.corpus import load_corpus
    from babelscope.languages import resolve_many
    from babelscope.measure.fertility import fertility, format_table
    from babelscope.models.load import parse_model_args

    model = str(parse_model_args(args.model_args).get("pretrained", "default"))
    tokenizers = args.tokenizers or model
    resolve_many(args.languages)  # a typo fails here, before anything is loaded
    corpus = load_corpus(args.source)
    languages = resolve_many(args.languages, available=corpus.languages)  # fails before the run starts
    run_folder = start_run(args, "fertility", model if not args.tokenizers else "tokenizers")
    result = fertility(tokenizers, languages, corpus, args.limit)
    run_folder.write_results({"verb": "fertility", "source": args.source, "tokenizers": list(result),
                              "fertility": result})
    Console().print(format_table(result))
    names = ", ".join(result)
    run_folder.write_readme(f"# fertility\n\nTokenizers: {names}. Source: {args.source}. "
                            f"Languages: {len(next(iter(result.values())))}.\n\nFigures per language in "
                            "results.json: fertility (tokens per word, or per character for scripts without "
                            "spaces), tokens_per_char, bytes_per_token, parity (tokens / English tokens on the "
                            "same items).\n")
    print(f"babelscope: wrote {run_folder.path / 'results.json'}")
    return 0


VERBS = [Verb("fertility", "measure", "tokens per word/character and parity vs English, per language and tokenizer",
              add_arguments, run,
              description="Tokenizer fertility on the aligned corpus: tokens per word (per character for scripts "
                          "without spaces), tokens per character, bytes per token, and parity against English "
                          "on the same items. Loads tokenizers only, never weights.\n\nExample:\n"
                          "  babelscope fertility --tokenizers default,smollm2-135m,tekken --languages all")]
