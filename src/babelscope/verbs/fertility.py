"""``babelscope fertility``: tokens per word/character, bytes per token and parity vs English.

Only tokenizers are loaded, never weights::

    import babelscope as bs
    r = bs.fertility(tokenizers="default,tekken", languages="deu_Latn,zho_Hans", limit=200)
    r.to_frame()   # tokenizer, language, metric, value
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass
from pathlib import Path

from babelscope.data.corpus import load_corpus
from babelscope.errors import UsageError
from babelscope.languages import resolve_many
from babelscope.measure.aggregate import POOLED_UNITS, pooled_fertility_correlation
from babelscope.measure.fertility import fertility, format_table
from babelscope.models.identity import source_kind
from babelscope.models.load import DEFAULT_MODEL, parse_model_args
from babelscope.verbs import VerbSpec
from babelscope.verbs.common import finish, start_run
from babelscope.verbs.config import SOURCE_HELP, LanguageOptions, OutputOptions, option
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
    source: str = option("builtin", SOURCE_HELP)
    limit: int | None = option(None, "at most this many items per language (for quick runs)", short="-L",
                               minimum=1)
    pool_runs: str | None = option(None, "comma-separated `babelscope eval` run folders (or their results.json): "
                                   "instead of measuring tokenizers, pool their fertility figures and headline "
                                   "metrics (models x tasks x languages) into one correlation per unit (the "
                                   "Bengali benchmark's analysis); NSL against the first run")

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


def _eval_results(spec: str) -> tuple[str, dict]:
    """(label, payload) of one eval run folder or results.json, or a one-line error."""
    path = Path(spec).expanduser()
    file = path / "results.json" if path.is_dir() else path
    if not file.is_file():
        raise UsageError(f"--pool_runs: {spec} has no results.json; name `babelscope eval` run folders.")
    try:
        results = json.loads(file.read_text(encoding="utf-8"))
    except (ValueError, UnicodeDecodeError):
        raise UsageError(f"--pool_runs: {file} is not valid JSON (a damaged run?).") from None
    if not isinstance(results, dict) or not isinstance(results.get("tasks"), dict) or "task_info" not in results:
        verb = results.get("verb") if isinstance(results, dict) else None
        raise UsageError(f"--pool_runs: {spec} is not an eval run (it was made by `{verb}`); pool eval runs.")
    if not results.get("fertility"):
        raise UsageError(f"--pool_runs: {spec} has no fertility figures (an eval run with fertility off?).")
    return (file.parent.name or str(file)), results


def _pool(config: FertilityConfig) -> Result:
    specs = [s for s in re.split(r"[,\s]+", config.pool_runs or "") if s]
    if not specs:
        raise UsageError("--pool_runs: name at least one `babelscope eval` run folder.")
    loaded = [_eval_results(s) for s in specs]
    names = []
    for i, (label, _) in enumerate(loaded):
        names.append(label if label not in names else f"{label}#{i}")
    languages = None if config.languages == "all" else resolve_many(config.languages)
    payloads = [res for _, res in loaded]
    pooled = pooled_fertility_correlation(payloads, names, languages)
    run = start_run(config, "fertility", "pooled")
    run.languages = sorted({lang for m in pooled.values() for lang in m["languages"]})
    run.model = None
    fert = {name: res["fertility"] for name, res in zip(names, payloads, strict=True)}
    run.write_results({"source": "pooled eval runs", "tokenizers": names, "fertility": fert, "pooled_runs": specs,
                       "pooled_correlation": pooled})
    run.write_readme(f"# fertility (pooled)\n\nEval runs: {', '.join(specs)}.\n\nOne correlation per headline "
                     "metric and unit over every (run, task, language): pooled_correlation in results.json.\n")
    lines = [f"{metric}: {m['points']} points; " + "; ".join(
        f"{unit} pearson {m[unit]['pearson']:.3f} (n={m[unit]['n']})" if m[unit]["pearson"] is not None
        else f"{unit} n={m[unit]['n']}" for unit in POOLED_UNITS) for metric, m in pooled.items()]
    summary = "\n".join([*lines, f"babelscope: wrote {run.path / 'results.json'}"])
    return finish("fertility", run, summary, fertility=fert)


def run(config: FertilityConfig) -> Result:
    if config.pool_runs:
        return _pool(config)
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
