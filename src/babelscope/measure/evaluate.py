"""``evaluate``: tasks x languages -> per-language metrics, consistency, off-target, fertility.

    result = evaluate(loaded, ["continuation", "translation"], "eng_Latn,fra_Latn,deu_Latn", limit=50)
    print(format_table(result)); result.save(run); result.to_frame()

Records go to ``samples/<task>.<language>.jsonl`` after every chunk of items, so an interrupted
run resumes where it stopped (items whose records exist are not scored again), and ``rescore``
recomputes every number from the records alone. Under ``torchrun`` the items of each chunk are
sharded across processes and the records gathered, so results equal a single-process run.
"""

from __future__ import annotations

import json
import sys
from dataclasses import dataclass, field

from babelscope import distributed as dist
from babelscope.data.corpus import ParallelCorpus
from babelscope.data.split import split_for_eval
from babelscope.errors import UsageError
from babelscope.languages import REFERENCE, resolve_many
from babelscope.measure import metrics as M
from babelscope.measure.aggregate import compute_results, format_table, rescore_records
from babelscope.measure.fertility import fertility_table, get_counter
from babelscope.measure.lid import Identifier, identifier
from babelscope.measure.prompts import PromptFormat, check_limit, fraction_of
from babelscope.measure.tasks import get_tasks
from babelscope.models.load import LoadedModel, load_model
from babelscope.runs import RunFolder, dumps

DEFAULT_SOURCE = "builtin"  # aligned corpus of the built-in tasks
CHUNK_ITEMS = 64  # items scored between two writes of a samples file (resume granularity)
FERTILITY_ITEMS = 200  # aligned texts per language for the tokens-per-char figures
ENGINES = ("babelscope", "lm_eval")

__all__ = ["EvalResult", "evaluate", "format_table", "rescore"]


@dataclass
class EvalResult:
    """``results`` (what results.json holds) and the per-item ``records`` {task: {lang: [...]}}."""

    results: dict
    records: dict = field(default_factory=dict)
    model_name: str = ""

    def save(self, run) -> None:
        """Write samples, results.json and README.md into a ``RunFolder`` (rank 0 only)."""
        if not dist.is_main():
            return
        for task, by_lang in self.records.items():
            for lang, recs in by_lang.items():
                run.write_samples(task, lang, recs)
        run.write_results(self.results)
        run.write_readme(
            f"# babelscope eval: {self.model_name}\n\n```\n{format_table(self)}\n```\n\n"
            "Per-item records: `samples/<task>.<language>.jsonl`; recompute every number "
            f"without the model: `babelscope rescore {run.path}`.\n"
        )

    @classmethod
    def load(cls, run_path) -> EvalResult:
        """The result of a finished eval run folder (results.json and samples)."""
        run = RunFolder.open(run_path)
        res = run.read_json("results.json")
        records = {t: {lang: run.read_samples(t, lang) for lang in per} for t, per in res["tasks"].items()}
        return cls(res, records, res.get("model", {}).get("name", ""))

    def to_frame(self):
        """Long table: task, language, metric, value (pandas)."""
        import pandas as pd

        rows = [
            {"task": t, "language": lang, "metric": k, "value": v}
            for t, per in self.results["tasks"].items()
            for lang, m in per.items()
            for k, v in m.items()
            if isinstance(v, (int, float))
        ]
        return pd.DataFrame(rows, columns=["task", "language", "metric", "value"])

    def __str__(self) -> str:
        return format_table(self)


def _scorer(loaded, engine: str, batch_size: int, progress: bool):
    if engine == "babelscope":
        from babelscope.measure.engine import Engine

        # max_length= in --model_args: the context cap, cut from the left as lm-eval does
        return Engine(loaded, batch_size=batch_size, progress=progress, max_length=loaded.extras.get("max_length"))
    if engine == "lm_eval":
        from babelscope.measure.lm_eval_engine import LMEvalScorer

        return LMEvalScorer(loaded, batch_size=batch_size, progress=progress)
    raise UsageError(f"unknown engine {engine!r}; choose from {', '.join(ENGINES)}.")


def score_items(scorer, task, language: str, items: list) -> list[dict]:
    """Records for ``items`` of one task and language."""
    for it in items:
        it.check()
    if task.kind == "mc":
        reqs = [(it.context, c) for it in items for c in it.choices]
        scores = scorer.loglikelihood(reqs, desc=f"{task.name} {language}")
        out, k = [], 0
        for it in items:
            n = len(it.choices)
            toks = [len(scorer.encode_pair(it.context, c)[1]) for c in it.choices]
            out.append(M.mc_record(it, scores[k : k + n], toks))
            k += n
        return out
    if task.kind == "bpc":
        scores = scorer.rolling_loglikelihood([it.text for it in items], desc=f"{task.name} {language}")
        return [M.bpc_record(it, lp, n) for it, (lp, n) in zip(items, scores, strict=True)]
    outputs = scorer.generate_until(
        [(it.context, {"until": list(it.until), "max_gen_toks": it.max_gen_toks}) for it in items],
        desc=f"{task.name} {language}",
    )
    return [M.gen_record(it, text, tuple(task.metrics)) for it, text in zip(items, outputs, strict=True)]


def _score_language(scorer, task, lang, items, run, progress) -> list[dict]:
    """Score one (task, language), resuming from the run's samples and writing after each chunk."""
    done = {}
    if run is not None:
        wanted = {it.item_id for it in items}
        done = {r["item_id"]: r for r in run.read_samples(task.name, lang) if r["item_id"] in wanted}
    todo = [it for it in items if it.item_id not in done]
    if done and progress and dist.is_main():
        print(
            f"babelscope: {task.name}/{lang}: resuming, {len(done)} of {len(items)} items already scored",
            file=sys.stderr,
        )
    for start in range(0, len(todo), CHUNK_ITEMS):
        chunk = todo[start : start + CHUNK_ITEMS]
        for rec in dist.gather_objects(score_items(scorer, task, lang, dist.shard(chunk))):
            done[rec["item_id"]] = rec
        if run is not None and dist.is_main():
            run.write_samples(task.name, lang, [done[it.item_id] for it in items if it.item_id in done])
    return [done[it.item_id] for it in items]


def _load(task, languages, source, limit) -> dict[str, list]:
    """The task's items per language: at most ``limit``, or below 1 that fraction of its aligned items."""
    if isinstance(limit, float):
        return fraction_of(task.load(languages, source=source, limit=None), limit)
    return task.load(languages, source=source, limit=limit)


def _fertility(tokenizer, languages, source) -> dict | None:
    """Tokens per character (and fertility) of the model's tokenizer on held-out aligned text."""
    try:
        corpus = ParallelCorpus(split_for_eval(source)[1])
        return fertility_table(get_counter(tokenizer), corpus, languages, limit=FERTILITY_ITEMS, progress=False)
    except Exception as exc:  # fertility is a side figure: never lose an evaluation over it
        print(f"babelscope: fertility figures skipped ({exc})", file=sys.stderr)
        return None


def evaluate(
    loaded,
    tasks,
    languages,
    limit: int | None = None,
    source=DEFAULT_SOURCE,
    batch_size: int = 8,
    run=None,
    engine: str = "babelscope",
    progress: bool = True,
    reference: str = REFERENCE,
    fertility: bool = True,
    prompt: PromptFormat | None = None,
    lid: Identifier | None = None,
) -> EvalResult:
    """Evaluate ``tasks`` (names, task files or Task objects) in ``languages`` (codes or "all").

    ``loaded``: a LoadedModel or anything ``load_model`` accepts. ``limit``: items per language,
    or below 1 a fraction of each task's aligned items (the same items in every language).
    ``run``: a RunFolder (records are written as they come and reused when present).
    ``prompt``: lm-eval's chat template, system instruction and gen_kwargs (``PromptFormat``).
    ``lid``: the language identifier of off-target rates (``measure.lid.identifier(...)``; default py3langid).
    """
    loaded = loaded if isinstance(loaded, LoadedModel) else load_model(loaded)
    task_objs = get_tasks(tasks)
    langs = resolve_many(languages)
    limit, prompt = check_limit(limit), prompt or PromptFormat()
    scorer = _scorer(loaded, engine, batch_size, progress)
    records, infos = {}, {}
    for task in task_objs:
        data = _load(task, langs, source, limit)
        delimiter = getattr(task, "target_delimiter", " ")  # what choices start with; a chat template drops it
        data = {lang: prompt.apply(loaded.tokenizer, items, delimiter) for lang, items in data.items()}
        infos[task.name] = {
            **task.info(),
            "metrics": list(task.metrics),
            "headline": M.headline_metric(task.kind, tuple(task.metrics)),
        }
        records[task.name] = {
            lang: _score_language(scorer, task, lang, data[lang], run, progress) for lang in langs if lang in data
        }
    fert = _fertility(loaded.tokenizer, langs, source) if fertility and source is not None else None
    lid = lid or identifier()
    results = compute_results(records, infos, langs, fert, reference, lid)
    results["model"] = {"name": loaded.name, **_card(loaded)}
    results["config"] = {
        "tasks": list(records),
        "limit": limit,
        "source": str(source),
        "engine": engine,
        "batch_size": batch_size,
        "reference": reference,
        **prompt.settings(),
        **lid.spec(),
    }
    result = EvalResult(results, records, loaded.name)
    if run is not None:
        result.save(run)
    return result


def _card(loaded) -> dict:
    try:
        return loaded.card()
    except Exception:  # a model object without an adapter entry still evaluates
        return {}


def rescore(run_path) -> tuple[EvalResult, bool]:
    """Recompute every metric of a finished run from its samples; also say if results.json agrees."""
    run = RunFolder.open(run_path)
    old = run.read_json("results.json")
    infos, langs = old["task_info"], old["languages"]
    records = {
        t: {lang: rescore_records(run.read_samples(t, lang), infos[t]) for lang in old["tasks"][t]} for t in infos
    }
    config = old.get("config", {})
    lid = identifier(config.get("lid"), config.get("lid_model"))  # runs before --lid: py3langid
    results = compute_results(records, infos, langs, old.get("fertility"), config.get("reference", REFERENCE), lid)
    for key in ("model", "config"):
        if key in old:
            results[key] = old[key]
    same = all(json.loads(dumps(results[k])) == old.get(k) for k in results)
    return EvalResult(results, records, old.get("model", {}).get("name", "")), same
