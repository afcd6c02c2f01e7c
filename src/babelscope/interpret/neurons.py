"""Language neurons end to end: statistics on training text, LAPE or ternary selection, classes
per layer, the layer plot, and the deactivation check on held-out aligned text.

Python API (the ``babelscope neurons`` verb calls the same functions)::

    from babelscope.interpret.neurons import find_neurons
    result = find_neurons(loaded, corpus, ["eng_Latn", "fra_Latn"], method="ternary", validate=True)
    result.counts                     # per-layer specific / related / general
    result.sets.per_language()        # {lang: {layer: [neuron ids]}}
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from pathlib import Path

import torch
from tqdm.auto import tqdm

from babelscope.data.parallel import lang_tag
from babelscope.data.split import split_for_eval, split_texts
from babelscope.distributed import is_main, shard
from babelscope.errors import DataError, UsageError
from babelscope.interpret import lape, ternary
from babelscope.interpret.activations import PROMPT_LEN, ROW_LEN, answer_batches, collect, language_batches
from babelscope.interpret.deactivation import run_check
from babelscope.interpret.ternary import CLASSES, classify, layer_counts, phases, plot_layers
from babelscope.models.reducers import NeuronReducer

METHODS = ("ternary", "lape")
MAX_TOKENS = 2048  # statistics tokens per language (the must-show run: ~5 min solo, 18.5 min on busy cores)
EVAL_TOKENS = 64  # held-out tokens per language for the deactivation check (2K+1 passes with logits)
STATS_FILE = "artifacts/neuron_stats.safetensors"
# LAPE's own vocabulary (Tang et al.): a selected neuron is language-specific to one language or to
# several; "related" is the ternary method's word. The class map integers are the same (0..3).
LAPE_CLASSES = ("none", "specific", "multi-language", "general")
PROMPT_KINDS = ("qt",)  # built-in answer prompts (--prompts); anything else is a JSONL file


def class_names(method: str) -> tuple[str, ...]:
    """Names of class map values 0..3 in ``method``'s vocabulary."""
    return LAPE_CLASSES if method == "lape" else CLASSES


NEURONS_FILE = "artifacts/neurons.safetensors"


@dataclass
class NeuronResult:
    model: str
    languages: list[str]
    method: str
    sets: object  # babelscope.interpret.lape.NeuronSets
    classes: torch.Tensor  # [L, F] int8: 0 none, 1 specific, 2 related (LAPE: multi-language), 3 general
    probabilities: torch.Tensor  # [L, F, K]
    counts: dict  # {"specific": [L], "related" (LAPE: "multi-language"): [L], "general": [L]}
    phases: list
    tokens: dict
    validation: dict | None = None
    extra: dict = field(default_factory=dict)

    def summary(self) -> dict:
        out = {
            "model": self.model,
            "method": self.method,
            "languages": self.languages,
            "selection": self.sets.info,
            "activation_bar": self.sets.threshold,
            "neurons_per_language": self.sets.counts(),
            "tokens_per_language": self.tokens,
            "class_totals": {k: sum(v) for k, v in self.counts.items()},
            "per_layer": self.counts,
            "phases": self.phases,
        }
        if self.validation is not None:
            out["deactivation"] = {
                k: self.validation[k] for k in ("per_language", "all_own_largest_in_row", "all_own_largest_in_column")
            }
        return out

    def save(self, run) -> None:
        """neurons.json, layer_counts.json, the plot and the tensors in ``run`` (a RunFolder)."""
        run.write_json(
            "neurons.json",
            {
                "model": self.model,
                "method": self.method,
                "languages": self.languages,
                "selection": self.sets.info,
                "activation_bar": self.sets.threshold,
                "neurons": {
                    lang: {str(i): ids for i, ids in layers.items()}
                    for lang, layers in self.sets.per_language().items()
                },
            },
        )
        run.write_json("layer_counts.json", {"classes": self.counts, "phases": self.phases})
        run.save_tensors(
            NEURONS_FILE,
            {
                "classes": self.classes,
                "members": self.sets.members.to(torch.uint8),
                "probabilities": self.probabilities.float(),
            },
            {
                "languages": self.languages,
                "method": self.method,
                "model": self.model,
                "classes": list(class_names(self.method)),
                "axes": {
                    "classes": ["layer", "neuron"],
                    "members": ["language", "layer", "neuron"],
                    "probabilities": ["layer", "neuron", "language"],
                },
            },
        )
        plot_layers(
            self.counts,
            run.path / "neurons_per_layer.png",
            phase_list=self.phases,
            title=f"{self.method} language neurons per layer: {self.model} ({len(self.languages)} languages)",
        )
        if self.validation is not None:
            run.write_json("deactivation.json", self.validation)


def collect_stats(
    loaded,
    texts: dict[str, list[str]],
    max_tokens: int = MAX_TOKENS,
    batch_size: int = 8,
    row_len: int | None = None,
    show_progress: bool = True,
    count: str = "all",
    prompts: dict[str, list[str]] | None = None,
    selection: str | None = None,
):
    """A NeuronReducer over ``texts`` (this process' share of batches, summed over processes).

    ``count``: ``all`` text tokens, or only ``answer`` tokens the model generates after prompts
    cut from the texts (``activations.answer_batches``; each process generates all answers), or
    after the whole ``prompts`` when given ({lang: prompts}, see :func:`answer_prompts`).
    ``selection`` is recorded as the statistics' token selection (default: ``count``).
    """
    a = loaded.adapter
    if prompts is not None and count != "answer":
        raise UsageError("answer prompts only apply when counting answer tokens (count='answer').")
    if count == "answer":
        shown = show_progress and is_main()
        given, plen = (texts, PROMPT_LEN) if prompts is None else (prompts, None)
        batches = answer_batches(loaded.model, loaded.tokenizer, given, max_tokens, batch_size, shown, plen)
    else:
        batches = language_batches(loaded.tokenizer, texts, max_tokens, batch_size, row_len or ROW_LEN)
    batches = shard(batches)
    langs = list(texts if prompts is None else prompts)
    reducer = NeuronReducer(langs, a.n_layers, a.d_mlp, device=loaded.device, token_selection=selection or count)
    with tqdm(total=len(batches), desc="neuron statistics", disable=not (show_progress and is_main())) as bar:
        collect(loaded.model, a, batches, reducer, bar)
    return reducer.all_reduce()


def answer_prompts(spec: str, corpus, languages: list[str]) -> dict[str, list[str]]:
    """Whole prompts per language whose greedy answers are counted (``--count answer --prompts``).

    ``qt``: the question-translation prompts of ``finetune``'s qt kind (PLAST), built from the
    source's training items: ``"<tag>: <text>\n<pivot tag>:"`` with English as the pivot (or the
    first language without English); the pivot's own texts are translated into the first other
    language. Otherwise ``spec`` is a JSONL file of ``{"language": ..., "question": ...}`` rows
    (e.g. MGSM questions; other keys ignored), each question given whole.
    """
    if spec == "qt":
        items, _ = split_for_eval(corpus)
        pivot = "eng_Latn" if "eng_Latn" in languages else languages[0]
        out = {}
        for lang in languages:
            target = pivot if lang != pivot else next((x for x in languages if x != pivot), None)
            if target is None:
                raise UsageError("--prompts qt needs at least 2 languages (a question and its translation).")
            out[lang] = [f"{lang_tag(lang)}: {it.texts[lang].strip()}\n{lang_tag(target)}:"
                         for it in items if lang in it.texts and target in it.texts]
    else:
        path = Path(spec)
        if not path.is_file():
            raise UsageError(f"--prompts {spec!r}: not qt and no such file (a JSONL of language, question rows).")
        out = {lang: [] for lang in languages}
        for n, line in enumerate(path.read_text(encoding="utf-8").splitlines(), 1):
            if not line.strip():
                continue
            try:
                row = json.loads(line)
                lang, question = row["language"], row["question"]
            except (ValueError, KeyError, TypeError) as e:
                raise DataError(f"{spec} line {n}: expected a JSON object with language and question ({e}).") from e
            if lang in out and str(question).strip():
                out[lang].append(str(question))
    empty = [lang for lang, p in out.items() if not p]
    if empty:
        raise DataError(f"--prompts {spec}: no prompt for {', '.join(empty)}.")
    return out


def identify(
    p: torch.Tensor,
    languages: list[str],
    method: str = "ternary",
    top_rate: float | None = None,
    bar_rate: float | None = None,
    filter_rate: float | None = None,
    lam: float | None = None,
    search: str = "largest",
):
    """Neuron sets from probabilities ``p`` [L, F, K] with ``method`` (ternary: lambda swept if None,
    by ``search``: largest or official)."""
    top = lape.TOP_RATE if top_rate is None else top_rate
    bar = lape.BAR_RATE if bar_rate is None else bar_rate
    if method == "lape":
        return lape.lape(p, languages, top, lape.FILTER_RATE if filter_rate is None else filter_rate, bar)
    if method == "ternary":
        if len(languages) < 2:
            raise UsageError("the ternary method needs at least 2 languages.")
        if lam is None:
            return ternary.autosweep(p, languages, top, bar, search=search)
        return ternary.select(p, languages, lam, top, bar)
    raise UsageError(f"unknown neuron method {method!r}; choose from {', '.join(METHODS)}.")


def from_stats(reducer, model_name: str, method: str = "ternary", **kwargs) -> NeuronResult:
    """Selection, classes, per-layer counts and phases from collected statistics."""
    p = reducer.probabilities()  # [L, F, K]
    sets = identify(p, reducer.languages, method, **kwargs)
    classes = classify(p, sets)
    counts = layer_counts(classes)  # ternary names, which phases() reads
    ph = phases(counts)
    named = dict(zip(class_names(method)[1:], counts.values(), strict=True))
    return NeuronResult(
        model_name,
        reducer.languages,
        method,
        sets,
        classes,
        p,
        named,
        ph,
        dict(zip(reducer.languages, reducer.tokens.tolist(), strict=True)),
    )


def validate(
    loaded,
    result: NeuronResult,
    eval_texts: dict[str, list[str]],
    eval_tokens: int = EVAL_TOKENS,
    batch_size: int = 8,
    seed: int = 0,
    show_progress: bool = True,
) -> dict:
    """The deactivation check on held-out text (see :mod:`babelscope.interpret.deactivation`)."""
    batches = shard(language_batches(loaded.tokenizer, eval_texts, eval_tokens, batch_size))
    langs = result.languages
    exclude = result.sets.members.any(0)  # [L, F]: no random neuron is anybody's language neuron
    with tqdm(total=1 + 2 * len(langs), desc="deactivation check", disable=not (show_progress and is_main())) as bar:
        return run_check(loaded.model, loaded.adapter, batches, langs, result.sets.per_language(), exclude, seed, bar)


def find_neurons(
    loaded,
    corpus,
    languages,
    method: str = "ternary",
    max_tokens: int = MAX_TOKENS,
    validate_on_held_out: bool = False,
    eval_tokens: int = EVAL_TOKENS,
    batch_size: int = 8,
    seed: int = 0,
    stats=None,
    **selection,
) -> NeuronResult:
    """Collect statistics (or reuse ``stats``), select neurons, optionally run the deactivation check."""
    languages = corpus.resolve_languages(languages)
    train, held = split_texts(corpus, languages)
    stats = stats or collect_stats(loaded, train, max_tokens, batch_size)
    result = from_stats(stats, loaded.name, method, **selection)
    if validate_on_held_out:
        result.validation = validate(loaded, result, held, eval_tokens, batch_size, seed)
    return result
