"""Run identity: what a run was made from, so ``--resume`` and a reused ``--run_name`` continue only
the same run.

The fingerprint holds the verb, every setting that changes results (not where the folder goes or
how fast it runs) and a SHA-256 of every local file or model folder the settings name (task
files, corpora, recipes, model weights). It is stored as ``fingerprint.json`` in the run folder.
"""

from __future__ import annotations

import hashlib
from pathlib import Path

from babelscope.errors import UsageError
from babelscope.models.identity import file_hash
from babelscope.runs import RunFolder, atomic_write_json, redact

NOT_RESULTS = {"output_path", "run_name", "resume", "device", "batch_size", "task_data", "log_samples"}  # where, how


def _local_paths(value) -> list[str]:
    """Pieces of a setting (comma lists, key=value parts) that name existing local files or folders."""
    if not isinstance(value, str):
        return []
    pieces = [p.split("=", 1)[-1].strip() for p in value.split(",")]
    return [p for p in pieces if p and Path(p).expanduser().exists()]


def _hash(path: str) -> str:
    """A model folder: ``file_hash`` (memoised by size and mtime, its weights are large). A data file:
    its content, hashed every time, so an edit that keeps size and mtime is still seen."""
    p = Path(path).expanduser()
    if p.is_dir():
        return file_hash(p) or ""
    digest = hashlib.sha256()
    with open(p, "rb") as f:
        while block := f.read(1 << 22):
            digest.update(block)
    return digest.hexdigest()


def fingerprint(config, verb: str) -> dict:
    """Paths are written as in config.yaml (the home folder as ~), so the two compare equal."""
    skip = NOT_RESULTS | set(getattr(config, "RERUN_IN_PLACE", ()))  # settings a verb may change in place
    settings = {k: v for k, v in config.to_dict().items() if k not in skip}
    files = {p: _hash(p) for v in settings.values() for p in _local_paths(v)}
    return redact({"verb": verb, "settings": settings, "files": files})


def difference(old: dict, new: dict) -> str:
    """The first way ``new`` differs from ``old`` in words ("" when they are the same run)."""
    if old.get("verb") != new["verb"]:
        return f"it was made by `{old.get('verb')}`, not `{new['verb']}`"
    before, now = old.get("settings", {}), new["settings"]
    for key in sorted(set(before) & set(now)):
        if before[key] != now[key]:
            return f"--{key} was {before[key]!r} and is now {now[key]!r}"
    for name in sorted(set(old.get("files", {})) & set(new["files"])):
        if old["files"][name] != new["files"][name]:
            return f"{name} changed since the run was made (sha256 {old['files'][name][:12]} -> " \
                   f"{new['files'][name][:12]})"
    for key in sorted(set(now) - set(before)):
        if now[key] not in (None, "", False):
            return f"--{key} {now[key]!r} was not set when the run was made"
    return ""


def check_same_run(run: RunFolder, new: dict, how: str) -> None:
    """Stop with one line when ``run`` was made from other settings, data or model than ``new``."""
    path = run.path / "fingerprint.json"
    if path.is_file():
        old = run.read_json("fingerprint.json")
    elif (run.path / "config.yaml").is_file():  # a run of an older babelscope: compare its settings
        config = run.read_config()
        old = {"verb": config.pop("verb", new["verb"]), "settings": config, "files": {}}
    else:
        raise UsageError(f"{how} {run.path}: not a babelscope run folder (no config.yaml)")
    why = difference(old, new)
    if why:
        raise UsageError(f"{how} {run.path}: not the same run: {why}; start a new run instead (drop {how})")


def write_fingerprint(run: RunFolder, print_: dict) -> None:
    atomic_write_json(run.path / "fingerprint.json", print_)
