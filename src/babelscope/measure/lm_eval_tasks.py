"""``--tasks lm_eval:<task or group>``: lm-eval's own task definitions, babelscope's engine and tables.

lm-eval builds the requests (its YAML, ``doc_to_text`` / ``doc_to_choice`` / ``doc_to_target``,
``target_delimiter``, few-shot sampler, ``process_docs``); babelscope scores them and lays the
group's per-language subtasks out as languages::

    task = LMEvalTask("belebele")                 # or xnli, global_mmlu_de, belebele_deu_Latn, ...
    data = task.load(["deu_Latn", "fra_Latn"], limit=10)   # {language: [MCItem]}, lm-eval's requests

A subtask's language comes from its name (``belebele_deu_Latn`` -> deu_Latn, ``xnli_de`` ->
deu_Latn, ``include_base_44_albanian_stem`` -> als_Latn). Items are aligned across languages by
document index (``belebele_*#12``), which is right for parallel datasets (belebele, xnli,
global_mmlu, xcopa, xstorycloze); the families in ``NOT_PARALLEL`` get language-specific ids, so
they have no consistency figures. Only ``multiple_choice`` tasks run for now.

Offline: ``--task_data DIR`` ($BABELSCOPE_TASK_DATA) holds local copies laid out as
``DIR/<dataset_path>/<dataset_name>/<split>.{jsonl,json,parquet,csv}`` in the dataset's public
schema; the subtask then reads those files instead of the hub.
"""

from __future__ import annotations

import os
import sys
from functools import lru_cache
from pathlib import Path

from babelscope.errors import DataError, LanguageError, MissingExtraError, UsageError, require
from babelscope.languages import split_task_name
from babelscope.measure.tasks import MCItem, Task
from babelscope.measure.tasks.public import TASK_DATA_ENV

PREFIX = "lm_eval:"
NOT_PARALLEL = ("include", "m_mmlu", "okapi")  # name prefixes of groups whose documents differ per language
SPLITS = ("test_split", "validation_split", "training_split", "fewshot_split")
FORMATS = {".jsonl": "json", ".json": "json", ".parquet": "parquet", ".csv": "csv"}  # file -> datasets builder
FEWSHOT_SEED = 1234  # lm-eval's default fewshot_random_seed


def _require_lm_eval() -> Path:
    """lm-eval's task folder, or the one-line error naming the [lm_eval] extra."""
    return Path(require("lm_eval.tasks", extra="lm_eval", feature="--tasks lm_eval:<task>").__file__).parent


@lru_cache(maxsize=1)
def _yaml_stems() -> dict[str, list[Path]]:
    """File stem (``belebele_deu_Latn``, ``_belebele``) -> top-level folders of lm-eval's task tree holding it."""
    root = _require_lm_eval()
    out: dict[str, list[Path]] = {}
    for folder, _, files in os.walk(root):
        top = Path(folder).relative_to(root).parts[:1]
        for f in files:
            if f.endswith(".yaml") and top and root / top[0] not in out.get(f[:-5], []):
                out.setdefault(f[:-5], []).append(root / top[0])
    return out


def is_lm_eval_task(name: str) -> bool:
    """Whether lm-eval ships a task or group YAML of that name (a quick file-name check)."""
    try:
        stems = _yaml_stems()
    except (UsageError, MissingExtraError):
        return False
    return name in stems or f"_{name}" in stems


@lru_cache(maxsize=8)
def _manager(folder: str | None):
    from lm_eval.tasks import TaskManager

    return TaskManager() if folder is None else TaskManager(include_path=folder, include_defaults=False)


def task_manager(name: str):
    """A TaskManager that knows ``name``: over its own folder of lm-eval's tasks when that has it
    (seconds), else over every task (tags such as m_mmlu; about 20 s)."""
    _require_lm_eval()
    for folder in [*_yaml_stems().get(name, []), *_yaml_stems().get(f"_{name}", [])]:
        tm = _manager(str(folder))
        if name in tm.task_index:
            return tm
    tm = _manager(None)
    if name not in tm.task_index:
        raise UsageError(f"lm-eval has no task, group or tag {name!r}; `lm-eval ls tasks` lists them.")
    return tm


def leaves(tm, name: str, overrides: dict | None = None) -> list[tuple[str, dict]]:
    """The leaf tasks of a task, group or tag, each with the overrides its groups give it."""
    from lm_eval.tasks._factory import GROUP_FIELD_NAMES
    from lm_eval.tasks._index import Kind
    from lm_eval.tasks._yaml_loader import load_yaml

    overrides = overrides or {}
    entry = tm.task_index.get(name)
    if entry is None:
        raise UsageError(f"lm-eval has no task, group or tag {name!r}; `lm-eval ls tasks` lists them.")
    if entry.kind is Kind.TAG:
        return [(t, overrides) for t in sorted(entry.tags)]
    if entry.kind is not Kind.GROUP:
        return [(name, overrides)]
    cfg = load_yaml(entry.yaml_path, resolve_func=True) if entry.yaml_path else entry.cfg
    shared = {**{k: v for k, v in cfg.items() if k not in GROUP_FIELD_NAMES}, **overrides}
    out = []
    for member in cfg.get("task") or []:
        if isinstance(member, dict) and isinstance(member.get("task"), str) and member["task"] in tm.task_index:
            out += leaves(tm, member["task"], {**shared, **{k: v for k, v in member.items() if k != "task"}})
        elif isinstance(member, str):
            out += leaves(tm, member, shared)
        else:
            raise UsageError(f"lm-eval group {name} defines an inline task or group; babelscope runs groups whose "
                             "members are named tasks (run the members one by one).")
    return out


def local_files(folder: str | os.PathLike, cfg: dict) -> dict[str, str]:
    """{split: file} of a local copy of the subtask's dataset, ``<dir>/<path>/<name>/<split>.<ext>``."""
    base = Path(folder) / str(cfg.get("dataset_path", ""))
    if cfg.get("dataset_name"):
        base = base / str(cfg["dataset_name"])
    out = {}
    for key in SPLITS:
        split = cfg.get(key)
        if split and split not in out:
            found = [base / f"{split}{ext}" for ext in FORMATS if (base / f"{split}{ext}").is_file()]
            if found:
                out[split] = str(found[0])
    return out


def with_local_data(cfg: dict, folder: str | None) -> dict:
    """The subtask's config reading a local copy when ``folder`` has one (splits without a file dropped)."""
    files = local_files(folder, cfg) if folder and "class" not in cfg else {}
    if not files:
        return cfg
    builders = {FORMATS[Path(f).suffix] for f in files.values()}
    if len(builders) > 1:
        raise DataError(f"{cfg['task']}: the local files {sorted(files.values())} mix formats; use one.")
    out = {**cfg, "dataset_path": builders.pop(), "dataset_name": None, "dataset_kwargs": {"data_files": files}}
    for key in SPLITS:
        if out.get(key) not in files:
            out[key] = None
    return out


def _where(cfg: dict) -> str:
    path = f"{cfg.get('dataset_path')}/{cfg['dataset_name']}" if cfg.get("dataset_name") else cfg.get("dataset_path")
    split = cfg.get("test_split") or cfg.get("validation_split") or "test"
    return f"{path}/{split}.jsonl"


def build_task(tm, name: str, overrides: dict, folder: str | None):
    """One lm-eval leaf task (its YAML, the group's overrides, local data when present)."""
    from lm_eval.tasks._yaml_loader import load_yaml

    entry = tm.task_index[name]
    cfg = {**(load_yaml(entry.yaml_path, resolve_func=True) if entry.yaml_path else dict(entry.cfg or {})),
           **overrides, "task": name}
    if "class" not in cfg:
        _check_kind(name, cfg.get("output_type", "generate_until"), False)  # before any data is read
    cfg = with_local_data(cfg, folder)
    try:
        task = tm.load(cfg)["tasks"][name]
    except Exception as exc:  # offline hub, missing config, unreadable file, ...
        first = (str(exc).splitlines() or [type(exc).__name__])[0][:200]
        raise DataError(
            f"lm-eval task {name} cannot load its data ({first}). Without hub access, put a local copy at "
            f"<DIR>/{_where(cfg)} (or .parquet/.json/.csv) and pass --task_data DIR"
            + (f" (now {folder})" if folder else "") + "."
        ) from None
    if task.get_config("num_fewshot") is None:  # simple_evaluate's rule without --num_fewshot
        task.set_config(key="num_fewshot", value=0)
    task.set_fewshot_seed(seed=FEWSHOT_SEED)
    return task


def _check_kind(name: str, kind: str, multiple_input: bool) -> None:
    if kind != "multiple_choice" or multiple_input:
        what = "several contexts per document" if kind == "multiple_choice" else f"output_type {kind}"
        raise UsageError(f"lm-eval task {name} has {what}; babelscope runs lm-eval's multiple-choice tasks with one "
                         "context per document for now (run this one with lm-eval itself).")


def _gold(task, doc, choices: list[str]) -> int:
    """lm-eval's gold index (an int, or a string among the choices)."""
    gold = task.doc_to_target(doc)
    if isinstance(gold, str) and gold in choices:
        return choices.index(gold)
    if isinstance(gold, int) and 0 <= gold < len(choices):
        return gold
    raise DataError(f"{task.config.task}: target {gold!r} is not one of the {len(choices)} choices; babelscope "
                    "scores tasks with one gold choice per document.")


def task_items(task, family: str, limit=None) -> list[MCItem]:
    """lm-eval's own loglikelihood requests for the first ``limit`` documents, as multiple-choice items."""
    _check_kind(task.config.task, task.get_config("output_type"), task.multiple_input)
    from lm_eval.evaluator_utils import get_sample_size

    task.build_all_requests(limit=get_sample_size(task, limit), rank=0, world_size=1)
    by_doc: dict[int, list] = {}
    for inst in task.instances:
        by_doc.setdefault(inst.doc_id, []).append(inst)
    items = []
    for doc_id, insts in sorted(by_doc.items()):
        insts = sorted(insts, key=lambda i: i.idx)
        choices = [str(c) for c in task.doc_to_choice(insts[0].doc)]  # acc_norm's lengths, as lm-eval's
        args = [inst.arguments for inst in insts[: len(choices)]]  # (unconditional acc_mutual_info ones follow)
        items.append(MCItem(f"{family}#{doc_id}", args[0][0], [cont for _, cont in args],
                            _gold(task, insts[0].doc, choices), norm_texts=choices))
    return items


class LMEvalTask(Task):
    """lm-eval tasks, groups or tags (``a+b`` joins several) whose subtasks are languages; ``kind`` mc.

    A language may have several subtasks (global_mmlu_de's six subject groups): their items are
    concatenated, ids keep the subtask (``global_mmlu_*_business#3``).
    """

    kind = "mc"

    def __init__(self, spec: str):
        self.lm_eval_name = spec.strip()
        parts = [p.strip() for p in self.lm_eval_name.split("+") if p.strip()]
        if not parts:
            raise UsageError("give an lm-eval task after lm_eval:, e.g. --tasks lm_eval:belebele.")
        self.name = f"lm_eval-{self.lm_eval_name}"
        self.description = f"lm-eval's {self.lm_eval_name} (its prompts and requests), scored by babelscope"
        self.parallel = not any(p.startswith(NOT_PARALLEL) for p in parts)
        self.subtasks: dict[str, list[tuple]] = {}  # language -> [(task manager, leaf task, overrides)]
        self.groups: dict[str, str] = {}  # language -> the lm-eval group holding exactly its subtasks
        skipped = []
        for part in parts:
            tm = task_manager(part)
            found = [(leaf, overrides, split_task_name(leaf)[0]) for leaf, overrides in leaves(tm, part)]
            skipped += [leaf for leaf, _, lang in found if lang is None]
            langs = {lang for _, _, lang in found if lang}
            if len(langs) == 1 and len(found) > 1:
                self.groups[langs.pop()] = part
            for leaf, overrides, lang in found:
                if lang and leaf not in [x[1] for x in self.subtasks.get(lang, [])]:
                    self.subtasks.setdefault(lang, []).append((tm, leaf, overrides))
        if not self.subtasks:
            raise UsageError(f"lm-eval's {self.lm_eval_name} has no subtask whose name carries a language.")
        if skipped:
            print(f"babelscope: {self.name}: left out {', '.join(skipped)} (no FLORES-200 language of their own "
                  "in babelscope's table)", file=sys.stderr)
        self._built: dict[str, list] = {}
        self._noted = False  # the languages left out are said once

    def available_languages(self, source="builtin"):
        return sorted(self.subtasks)

    def lm_eval_tasks(self, language: str) -> list:
        """The built lm-eval task objects of one language (cached)."""
        if language not in self._built:
            folder = os.environ.get(TASK_DATA_ENV)
            self._built[language] = [build_task(tm, leaf, ov, folder) for tm, leaf, ov in self.subtasks[language]]
        return self._built[language]

    def load(self, languages, source="builtin", limit=None):
        have = [lang for lang in languages if lang in self.subtasks]
        if not have:
            raise LanguageError(f"lm-eval's {self.lm_eval_name} has none of {', '.join(languages)}; it has "
                                f"{', '.join(sorted(self.subtasks))}.")
        missing = [g for g in languages if g not in have]
        if missing and not self._noted:
            self._noted = True
            what = ", ".join(missing) if len(missing) <= 8 else f"{len(missing)} of the languages asked for"
            print(f"babelscope: {self.name} has no {what}; they are left out of its table", file=sys.stderr)
        out = {}
        for lang in have:
            out[lang] = []
            for task in self.lm_eval_tasks(lang):
                family = split_task_name(task.config.task)[1] if self.parallel else task.config.task
                out[lang] += [it.check() for it in task_items(task, family, limit)]
        return out

    def info(self) -> dict:
        tasks = [t for built in self._built.values() for t in built]
        return {**super().info(), "lm_eval": {
            "task": self.lm_eval_name, "parallel": self.parallel,
            "subtasks": {lang: [t.config.task for t in built] for lang, built in sorted(self._built.items())},
            "groups": {lang: g for lang, g in sorted(self.groups.items()) if lang in self._built},
            "versions": {t.config.task: (t.config.metadata or {}).get("version") for t in tasks},
            "n_shot": {t.config.task: t.get_config("num_fewshot") for t in tasks},
            "metrics": sorted({m["metric"] for t in tasks for m in t.config.metric_list or []
                               if isinstance(m.get("metric"), str)}),
        }}
