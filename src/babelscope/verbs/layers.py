"""``babelscope layers``: rank decoder layers by language specificity, look through the logit lens and
recommend the shallow layers to finetune (PLAST); writes layers.json (read by finetune and merge)."""

from __future__ import annotations

import sys
from dataclasses import dataclass
from pathlib import Path

from babelscope import distributed as dist
from babelscope.data import visual
from babelscope.data.split import split_texts
from babelscope.errors import UsageError
from babelscope.interpret import layers as ly
from babelscope.interpret import neurons as nr
from babelscope.interpret import param_diff
from babelscope.interpret.activations import language_batches
from babelscope.interpret.compare import load_run
from babelscope.interpret.ternary import classify
from babelscope.languages import REFERENCE, resolve_many
from babelscope.models import vision
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
    tasks: str | None = option(None, "visual:builtin (synthetic shapes, 9 languages) or visual:<MM-Bench/MMMB "
                               "file or folder>: measure a vision-language model on image + question items (only "
                               "text positions count, as PLAST monitors) instead of --source text",
                               metavar="visual:SOURCE", group="text")
    task_data: str | None = option(None, "with --tasks visual:mmbench or visual:mmmb: folder DIR holding DIR/mmmb/ "
                                   "(local copies, one MM-Bench-schema file per language)", metavar="DIR",
                                   group="text")
    lens_positions: int = option(ly.LENS_POSITIONS, "positions per language for the logit lens", minimum=1,
                                 group="selection")
    diff: str | None = option(None, "BASE,EXPERT[,EXPERT2]: instead of activations, measure where fine-tuning "
                              "changed the weights (per-layer relative change of EXPERT against BASE; with EXPERT2, "
                              "the overlap of the two experts' most-changed parameters); layers.json then gives "
                              "layer swapping's bottom/top (merge --layers auto --layers_json RUN)",
                              metavar="BASE,EXPERT", group="parameter change")
    diff_top_rate: float = option(param_diff.TOP_RATE, "share of each tensor's entries counted as most changed "
                                  "(for the overlap)", minimum=0.0, maximum=1.0, group="parameter change")

    def validate(self) -> None:
        super().validate()
        if self.budget <= 0 or self.max_depth <= 0:
            raise UsageError(f"--budget and --max_depth must be in (0, 1], got {self.budget} and {self.max_depth}.")
        if self.tasks:
            visual.load_visual(self.tasks, task_data=self.task_data)  # a bad source stops before the model loads
        if self.diff:
            folders = self.diff_folders()
            if len(folders) not in (2, 3):
                raise UsageError(f"--diff takes BASE,EXPERT or BASE,EXPERT,EXPERT2 model folders, not {self.diff!r}.")
            for folder in folders:
                if not Path(folder).expanduser().is_dir():
                    raise UsageError(f"--diff: {folder} is not a model folder.")

    def diff_folders(self) -> list[str]:
        return [p.strip() for p in (self.diff or "").split(",") if p.strip()]


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


def _inputs_line(doc: dict) -> str:
    inputs = doc.get("inputs")
    return f"Inputs: {inputs['tasks']}; counted: {inputs['counted']}.\n\n" if inputs else ""


def _write(config: LayersConfig, run, doc: dict) -> str:
    """layers.json, the plot, results.json and README.md; the line the CLI prints."""
    run.write_json("layers.json", doc)
    ly.plot(doc, run.path / "layers.png")
    lens, rec = doc["evidence"]["logit_lens"], doc["recommended"]
    run.write_results({"source": config.tasks or config.source, "recommended": rec, "ranking": doc["ranking"],
                       "onset_layer": lens["onset_layer"]})
    run.write_readme(
        f"# layers: {doc['model']}\n\nRecommended layers to finetune (PLAST): {rec['layers']}; layer "
        f"swapping: bottom {rec['bottom']}, top {rec['top']}.\n\nRanking (most language-specific "
        f"first): {doc['ranking']}.\n\nLogit-lens onset layer per language: {lens['onset_layer']}.\n\n"
        f"{_inputs_line(doc)}Evidence in layers.json; plot in layers.png.\n")
    return (f"babelscope: recommended layers {rec['layers']} (bottom {rec['bottom']}, top {rec['top']}); "
            f"wrote {run.path / 'layers.json'}")


def _run_diff(config: LayersConfig):
    """``--diff``: per-layer parameter change, the most-changed layers and layer swapping's bottom/top."""
    base, expert, *other = config.diff_folders()
    run = start_run(config, "layers", model_name=Path(expert).name)
    change = param_diff.layer_change(base, expert, other[0] if other else None, config.diff_top_rate)
    ranking = sorted(change["layers"], key=lambda i: -(change["change"][i] or 0.0))  # most changed first
    swap = param_diff.recommend_swap(change["change"])
    rec = {"layers": sorted(ranking[:max(1, round(config.budget * len(ranking)))]), "bottom": swap["bottom"],
           "top": swap["top"], "budget": config.budget, "max_depth": 1.0}
    run.write_json("layers.json", {"model": expert, "base": base, "method": "parameter change",
                                   "recommended": rec, "ranking": ranking, "evidence": {"param_diff": change}})
    run.write_results({"source": "parameter change", "recommended": rec, "ranking": ranking, "onset_layer": {},
                       "param_diff": change})
    overlap = f"; overlap of the most-changed parameters per layer: {change['overlap']}" if other else ""
    run.write_readme(f"# layers --diff: {expert} against {base}\n\nRelative change per layer: {change['change']}"
                     f"{overlap}.\n\nLayer swapping: bottom {rec['bottom']}, top {rec['top']}.\n")
    return finish("layers", run, f"babelscope: most-changed layers {ranking[:5]}; layer swapping bottom "
                  f"{rec['bottom']}, top {rec['top']}; wrote {run.path / 'layers.json'}", layers=change)


def _with_english(languages: list[str]) -> list[str]:
    if REFERENCE in languages:
        return languages
    print(f"babelscope: added {REFERENCE} (the activation difference is measured against English)", file=sys.stderr)
    return [REFERENCE, *languages]


def _start(config: LayersConfig, languages: list[str]):
    run = start_run(config, "layers")
    run.languages = languages
    seed_everything(config.seed)
    loaded = config.load()
    bind_model(run, loaded, config.model_spec().get("revision"))
    return run, loaded


def _run_visual(config: LayersConfig):
    """``--tasks visual:...``: the same evidence from image + question inputs of an LVLM."""
    available = visual.available_languages(config.tasks, config.task_data)
    languages = _with_english(resolve_many(config.languages, available=available))
    train, held = visual.split_items(visual.load_visual(config.tasks, languages, config.task_data))
    run, loaded = _start(config, languages)
    if not vision.is_vision(loaded.model):
        raise UsageError(f"--tasks {config.tasks} needs a vision-language model; {config.model_name} is text-only "
                         "(drop --tasks to measure it on text).")
    if config.neurons_run:
        classes, p, source = _classes(config, loaded, {}, languages)
    else:
        stats = ly.visual_stats(loaded, ly.visual_batches(loaded, train, languages, config.max_tokens,
                                                          config.batch_size), languages)
        p = stats.probabilities()
        sets = nr.identify(p, languages, "ternary")
        classes, source = classify(p, sets), {"method": "ternary", "source": "computed", "selection": sets.info}
    if not dist.is_main():
        return finish("layers", run)
    texts = {lang: [it.prompt(lang) for it in train] for lang in languages}
    lens = ly.logit_lens(loaded, ly.visual_batches(loaded, held, languages, config.lens_positions * 2,
                                                   config.batch_size), languages,
                         ly.token_languages(loaded.tokenizer, texts), config.lens_positions,
                         forward=vision.body_forward)
    doc = ly.layer_report(config.model_name, languages, classes, p, lens, source, config.budget, config.max_depth)
    doc["inputs"] = {"tasks": config.tasks, "counted": "the question tokens of image + question inputs",
                     "train_items": len(train), "held_out_items": len(held)}
    return finish("layers", run, _write(config, run, doc), layers=doc)


def run(config: LayersConfig):
    if config.diff:
        return _run_diff(config)
    if config.tasks:
        return _run_visual(config)
    corpus, languages = config.text_setup()
    languages = _with_english(languages)
    run, loaded = _start(config, languages)
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
