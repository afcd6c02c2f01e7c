"""``babelscope heads``: LAHIS head scores per language, specific and general heads, heatmaps, and with
``--validate`` an ablation matrix and the off-target rate of generation before/after zeroing heads."""

from __future__ import annotations

import time
from dataclasses import dataclass
from typing import ClassVar

from babelscope import distributed
from babelscope.data.corpus import load_corpus
from babelscope.data.split import split_for_eval, texts_of
from babelscope.errors import DataError, UsageError
from babelscope.interpret import attention_transfer as at
from babelscope.interpret import heads_report as rep
from babelscope.interpret.lahis import MAX_LENGTH, QUANTILE, classify, lahis
from babelscope.interpret.lahis_validate import MAX_NEW_TOKENS, ablation_matrix, off_target, official_ablation
from babelscope.languages import resolve_many
from babelscope.measure.lid import IDENTIFIERS, LID_HELP, LID_MODEL_HELP, identifier
from babelscope.verbs import VerbSpec
from babelscope.verbs.common import bind_model, finish, seed_everything, start_run
from babelscope.verbs.config import SOURCE_HELP, LanguageOptions, ModelOptions, OutputOptions, option
from babelscope.verbs.result import Result

NUM_ITEMS = 64  # scored items per language (official: 1000 Wikipedia articles)
NUM_EVAL_ITEMS = 8  # held-out items per language for the ablation matrix (scored K + 2 times each)
NUM_PROMPTS = 8  # held-out prompts per language for the off-target check
@dataclass
class HeadsConfig(OutputOptions, LanguageOptions, ModelOptions):
    source: str = option("builtin", SOURCE_HELP)
    num_items: int = option(NUM_ITEMS, "aligned items scored per language, from the training side of the split",
                            minimum=1, group="LAHIS")
    max_length: int = option(MAX_LENGTH, "tokens kept per item (official: 2048)", minimum=2, group="LAHIS")
    quantile: float = option(QUANTILE, "a language's candidate heads are those above this quantile of its scores",
                             minimum=0.0, maximum=1.0, group="LAHIS")
    min_languages: int | None = option(None, "a head in at least this many languages' candidate lists is "
                                       "language-general (default: 4 from 8 languages on or with "
                                       "--reproduce_official, else half the languages rounded up, at least 2)",
                                       minimum=1, group="LAHIS")
    reproduce_official: bool = option(False, "follow the official code: batch 1, bf16 mask with an AdamW(lr=1e-2) "
                                      "step after every sample, |g|*m summed in bf16, and 4 as the general-head "
                                      "threshold (scores then depend on sample order; default: fixed mask at 1, "
                                      "float64 sums)", group="LAHIS")
    # the flag is --validate (a field ``validate`` would hide Config.validate()); config.yaml may say either
    check: bool = option(False, "ablation check (--validate): zero each language's top heads in turn: loss matrix "
                         "on held-out text with a random-heads baseline, and the off-target rate of generation "
                         "before/after zeroing its specific heads", short="--validate", group="validation")
    ablation: str = option("official", "what --validate ablates: official (the paper's released code: the top 2%% of "
                           "layers x heads of each language's specific heads, mean exp(loss)) or candidates "
                           "(babelscope's: each language's top heads, then its specific heads alone, with a "
                           "random-heads control; mean loss rise)",
                           choices=("candidates", "official"), group="validation")
    num_eval_items: int = option(NUM_EVAL_ITEMS, "held-out items per language for the ablation matrix", minimum=1,
                                 group="validation")
    num_prompts: int = option(NUM_PROMPTS, "held-out prompts per language for the off-target check; 0 skips it",
                              minimum=0, group="validation")
    max_new_tokens: int = option(MAX_NEW_TOKENS, "greedy tokens generated per off-target prompt", minimum=1,
                                 group="validation")
    lid: str | None = option(None, LID_HELP, metavar="|".join(IDENTIFIERS), group="validation")
    lid_model: str | None = option(None, LID_MODEL_HELP, metavar="PATH", group="validation")
    steer: str | None = option(None, "L1,L2: the paper's cross-lingual attention transfer: Alice's occupation "
                               "stated in L1 then (differently) in L2, 90 ordered occupation pairs; share of "
                               "answers with L1's occupation before/after scaling L1's top specific heads by "
                               "--steer_scale and setting L2's to --steer_weaken, and L1's off-target rate",
                               metavar="L1,L2", group="steering")
    steer_scale: float = option(at.SCALE, "multiplier of L1's top specific heads (official 3.0)", group="steering")
    steer_weaken: float = option(at.WEAKEN, "value of L2's top specific heads (official 0.0)", group="steering")
    steer_rate: float = option(at.RATE, "heads steered per language: int(layers x heads x rate), at least 1 "
                               "(official 0.01)", minimum=0.0, maximum=1.0, group="steering")

    RENAMED: ClassVar[dict] = {"validate": "check"}  # the flag's name (old config.yaml files, bs.heads(validate=True))

    def validate(self) -> None:
        super().validate()
        if not 0.0 < self.quantile < 1.0:
            raise UsageError(f"--quantile must be between 0 and 1 (e.g. 0.96), not {self.quantile}.")
        if self.steer is not None and len(resolve_many(self.steer)) != 2:
            raise UsageError(f"--steer takes two different languages L1,L2 (e.g. fra_Latn,deu_Latn), not "
                             f"{self.steer!r}.")
        identifier(self.lid, self.lid_model)  # a bad --lid / --lid_model stops here, before the model loads


def load_texts(source: str, languages) -> tuple[list[str], list, list]:
    """(languages resolved in the corpus, training items, held-out items) of the project-wide split
    (``split_for_eval``: a seeded hash of each item_id, so an item is on the same side in every language)."""
    corpus = load_corpus(source)
    languages = corpus.resolve_languages(languages)
    train, held = split_for_eval(corpus)
    empty = [lang for lang, t in texts_of(train, languages, 1).items() if not t]
    if empty:
        raise DataError(f"{source!r} has no training-side text in {', '.join(empty)}; drop it or use another "
                        "--source.")
    return languages, train, held


def run(config: HeadsConfig) -> Result:
    import torch

    seed_everything(config.seed)
    languages, train, held = load_texts(config.source, config.languages)  # errors before any run folder
    steer = resolve_many(config.steer, languages) if config.steer else None
    if steer:
        at.prompt(steer[0], steer[1], 0, 1)  # a language without occupation sentences fails here
    run = start_run(config, "heads")
    run.languages = languages
    loaded = config.load()
    bind_model(run, loaded, config.model_spec().get("revision"))
    t0, c0 = time.time(), time.process_time()
    result = lahis(loaded, texts_of(train, languages, config.num_items), config.batch_size, config.max_length,
                   config.reproduce_official)
    timings = {"score": time.time() - t0, "cpu_score": time.process_time() - c0}
    if not distributed.is_main():
        return Result("heads", {}, run)  # rank 0 writes the run folder and validates
    result.settings.update(model=loaded.name, source=config.source, seed=config.seed)
    result.save(run)
    classes = classify(result, config.quantile, config.min_languages, official=config.reproduce_official)
    run.write_json("heads.json", classes)
    payload, figs = _payload(run, loaded, result, classes, config.quantile)
    readme = [f"# LAHIS heads: {loaded.name}", "",
              f"Languages: {', '.join(languages)}; {config.num_items} items each (scored: {result.n_items}).", "",
              rep.classes_table(classes, result)]
    if config.check:
        readme += _validate(config, run, loaded, classes, languages, held, payload, timings, figs)
    if steer:
        t = time.time()
        readme += _steer(config, run, loaded, classes, steer, held, payload)
        timings["steer"] = time.time() - t
    timings["total"] = time.time() - t0
    timings["cpu_total"] = time.process_time() - c0  # CPU time of all threads: / threads ~ wall on an idle machine
    readme.append(f"\nTime: {timings['total']:.0f} s wall, {timings['cpu_total']:.0f} s CPU "
                  f"({torch.get_num_threads()} threads); scoring {timings['score']:.0f} s wall.")
    payload.update(timings=timings, torch_threads=torch.get_num_threads(),
                   figures=[str(f.relative_to(run.path)) for f in figs])
    run.write_results(payload)
    run.write_readme("\n".join(readme) + "\n")
    return finish("heads", run, _summary(config, classes, result, payload, f"{readme[-1].strip()}\n"
                                         f"babelscope: wrote {run.path}"))


def _payload(run, loaded, result, classes: dict, quantile: float) -> tuple[dict, list]:
    """The results.json payload of the scores and classes, and the figures drawn so far."""
    a = loaded.adapter
    figs = rep.plot_language_heatmaps(result, run.path / "figures")
    figs.append(rep.plot_classes(classes, a.n_layers, a.n_heads, run.path / "figures" / "specific_general.png"))
    payload = {"method": "lahis", "n_items": result.n_items, "n_layers": a.n_layers, "n_heads": a.n_heads,
               "settings": result.settings, "general": classes["general"], "specific": classes["specific"],
               "candidates": classes["candidates"], "min_languages": classes["min_languages"],
               "quantile": quantile}
    return payload, figs


def _summary(config: HeadsConfig, classes: dict, result, payload: dict, tail: str) -> str:
    lines = [rep.classes_table(classes, result)]
    if config.check:
        lines.append(rep.ablation_table(payload["ablation"]))
        if "ablation_specific" in payload:
            lines.append("\nSpecific heads alone:\n" + rep.ablation_table(payload["ablation_specific"]))
    return "\n".join([*lines, tail])


def _validate(config: HeadsConfig, run, loaded, classes, languages, held, payload, timings, figs) -> list[str]:
    """Ablation matrices (top heads, then specific heads alone) and the off-target check; README lines."""
    t = time.time()
    lines = _ablations(config, run, loaded, classes, texts_of(held, languages, config.num_eval_items), payload,
                       figs)
    timings["ablation"] = time.time() - t
    if config.num_prompts > 0:
        t = time.time()
        lines += _off_target(config, run, loaded, classes, texts_of(held, languages, config.num_prompts), payload)
        timings["off_target"] = time.time() - t
    return lines


def _ablations(config: HeadsConfig, run, loaded, classes, eval_texts, payload, figs) -> list[str]:
    from tqdm.auto import tqdm

    n, lines = len(eval_texts), []
    if config.ablation == "official":
        with tqdm(total=(n + 1) * len(eval_texts) + n, desc="official ablation") as bar:
            abl = official_ablation(loaded, classes["specific"], eval_texts, config.seed, config.batch_size,
                                    config.max_length, bar)
        payload["ablation"] = abl
        run.write_json("ablation.json", abl)
        figs.append(rep.plot_ablation(abl, run.path / "figures" / "ablation.png"))
        return ["", f"## Official ablation: each language's top {abl['n_heads_zeroed']} specific heads zeroed, "
                "rise of mean exp(loss) on held-out text", "", rep.ablation_table(abl)]
    # the top lists (as the paper ablates them), then the specific heads alone: the top lists share
    # the general heads, so only the second matrix separates a language's own heads from them
    for key, heads_of, title in (
        ("ablation", classes["candidates"], "each language's top heads"),
        ("ablation_specific", classes["specific"], "each language's specific heads alone (no general heads)"),
    ):
        heads = {lang: heads_of[lang] for lang in eval_texts}
        base = payload["ablation"]["base_loss"] if key != "ablation" else None
        steps = (n + 1) * sum(1 for h in heads.values() if h) + (n if base is None else 0)
        with tqdm(total=steps, desc=key.replace("_", " ")) as bar:
            abl = ablation_matrix(loaded, heads, eval_texts, config.seed, config.batch_size, config.max_length,
                                  bar, base)
        payload[key] = abl
        run.write_json(f"{key}.json", abl)  # kept even if a later step is interrupted
        figs.append(rep.plot_ablation(abl, run.path / "figures" / f"{key}.png"))
        lines += ["", f"## Ablation of {title}: loss rise on held-out text", "", rep.ablation_table(abl)]
    return lines


def _off_target(config: HeadsConfig, run, loaded, classes, prompts, payload) -> list[str]:
    from tqdm.auto import tqdm

    lid = identifier(config.lid, config.lid_model)
    with tqdm(total=2 * len(prompts), desc="off-target") as bar:
        off = off_target(loaded, prompts, classes["specific"], config.batch_size, config.max_new_tokens, bar, lid)
    for lang, row in off.items():
        recs = [dict(s, condition=c, item=i) for c in ("before", "after") if c in row
                for i, s in enumerate(row[c].pop("samples"))]
        run.write_samples("off_target", lang, recs)
    payload["off_target"] = off
    run.write_json("off_target.json", off)
    return ["", f"## Off-target rate of greedy continuations ({lid.name}), before/after zeroing the language's "
            "specific heads", "", rep.off_target_table(off)]


def _steer(config: HeadsConfig, run, loaded, classes, steer: list[str], held, payload) -> list[str]:
    """The attention-transfer experiment (``--steer L1,L2``); README lines."""
    from tqdm.auto import tqdm

    l1, l2 = steer
    prompts = texts_of(held, [l1], config.num_prompts)[l1] if config.num_prompts > 0 else None
    with tqdm(total=len(at.CONDITIONS) * len(at.pairs()), desc="steer") as bar:
        res = at.steer(loaded, l1, l2, classes["specific"], config.steer_rate, config.steer_scale,
                       config.steer_weaken, off_target_prompts=prompts, batch_size=config.batch_size, progress=bar,
                       lid=identifier(config.lid, config.lid_model))
    run.write_samples("steer", l1, [dict(s, condition=name) for name, row in res["conditions"].items()
                                    for s in row.pop("samples")])
    payload["steer"] = res
    run.write_json("steer.json", res)
    return ["", f"## Attention transfer: Alice's occupation in {l1} (X) then {l2} (Y); {l1}'s top "
            f"{res['n_heads']} specific heads x {res['scale']:g}, {l2}'s set to {res['weaken']:g}", "",
            _steer_table(res)]


def _steer_table(res: dict) -> str:
    lines = ["| condition | answers X | answers Y | X ranked above Y | off-target rate (L1) |", "|---|---|---|---|---|"]
    for name, row in res["conditions"].items():
        off = (row.get("off_target") or {}).get("off_target_rate")
        lines.append(f"| {name} | {row['x_share']:.2f} | {row['y_share']:.2f} | {row['x_rank_share']:.2f} | "
                     f"{'-' if off is None else f'{off:.2f}'} |")
    return "\n".join(lines)


def rows(results: dict) -> list[dict]:
    """language, kind (specific / general / candidate), head (flat id layer * H + head)."""
    out = [{"language": lang, "kind": kind, "head": h}
           for kind in ("specific", "candidates") for lang, heads in results[kind].items() for h in heads]
    return out + [{"language": None, "kind": "general", "head": h} for h in results["general"]]


SPEC = VerbSpec(
    "heads", "interpret", "LAHIS attention-head importance per language; specific vs general", HeadsConfig, run,
    description="Score every (layer, query head) per language with LAHIS (one forward and backward per batch at "
    "a fixed mask of ones), split heads into language-specific and language-general, draw heatmaps, and with "
    "--validate check them by ablation and off-target generation. Runs under torchrun (items sharded, sums "
    "added).",
)
