"""Run folders: ``<output_path>/<model>/<verb>-<UTC time>/`` with atomic writers.

Layout (DESIGN.md): ``config.yaml`` (re-runnable with ``--config``), ``results.json`` (metrics,
environment, versions), ``samples/<task>.<language>.jsonl`` (per-item records),
``artifacts/*.safetensors`` (named axes and languages in the metadata) and ``README.md``.
"""

from __future__ import annotations

import datetime as _dt
import json
import os
import platform
import re
import secrets
import shutil
import sys
import tempfile
import time
from contextlib import contextmanager
from dataclasses import dataclass, field
from importlib import metadata as _md
from pathlib import Path

from babelscope import schema
from babelscope.errors import UsageError

DEFAULT_OUTPUT = "runs"  # where run folders go when --output_path is not given
_VERSIONED = ("babelscope", "torch", "transformers", "tokenizers", "safetensors", "accelerate",
              "peft", "lm_eval", "mergekit", "ladybug", "numpy")


_UMASK = os.umask(0o022)  # read once at import (os.umask can only be read by setting it)
os.umask(_UMASK)


def cache_dir() -> Path:
    """Folder for converted models and built databases (``BABELSCOPE_CACHE`` or the user cache)."""
    env = os.environ.get("BABELSCOPE_CACHE")
    if env:
        path = Path(env)
    else:
        import platformdirs

        path = Path(platformdirs.user_cache_dir("babelscope"))
    path.mkdir(parents=True, exist_ok=True)
    return path


@contextmanager
def cache_lock(target: Path):
    """Exclusive lock beside ``target``, so concurrent first uses (test workers, torchrun ranks)
    build a cache entry once."""
    import fcntl

    target.parent.mkdir(parents=True, exist_ok=True)
    with open(target.with_name(target.name + ".build-lock"), "w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        yield


def build_cached(target: Path, build, rebuild: bool = False) -> Path:
    """A cache entry (file or folder) built once: ``build(tmp)`` fills a temporary sibling, which is
    renamed into place under the lock, then a ``<name>.complete`` marker is written. An entry
    without its marker (a build that was killed, or an older layout) is removed and rebuilt."""
    target = Path(target)
    marker = target.with_name(target.name + ".complete")
    if marker.exists() and target.exists() and not rebuild:
        return target
    with cache_lock(target):
        if marker.exists() and target.exists() and not rebuild:
            return target
        marker.unlink(missing_ok=True)
        tmp = target.with_name(f".{target.name}.building-{os.getpid()}")
        _remove_path(tmp)
        try:
            build(tmp)
            _remove_path(target)
            os.replace(tmp, target)
        finally:
            _remove_path(tmp)
        marker.write_text("", encoding="utf-8")
    return target


def _remove_path(path: Path) -> None:
    if path.is_dir() and not path.is_symlink():
        shutil.rmtree(path)
    elif path.exists() or path.is_symlink():
        path.unlink()


def read_yaml_mapping(path, what: str, hint: str = "key: value") -> dict:
    """The YAML mapping in ``path`` (UTF-8, a BOM allowed); a missing, binary, malformed or
    non-mapping file is a one-line UsageError that starts with ``what`` (e.g. "--config")."""
    import yaml

    try:
        with open(path, encoding="utf-8-sig") as f:
            values = yaml.safe_load(f)
    except OSError as exc:
        raise UsageError(f"cannot read {what} {path}: {exc.strerror}") from None
    except UnicodeDecodeError:
        raise UsageError(f"{what} {path} is not UTF-8 text; pass a YAML file") from None
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        where = f" line {mark.line + 1}" if mark else ""
        raise UsageError(f"{what} {path}{where}: not valid YAML ({getattr(exc, 'problem', exc)})") from None
    if values is None:
        return {}
    if not isinstance(values, dict):
        raise UsageError(f"{what} {path} must be a YAML mapping ({hint}), not a {type(values).__name__}")
    return values


def _json_default(obj):
    if hasattr(obj, "tolist"):
        return obj.tolist()
    if hasattr(obj, "item"):
        return obj.item()
    if isinstance(obj, (set, tuple)):
        return list(obj)
    if isinstance(obj, Path):
        return str(obj)
    raise TypeError(f"cannot write {type(obj).__name__} to JSON")


def atomic_write_text(path, text: str) -> Path:
    """Write ``text`` to ``path`` through a temporary file and a rename (never half-written)."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    try:
        with os.fdopen(fd, "w", encoding="utf-8") as f:
            f.write(text)
        os.chmod(tmp, 0o666 & ~_UMASK)  # mkstemp makes 0600; give the file the usual mode
        os.replace(tmp, path)
    except BaseException:
        if os.path.exists(tmp):
            os.unlink(tmp)
        raise
    return path


def dumps(obj) -> str:
    """JSON as babelscope writes it (UTF-8, indented, numpy/torch scalars allowed)."""
    return json.dumps(obj, indent=2, ensure_ascii=False, default=_json_default) + "\n"


def atomic_write_json(path, obj) -> Path:
    return atomic_write_text(path, dumps(obj))


def sanitize(name: str) -> str:
    """A model name or path as a short folder name (``google/gemma-3-270m`` -> ``google__gemma-3-270m``)."""
    name = str(name).rstrip("/\\")
    if os.path.sep in name and os.path.exists(name):
        name = os.path.basename(name)
    name = re.sub(r"[^A-Za-z0-9._-]+", "__", name).strip("_.")
    return (name or "model")[:80]


SAFE_RUN_NAME = re.compile(r"[A-Za-z0-9][A-Za-z0-9._-]{0,127}")
_URL_CREDENTIALS = re.compile(r"(?P<scheme>[A-Za-z][A-Za-z0-9+.-]*://)[^/@\s]+@")
CREATED: list[Path] = []  # run folders this process created (a failed verb removes those left empty)


def check_run_name(name: str) -> str:
    """``--run_name`` is one safe path component (no ``/``, ``..``, absolute paths or hidden names)."""
    if not SAFE_RUN_NAME.fullmatch(name or "") or name.strip(".") == "":
        raise UsageError(f"--run_name {name!r} must be a single folder name of letters, digits, '.', '_' or '-' "
                         "(no '/', '..' or absolute paths), at most 128 characters.")
    return name


def redact(value):
    """Strings, lists and dicts with URL credentials hidden and the home folder written as ``~``."""
    if isinstance(value, str):
        text = _URL_CREDENTIALS.sub(lambda m: m["scheme"] + "***@", value)
        home = os.path.expanduser("~")
        if home not in ("", "/") and home in text:
            text = re.sub(re.escape(home) + r"(?=/|\\|$|[\s,;:'\"])", "~", text)
        return text
    if isinstance(value, dict):
        return {redact(k): redact(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [redact(v) for v in value]
    return value


def environment(device: str | None = None, dtype: str | None = None) -> dict:
    """Versions, device, dtype, Python, platform and threads, for results.json."""
    versions = {}
    for pkg in _VERSIONED:
        try:
            versions[pkg] = _md.version(pkg)
        except _md.PackageNotFoundError:
            pass
    env = {"babelscope": versions.get("babelscope", ""), "torch": versions.get("torch"),
           "transformers": versions.get("transformers"), "device": device, "dtype": dtype,
           "python": sys.version.split()[0], "platform": platform.platform(),
           "cpu_count": os.cpu_count(), "versions": versions}
    if "torch" in sys.modules:
        torch = sys.modules["torch"]
        env["torch_threads"] = torch.get_num_threads()
        env["cuda"] = torch.cuda.is_available()
    return env


def utc_stamp() -> str:
    return _dt.datetime.now(_dt.UTC).strftime("%Y%m%dT%H%M%SZ")


def utc_iso() -> str:
    return _dt.datetime.now(_dt.UTC).isoformat(timespec="seconds")


def _exclusive(parent: Path, run_name: str | None, verb: str) -> Path:
    """A new folder under ``parent``: ``run_name`` (which may exist already: the caller checks its
    fingerprint) or ``<verb>-<UTC second>-<random suffix>``, created with an exclusive mkdir."""
    if run_name:
        path = parent / run_name
        path.mkdir(exist_ok=True)
        return path
    while True:
        path = parent / f"{verb}-{utc_stamp()}-{secrets.token_hex(3)}"
        try:
            path.mkdir()
            return path
        except FileExistsError:
            continue


@dataclass
class RunFolder:
    """One run's folder; every writer is atomic.

    The verb layer tells the folder what the envelope of results.json needs (``verb``,
    ``config``, ``model``, ``languages``); ``write_results(payload)`` then writes
    ``{envelope..., payload...}`` (see ``babelscope.schema``).
    """

    path: Path
    verb: str = ""
    config: dict = field(default_factory=dict)
    model: dict | None = None  # {name, source, revision, file_hash, ...}
    languages: list = field(default_factory=list)
    device: str | None = None
    dtype: str | None = None
    started: str = field(default_factory=utc_iso)
    _t0: float = field(default_factory=time.monotonic, repr=False)

    @classmethod
    def create(cls, output_path, model_name: str, verb: str, config: dict | None = None,
               run_name: str | None = None, announce: bool = True) -> RunFolder:
        """Make ``<output_path>/<model>/<run_name or verb-UTC-suffix>/`` (exclusive create: two runs
        started in the same second get two folders), write config.yaml, print it."""
        parent = Path(output_path or DEFAULT_OUTPUT) / sanitize(model_name)
        try:
            parent.mkdir(parents=True, exist_ok=True)
            path = _exclusive(parent, check_run_name(run_name) if run_name else None, verb)
        except OSError as exc:
            raise UsageError(f"cannot create a run folder under {parent}: {exc.strerror}; pass a writable "
                             "--output_path") from None
        CREATED.append(path)
        run = cls(path, verb=verb, config=dict(config or {}))
        if config is not None:
            run.write_config({"verb": verb, **config})
        if announce:
            print(f"babelscope: run folder {path}", file=sys.stderr, flush=True)
        return run

    @classmethod
    def open(cls, path) -> RunFolder:
        """An existing run folder (for rescore, report, compare)."""
        path = Path(path)
        if not path.is_dir():
            raise UsageError(f"run folder {path} does not exist; pass a folder that a babelscope verb wrote.")
        return cls(path)

    def discard_if_empty(self) -> bool:
        """Remove the folder when it holds nothing but its config (a verb that failed before any result)."""
        left = {p.name for p in self.path.iterdir()} if self.path.is_dir() else set()
        if left <= {"config.yaml", "fingerprint.json"}:
            for name in left:
                (self.path / name).unlink()
            self.path.rmdir()
            if not any(self.path.parent.iterdir()):  # the model's folder, when this run was its only one
                self.path.parent.rmdir()
            return True
        return False

    # writers -------------------------------------------------------------------------------
    def write_config(self, config: dict) -> Path:
        import yaml

        clean = redact(json.loads(dumps(config)))  # plain types only, so the YAML re-reads as flags
        return atomic_write_text(self.path / "config.yaml", yaml.safe_dump(clean, sort_keys=False,
                                                                            allow_unicode=True))

    def write_json(self, relpath: str, obj) -> Path:
        return atomic_write_json(self.path / relpath, obj)

    def write_results(self, payload: dict) -> Path:
        """results.json: the common envelope (``babelscope.schema``) followed by the verb's payload."""
        model = {**(payload.get("model") or {}), **(self.model or {})} or None
        languages = self.languages or payload.get("languages") or []
        doc = schema.envelope(
            self.verb or payload.get("verb", ""), model=model, languages=languages,
            config=self.config or payload.get("config") or {}, environment=environment(self.device, self.dtype),
            started=self.started, seconds=time.monotonic() - self._t0)
        doc.update({k: v for k, v in payload.items() if k not in schema.ENVELOPE_KEYS})
        return self.write_json("results.json", redact(json.loads(dumps(doc))))

    def write_samples(self, task: str, language: str, records) -> Path:
        text = "".join(json.dumps(r, ensure_ascii=False, default=_json_default) + "\n" for r in records)
        return atomic_write_text(self.path / "samples" / f"{task}.{language}.jsonl", text)

    def save_tensors(self, relpath: str, tensors: dict, metadata: dict | None = None) -> Path:
        """safetensors with string metadata (lists and dicts stored as JSON strings)."""
        from safetensors.torch import save_file

        meta = {k: v if isinstance(v, str) else json.dumps(v, default=_json_default)
                for k, v in (metadata or {}).items()}
        target = self.path / relpath
        target.parent.mkdir(parents=True, exist_ok=True)
        tmp = target.with_name(f".{target.name}.tmp")
        save_file({k: v.contiguous() for k, v in tensors.items()}, str(tmp), metadata=meta)
        os.replace(tmp, target)
        return target

    def write_readme(self, text: str) -> Path:
        return atomic_write_text(self.path / "README.md", redact(text))

    # readers -------------------------------------------------------------------------------
    def read_json(self, relpath: str):
        with open(self.path / relpath, encoding="utf-8") as f:
            return json.load(f)

    def read_config(self) -> dict:
        import yaml

        with open(self.path / "config.yaml", encoding="utf-8") as f:
            return yaml.safe_load(f) or {}

    def read_samples(self, task: str, language: str) -> list[dict]:
        path = self.path / "samples" / f"{task}.{language}.jsonl"
        if not path.exists():
            return []
        with open(path, encoding="utf-8") as f:
            return [json.loads(line) for line in f if line.strip()]

    def load_tensors(self, relpath: str):
        """(tensors, metadata) with JSON metadata values decoded."""
        from safetensors import safe_open

        tensors, meta = {}, {}
        with safe_open(str(self.path / relpath), framework="pt") as f:
            for key in f.keys():
                tensors[key] = f.get_tensor(key)
            for k, v in (f.metadata() or {}).items():
                try:
                    meta[k] = json.loads(v)
                except ValueError:
                    meta[k] = v
        return tensors, meta
