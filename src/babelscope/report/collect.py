"""Read run folders for the report: config, results, artifacts, and generic shape finders.

Renderers never assume a fixed results.json layout. They ask this module for shapes instead:
``language_tables`` finds every ``{language: {metric: number}}`` dict (at any depth), and
``language_matrices`` every language x language matrix (``{lang: {lang: number}}`` or
``{"languages": [...], "matrix": [[...]]}``). A run with new keys therefore never breaks the report.

What a run is (verb, model, languages, settings) and its before/after tables come from the results
envelope and the ``stages``/``before_after`` shape of ``babelscope.schema`` only; a folder of the
previous layout (no ``schema_version``) is rewritten into that shape by ``report.legacy.upgrade``.
"""

from __future__ import annotations

import json
import math
import re
from dataclasses import dataclass, field
from pathlib import Path

from babelscope.errors import UsageError
from babelscope.languages import info
from babelscope.report import legacy, lm_eval

LANG_RE = re.compile(r"^[a-z]{3}_[A-Z][a-z]{3}$")  # FLORES-200 style code, e.g. deu_Latn
COUNT_KEYS = ("n", "n_items", "num_items", "items", "count", "n_samples", "n_eval_items")  # item counts for micro means
LABEL_KEYS = ("languages", "classes", "labels")  # a list of row labels beside list-of-rows matrices
SKIP_KEYS = ("environment", "versions", "config", "model")  # results.json parts that never hold findings


def is_lang(key) -> bool:
    return isinstance(key, str) and bool(LANG_RE.match(key))


def is_number(v) -> bool:
    return isinstance(v, (int, float)) and not isinstance(v, bool) and math.isfinite(float(v))


def lang_name(code: str) -> str:
    """The English name of a language code, empty when unknown."""
    try:
        return info(code).name
    except Exception:  # an unknown code still renders
        return ""


@dataclass
class Run:
    """One run folder as the report sees it: ``results`` follows ``babelscope.schema`` (an old-layout
    folder is upgraded when read, and ``legacy`` says so); ``config`` is the envelope's ``config``."""

    path: Path
    config: dict = field(default_factory=dict)
    results: dict = field(default_factory=dict)
    readme: str = ""
    label: str = ""
    legacy: bool = False

    @property
    def verb(self) -> str:
        return str(self.results.get("verb") or self.config.get("verb") or "run")

    @property
    def model(self) -> str:
        """The model's name (a local folder's last component), else the run folder's parent name."""
        model = self.results.get("model")
        name = model.get("name") if isinstance(model, dict) else None
        if not isinstance(name, str) or not name:
            return self.path.parent.name
        return Path(name).name if name.startswith(("/", ".", "~")) else name

    @property
    def languages(self) -> list[str]:
        langs = self.results.get("languages")
        return [str(x) for x in langs] if isinstance(langs, list) else []

    def artifacts(self) -> list[Path]:
        folder = self.path / "artifacts"
        return sorted(folder.glob("*.safetensors")) if folder.is_dir() else []

    def load_artifact(self, path: Path):
        """(tensors as numpy arrays, decoded metadata); empty on a file that cannot be read."""
        try:
            from safetensors import safe_open
        except ImportError:  # pragma: no cover - safetensors is a core dependency
            return {}, {}
        tensors, meta = {}, {}
        try:
            with safe_open(str(path), framework="pt") as f:
                for key in f.keys():
                    tensors[key] = f.get_tensor(key).float().numpy()
                raw = f.metadata() or {}
        except Exception:
            return {}, {}
        for k, v in raw.items():
            try:
                meta[k] = json.loads(v)
            except ValueError:
                meta[k] = v
        return tensors, meta

    def sample_files(self) -> list[Path]:
        folder = self.path / "samples"
        return sorted(folder.glob("*.jsonl")) if folder.is_dir() else []

    def json_files(self) -> dict[str, object]:
        """Other JSON files at the top of the run folder (e.g. layers.json), by file name."""
        out = {}
        for p in sorted(self.path.glob("*.json")):
            if p.name == "results.json" or p.name.startswith("results_"):  # results_<time>.json: lm-eval's layout
                continue
            try:
                out[p.name] = json.loads(p.read_text(encoding="utf-8"))
            except (OSError, ValueError):
                continue
        return out


def load_run(path) -> Run:
    """Read a run folder; a folder without config.yaml or results.json is refused."""
    import yaml

    path = Path(path)
    if not path.is_dir():
        raise UsageError(f"run folder {path} does not exist; pass folders that babelscope verbs wrote.")
    config_p, results_p = path / "config.yaml", path / "results.json"
    lm_eval_p = None if results_p.exists() else lm_eval.latest_file(path)
    if not config_p.exists() and not results_p.exists() and lm_eval_p is None:
        raise UsageError(f"{path} has neither config.yaml nor results.json (nor lm-eval's results_*.json); it is "
                         "not a run folder.")
    run = Run(path=path)
    try:
        if config_p.exists():
            run.config = yaml.safe_load(config_p.read_text(encoding="utf-8")) or {}
        if results_p.exists():
            run.results = json.loads(results_p.read_text(encoding="utf-8")) or {}
        elif lm_eval_p is not None:  # an lm-eval output folder
            run.results = lm_eval.read(lm_eval_p)
    except (ValueError, yaml.YAMLError) as exc:
        raise UsageError(f"cannot read {path}: {exc}") from None
    if not isinstance(run.config, dict):
        run.config = {}
    if not isinstance(run.results, dict):
        run.results = {}
    if run.results and "schema_version" not in run.results:  # the previous layout
        run.results, run.legacy = legacy.upgrade(run.results, run.config), True
    if isinstance(run.results.get("config"), dict):
        run.config = {"verb": run.verb, **run.results["config"]}
    if (path / "README.md").exists():
        run.readme = (path / "README.md").read_text(encoding="utf-8", errors="replace")
    run.label = path.name if path.name.startswith(run.verb) else f"{run.verb} run {path.name}"
    return run


def load_runs(paths, required=None) -> list[Run]:
    """Read every folder; one that cannot be read fails the report if it is in ``required`` (the folders
    the user named; default all), and is skipped with a message on stderr otherwise (a nested run)."""
    import sys

    required = {Path(p) for p in (paths if required is None else required)}
    runs = []
    for p in paths:
        try:
            runs.append(load_run(p))
        except UsageError as exc:
            if Path(p) in required:
                raise
            print(f"babelscope: report: skipped {p}: {exc}", file=sys.stderr)
    if not runs:
        raise UsageError("no run folders given; pass one or more folders that babelscope verbs wrote.")
    seen: dict[str, int] = {}
    for run in runs:  # disambiguate equal labels (same verb and folder name under two models)
        seen[run.label] = seen.get(run.label, 0) + 1
        if seen[run.label] > 1:
            run.label = f"{run.label} ({run.model})"
    return runs


# generic shape finders ----------------------------------------------------------------------


@dataclass
class LangTable:
    """``{language: {metric: value}}`` found at ``path`` inside results."""

    path: tuple[str, ...]
    rows: dict[str, dict[str, float]]
    group: tuple[str, ...] | None = None  # set for tables split out of {lang: {group: {metric}}} (the parent)

    @property
    def name(self) -> str:
        return " / ".join(self.path) or "results"

    def metrics(self) -> list[str]:
        """Metric columns in first-seen order, stderr and count columns excluded."""
        out: list[str] = []
        for vals in self.rows.values():
            for k in vals:
                if k not in out and not is_stderr(k) and k not in COUNT_KEYS:
                    out.append(k)
        return out

    def stderr(self, lang: str, metric: str) -> float | None:
        vals = self.rows.get(lang, {})
        lone = "stderr" if len(self.metrics()) == 1 else ""  # a bare "stderr" belongs to a lone metric
        for key in (f"{metric}_stderr", f"{metric},stderr", f"{metric}_se", lone):
            if key and is_number(vals.get(key)):
                return float(vals[key])
        return None

    def count(self, lang: str) -> float | None:
        vals = self.rows.get(lang, {})
        for key in COUNT_KEYS:
            if is_number(vals.get(key)):
                return float(vals[key])
        return None


def is_stderr(key: str) -> bool:
    return key.endswith(("_stderr", ",stderr", "_se")) or key == "stderr"


def language_tables(obj, path: tuple[str, ...] = ()) -> list[LangTable]:
    """Every dict keyed by language codes whose values are flat metric dicts (or numbers)."""
    found: list[LangTable] = []
    if not isinstance(obj, dict):
        return found
    langs = [k for k in obj if is_lang(k)]
    if langs and not _is_matrix_dict(obj):
        rows: dict[str, dict[str, float]] = {}
        for lang in langs:
            val = obj[lang]
            if is_number(val):
                rows[lang] = {path[-1] if path else "value": float(val)}
            elif isinstance(val, dict):
                flat = {k: float(v) for k, v in val.items() if is_number(v)}
                if flat:
                    rows[lang] = flat
        if rows:
            found.append(LangTable(path, rows))
        found += _pivot(obj, langs, path)
    vectors = {k: v for k, v in obj.items() if k not in SKIP_KEYS and not is_lang(k) and _is_lang_vector(v)}
    if vectors:  # sibling {language: number} dicts become the columns of one table
        merged: dict[str, dict[str, float]] = {}
        for key, vec in vectors.items():
            for lang, x in vec.items():
                merged.setdefault(lang, {})[str(key)] = float(x)
        found.append(LangTable(path, merged))
    for key, val in obj.items():
        if key in SKIP_KEYS or key in vectors or is_lang(key) or not isinstance(val, dict):
            continue
        found.extend(language_tables(val, (*path, str(key))))
    return found


def _pivot(obj: dict, langs: list[str], path: tuple[str, ...]) -> list[LangTable]:
    """``{lang: {group: {metric: x}}}`` (e.g. Text2Cypher per question kind) -> one table per group."""
    groups: dict[str, dict[str, dict[str, float]]] = {}
    for lang in langs:
        val = obj[lang]
        if not isinstance(val, dict):
            continue
        for group, metrics in val.items():
            if isinstance(metrics, dict) and not is_lang(group):
                flat = {k: float(v) for k, v in metrics.items() if is_number(v)}
                if flat:
                    groups.setdefault(str(group), {})[lang] = flat
    return [LangTable((*path, group), rows, group=path) for group, rows in groups.items()]


def _is_lang_vector(v) -> bool:
    return isinstance(v, dict) and bool(v) and all(is_lang(k) and is_number(x) for k, x in v.items())


@dataclass
class LangMatrix:
    """A language x language matrix: ``values[i][j]`` for row language i, column language j."""

    path: tuple[str, ...]
    rows: list[str]
    cols: list[str]
    values: list[list[float | None]]

    @property
    def name(self) -> str:
        return " / ".join(self.path) or "matrix"


def _is_matrix_dict(obj: dict) -> bool:
    inner = [v for k, v in obj.items() if is_lang(k)]
    return bool(inner) and all(
        isinstance(v, dict) and any(is_lang(k) for k in v) and all(is_lang(k) or not is_number(x) for k, x in v.items())
        for v in inner
    )


def language_matrices(obj, path: tuple[str, ...] = ()) -> list[LangMatrix]:
    """Every language x language matrix inside ``obj`` (two layouts, see the module docstring)."""
    found: list[LangMatrix] = []
    if not isinstance(obj, dict):
        return found
    if _is_matrix_dict(obj):
        rows = [k for k in obj if is_lang(k)]
        cols: list[str] = []
        for r in rows:
            cols += [c for c in obj[r] if is_lang(c) and c not in cols]
        values = [[float(obj[r][c]) if is_number(obj[r].get(c)) else None for c in cols] for r in rows]
        found.append(LangMatrix(path, rows, cols, values))
        return found
    label_key = next((k for k in LABEL_KEYS if isinstance(obj.get(k), list)), None)
    langs = obj.get(label_key) if label_key else None
    if isinstance(langs, list) and langs and all(isinstance(x, str) for x in langs):
        cols = obj.get("columns") if isinstance(obj.get("columns"), list) else langs
        for key, m in obj.items():  # every list of rows shaped languages x columns
            if _matrix_list(m, len(langs), len(cols)):
                values = [[float(x) if is_number(x) else None for x in row] for row in m]
                found.append(LangMatrix((*path, str(key)), list(langs), [str(c) for c in cols], values))
    for key, val in obj.items():
        if key in SKIP_KEYS or not isinstance(val, dict):
            continue
        found.extend(language_matrices(val, (*path, str(key))))
    return found


def _matrix_list(m, rows: int, cols: int) -> bool:
    return (
        isinstance(m, list)
        and len(m) == rows
        and all(isinstance(r, list) and len(r) == cols for r in m)
        and all(is_number(x) or x is None for r in m for x in r)
        and any(is_number(x) for r in m for x in r)
    )


def find_key(obj, names: tuple[str, ...], depth: int = 4):
    """The first value under any of ``names`` (breadth-first, up to ``depth`` levels)."""
    level = [obj]
    for _ in range(depth):
        nxt = []
        for node in level:
            if not isinstance(node, dict):
                continue
            for name in names:
                if name in node:
                    return node[name]
            nxt += [v for k, v in node.items() if k not in SKIP_KEYS and isinstance(v, dict)]
        level = nxt
    return None
