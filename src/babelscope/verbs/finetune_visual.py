"""``babelscope finetune --data visual:...``: PLAST on a vision-language model. Only the chosen layers of
the language model train, on image + question-translation pairs; multiple-choice accuracy per language on
held-out items before and after. results.json has the text finetune's layout (task ``visual``)."""

from __future__ import annotations

import sys

from babelscope.data import visual
from babelscope.errors import UsageError
from babelscope.improve import layer_finetune as lf
from babelscope.improve import visual_qt
from babelscope.languages import resolve_many
from babelscope.measure.visual import TASK as VISUAL_TASK
from babelscope.measure.visual import accuracy as visual_accuracy
from babelscope.models import vision
from babelscope.schema import before_after
from babelscope.verbs.common import bind_model, finish, seed_everything, start_run
from babelscope.verbs.finetune import (
    MIN_OTHERS,
    OTHER_LANGUAGES,
    STAGES,
    FinetuneConfig,
    readme,
    readme_table,
    resolve_layers,
    stage_table,
    training_languages,
)


def _visual_languages(config: FinetuneConfig, spec: str) -> tuple[str, list[str], list[str]]:
    """(pivot, training languages, evaluated languages) for a visual source."""
    pivot, training = training_languages(config)
    available = visual.available_languages(spec, config.task_data)
    if config.eval_languages:
        return pivot, training, resolve_many(config.eval_languages, available=available)
    others = [x for x in OTHER_LANGUAGES if x in available and x not in training][:MIN_OTHERS]
    return pivot, training, [*[x for x in training if x in available], *others]


def _visual_stage(config: FinetuneConfig, loaded, held, languages: list[str], run, tag: str) -> dict:
    """``{"visual": {language: accuracy}}`` on held-out items; per-item records in samples/."""
    scores, records = visual_accuracy(loaded, held, languages, config.eval_limit)
    for lang, rows in records.items():
        run.write_samples(f"{VISUAL_TASK}_{tag}", lang, rows)
    return {VISUAL_TASK: {lang: s["accuracy"] for lang, s in scores.items()}}


def run_visual(config: FinetuneConfig):
    """``--data visual:...``: PLAST on a vision-language model; image + question-translation pairs, and
    multiple-choice accuracy per language on held-out items before and after."""
    spec = config.data_specs()[0]
    if config.method != "full" or config.revert_layers or len(config.data_specs()) != 1:
        raise UsageError("--data visual:... trains one visual source with --method full (no --revert_layers).")
    pivot, training, evl = _visual_languages(config, spec)
    languages = list(dict.fromkeys([*training, *evl]))
    items, held = visual.split_items(visual.load_visual(spec, languages, config.task_data))
    run = start_run(config, "finetune")
    run.languages = evl
    seed_everything(config.seed)
    loaded = config.load()
    bind_model(run, loaded, config.model_spec().get("revision"))
    if not vision.is_vision(loaded.model):
        raise UsageError(f"--data {spec} needs a vision-language model; {config.model_name} is text-only.")
    layers, layer_source = resolve_layers(config, loaded, evl)
    print(f"babelscope: training layers {layers} ({layer_source}) on image + question-translation pairs; "
          f"accuracy before/after on {', '.join(evl)}", file=sys.stderr, flush=True)
    before = _visual_stage(config, loaded, held, evl, run, "before")
    share, trained, pairs = visual_qt.train_layers(loaded, layers, visual_qt.qt_pairs(items, pivot, training),
                                                   config.train_config(), config.epochs, config.max_steps)
    table, delta = stage_table(before, _visual_stage(config, loaded, held, evl, run, "after"))
    saved = None if config.no_save else lf.save_full(loaded, run.path / "model")
    directions = sorted({p.direction for p in pairs})
    results = {
        **before_after(table, STAGES), "delta": delta, "headline": VISUAL_TASK, "layers": layers,
        "layer_source": layer_source, "method": "full", "trainable_parameters": share,
        "trainable_share": share["share"],
        "revert_layers": [], "reverted_tensors": 0, "training": trained, "saved": str(saved) if saved else None,
        "data": {"specs": [spec], "documents": len(pairs), "sequences": len(pairs), "items_trained": len(items),
                 "by_kind": {"visual_qt": {d: sum(p.direction == d for p in pairs) for d in directions}},
                 "held_out_items_kept_out": len(held)},
        "language_roles": {"training": training, "pivot": pivot, "evaluated": evl},
    }
    run.write_results(results)
    run.write_readme(readme(results))
    return finish("finetune", run, readme_table(results))
