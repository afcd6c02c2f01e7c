"""``babelscope fertility``: tokens per word/character, bytes per token and parity vs English.

Only tokenizers are loaded, never weights::

    import babelscope as bs
    r = bs.fertility(tokenizers="default,tekken", languages="deu_Latn,zho_Hans", limit=200)
    r.to_frame()   # tokenizer, language, metric, value
"""

from __future__ import annotations

from dataclasses import dataclass

from babelscope.data.corpus import load_corpus
from babelscope.languages import resolve_many
from babelscope.measure.fertility import fertility, format_table
from babelscope.models.identity import source_kind
from babelscope.models.load import DEFAULT_MODEL, parse_model_args
from babelscope.verbs import VerbSpec
from babelscope.verbs.common import finish, start_run
from babelscope.verbs.config import LanguageOptions, OutputOptions, option
from babelscope.verbs.result import Result
from babelscope.verbs.text import as_text

README = ("# fertility\n\nTokenizers: {names}. Source: {source}. Languages: {n}.\n\nFigures per language in "
          "results.json: fertility (tokens per word, or per character for scripts without spaces), tokens_per_char, "
          "bytes_per_token, parity (tokens / English tokens on the same items).\n")


@dataclass
class FertilityConfig(OutputOptions, LanguageOptions):
    languages: str = option("all", "comma-separated codes (FLORES-200 like deu_Latn, or de / deu / German), or "
                            "`all`", short="-l")
    model: str | None = option(None, "the model whose tokenizer is measured (same as pretrained= in --model_args)")
    model_args: str = option("pretrained=default", "the model whose tokenizer is measured (only the tokenizer is "
                             "loaded)", short="-a")
    tokenizers: str | None = option(None, "comma-separated tokenizers side by side instead of the model's: default "
                                    "(Gemma 3), smollm2-135m, tekken (Mistral, from mistral_common), a folder or a "
                                    "hub id")
    source: str = option("builtin", "text source: builtin (the built-in aligned corpus), a JSONL/CSV/TSV file in "
                         "wide or long form, or hf:<dataset>[:<config>][@<split>] in FLORES layout")
    limit: int | None = option(None, "at most this many items per language (for quick runs)", short="-L",
                               minimum=1)

    @property
    def model_name(self) -> str:
        return self.model or str(parse_model_args(self.model_args).get("pretrained", DEFAULT_MODEL))


def _model(config: FertilityConfig) -> dict | None:
    """The envelope's ``model``: the model whose tokenizer ran (None for --tokenizers side by side)."""
    if config.tokenizers:
        return None
    name = config.model_name
    return {"name": name, "source": source_kind(name, name),
            "revision": parse_model_args(config.model_args).get("revision")}


def run(config: FertilityConfig) -> Result:
    resolve_many(config.languages)  # a typo fails here, before anything is loaded
    corpus = load_corpus(config.source)
    languages = resolve_many(config.languages, available=corpus.languages)  # fails before the run starts
    run = start_run(config, "fertility", "tokenizers" if config.tokenizers else config.model_name)
    run.languages, run.model = languages, _model(config)
    result = fertility(config.tokenizers or config.model_name, languages, corpus, config.limit)
    run.write_results({"source": config.source, "tokenizers": list(result), "fertility": result})
    run.write_readme(README.format(names=", ".join(result), source=config.source, n=len(languages)))
    summary = f"{as_text(format_table(result))}\nbabelscope: wrote {run.path / 'results.json'}"
    return finish("fertility", run, summary, fertility=result)


def rows(results: dict) -> list[dict]:
    """tokenizer, language, metric, value (numbers only)."""
    return [{"tokenizer": tok, "language": lang, "metric": k, "value": v}
            for tok, per in results["fertility"].items() for lang, figures in per.items()
            for k, v in figures.items() if isinstance(v, (int, float)) and not isinstance(v, bool)]


SPEC = VerbSpec(
    "fertility", "measure", "tokens per word/character and parity vs English, per language and tokenizer",
    FertilityConfig, run,
    description="Tokenizer fertility on the aligned corpus: tokens per word (per character for scripts without "
    "spaces), tokens per character, bytes per token, and parity against English on the same items. Loads "
    "tokenizers only, never weights. Example: babelscope fertility --tokenizers default,smollm2-135m,tekken "
    "--languages all",
)
