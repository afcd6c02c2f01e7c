"""``babelscope layers``: rank decoder layers by language specificity, look through the logit lens and
recommend the shallow layers to finetune (PLAST); writes layers.json (read by finetune and merge)."""

from __future__ import annotations

import sys
from dataclasses import dataclass

from babelscope import distributed as dist
from babelscope.data.split import split_texts
from babelscope.errors import UsageError
from babelscope.interpret import layers as ly
from babelscope.interpret import neurons as nr
from babelscope.interpret.activations import language_batches
from babelscope.interpret.compare import load_run
from babelscope.interpret.ternary import classify
from babelscope.languages import REFERENCE
from babelscope.verbs import VerbSpec
from babelscope.verbs.common import bind_model, finish, seed_everything, start_run
from babelscope.verbs.config import LanguageOptions, ModelOptions, OutputOptions, option
from babelscope.verbs.neurons import TextOptions


@dataclass
class LayersConfig(OutputOptions, TextOptions, LanguageOptions, ModelOptions):
    neurons_run: str | None = option(None, "reuse the neuron classes of a `babelscope neurons` run folder (same "
                                     "model) instead of computing ternary neurons here", group="selection",
                                     existing=True)
    budget: float = option(ly.BUDGET, "share of decoder layers to finetune (PLAST tunes ~14% of parameters)",
                           minimum=0.0, maximum=1.0, group="selection")
    max_depth: float = option(ly.MAX_DEPTH, "recommend only layers in this leading share of the stack (PLAST: "
                              "shallow layers; 1.0 = anywhere)", minimum=0.0, maximum=1.0, group="selection")
    lens_positions: int = option(ly.LENS_POSITIONS, "positions per language for the logit lens", minimum=1,
                                 group="selection")

    def validate(self) -> None:
        super().validate()
        if self.budget <= 0 or self.max_depth <= 0:
            raise UsageError(f"--budget and --max_depth must be in (0, 1], got {self.budget} and {self.max_depth}.")


def _classes(config: LayersConfig, loaded, train: dict, languages: list[str]):
    """(classes [L, F], probabilities [L, F, K], where the classes came from)."""
    if config.neurons_run:
        tensors, meta = load_run(config.neurons_run)
        if meta["languages"] != languages:
            raise UsageError(f"--neurons_run has languages {meta['languages']}; run `layers` with --languages "
                             f"{','.join(meta['languages'])} or drop --neurons_run.")
        source = {"method": meta.get("method"), "source": str(config.neurons_run)}
        return tensors["classes"], tensors["probabilities"].double(), source
    stats = nr.collect_stats(loaded, train, config.max_tokens, config.batch_size, count=config.count)
    p = stats.probabilities()
    sets = nr.identify(p, languages, "ternary")
    return classify(p, sets), p, {"method": "ternary", "source": "computed", "selection": sets.info}


def _write(config: LayersConfig, run, doc: dict) -> str:
    """layers.json, the plot, results.json and README.md; the line the CLI prints."""
    run.write_json("layers.json", doc)
    ly.plot(doc, run.path / "layers.png")
    lens, rec = doc["evidence"]["logit_lens"], doc["recommended"]
    run.write_results({"source": config.source, "recommended": rec, "ranking": doc["ranking"],
                       "onset_layer": lens["onset_layer"]})
    run.write_readme(
        f"# layers: {doc['model']}\n\nRecommended layers to finetune (PLAST): {rec['layers']}; layer "
        f"swapping: bottom {rec['bottom']}, top {rec['top']}.\n\nRanking (most language-specific "
        f"first): {doc['ranking']}.\n\nLogit-lens onset layer per language: {lens['onset_layer']}.\n\n"
        "Evidence in layers.json; plot in layers.png.\n")
    return (f"babelscope: recommended layers {rec['layers']} (bottom {rec['bottom']}, top {rec['top']}); "
            f"wrote {run.path / 'layers.json'}")


def run(config: LayersConfig):
    corpus, languages = config.text_setup()
    if REFERENCE not in languages:
        languages = [REFERENCE, *languages]
        print(f"babelscope: added {REFERENCE} (the activation difference is measured against English)",
              file=sys.stderr)
    run = start_run(config, "layers")
    run.languages = languages
    seed_everything(config.seed)
    loaded = config.load()
    bind_model(run, loaded, config.model_spec().get("revision"))
    train, held = split_texts(corpus, languages)
    classes, p, source = _classes(config, loaded, train, languages)
    if not dist.is_main():  # other processes only add their share of the statistics; rank 0 does the rest
        return finish("layers", run)
    batches = language_batches(loaded.tokenizer, held, config.lens_positions * 2, config.batch_size)
    lens = ly.logit_lens(loaded, batches, languages, ly.token_languages(loaded.tokenizer, train),
                         config.lens_positions)
    doc = ly.layer_report(config.model_name, languages, classes, p, lens, source, config.budget, config.max_depth)
    return finish("layers", run, _write(config, run, doc), layers=doc)


def rows(results: dict) -> list[dict]:
    """layer, rank (0 = most language-specific), recommended."""
    chosen = set(results["recommended"]["layers"])
    return [{"layer": layer, "rank": r, "recommended": layer in chosen} for r, layer in enumerate(results["ranking"])]


SPEC = VerbSpec(
    "layers", "interpret", "rank layers by language specificity, logit lens, recommend PLAST layers (layers.json)",
    LayersConfig, run,
    description="Ranks decoder layers by language specificity (share of language neurons, activation difference "
    "between each language and English on parallel text), adds a logit-lens view (the layer where the "
    "next-token guess turns into the target language) and writes layers.json with the recommended shallow "
    "layers to finetune (PLAST) and bottom/top counts for layer swapping. Example: babelscope layers "
    "--model_args pretrained=default --languages eng_Latn,fra_Latn,rus_Cyrl,hin_Deva",
)
