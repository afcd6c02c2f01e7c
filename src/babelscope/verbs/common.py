"""What every verb's ``run`` does around its method: the run folder, the model, the seed, the Result."""

from __future__ import annotations

import sys
from pathlib import Path

from babelscope import distributed as dist
from babelscope.models.identity import identity
from babelscope.runs import RunFolder, check_run_name, sanitize
from babelscope.verbs.identity import check_same_run, fingerprint, write_fingerprint
from babelscope.verbs.result import Result


def start_run(config, verb: str, model_name: str | None = None) -> RunFolder:
    """Create and announce ``<output_path>/<model>/<verb>-<UTC time>-<suffix>/`` with config.yaml and
    fingerprint.json (rank 0 creates; under torchrun every rank gets the same folder). An existing
    ``--run_name`` folder is continued only when its fingerprint is the same."""
    name = model_name or getattr(config, "model_name", verb)
    if dist.world_size() > 1:
        path = str(_open_or_create(config, verb, name).path) if dist.is_main() else None
        return RunFolder(Path(dist.gather_objects([path])[0]), verb=verb, config=config.to_dict())
    return _open_or_create(config, verb, name)


def _open_or_create(config, verb: str, name: str) -> RunFolder:
    if config.run_name:
        existing = Path(config.output_path) / sanitize(name) / check_run_name(config.run_name)
        if (existing / "config.yaml").is_file():
            return reopen_run(existing, config, verb, how="--run_name")
    run = RunFolder.create(config.output_path, name, verb, config.to_dict(), run_name=config.run_name)
    write_fingerprint(run, fingerprint(config, verb))
    return run


def reopen_run(path, config, verb: str, how: str = "--resume") -> RunFolder:
    """An interrupted run to continue: only when it was made by the same verb from the same settings,
    data and model (else a one-line error naming the difference); then config.yaml is rewritten."""
    run = RunFolder.open(path)
    new = fingerprint(config, verb)
    check_same_run(run, new, how)
    run.verb, run.config = verb, config.to_dict()
    if dist.is_main():
        print(f"babelscope: resuming run folder {run.path}", file=sys.stderr)
        run.write_config({"verb": verb, **run.config})
        write_fingerprint(run, new)
    return run


def bind_model(run: RunFolder, loaded, revision: str | None = None) -> None:
    """Tell the run folder which model ran (results.json's ``model`` and ``environment``)."""
    run.model = identity(loaded, revision)
    run.device = str(loaded.device)
    run.dtype = str(next(loaded.model.parameters()).dtype).replace("torch.", "")


def seed_everything(seed: int) -> None:
    import random

    import numpy as np
    import torch

    random.seed(seed)
    np.random.seed(seed)
    torch.manual_seed(seed)


def finish(verb: str, run: RunFolder, summary: str = "", exit_code: int = 0, **extras) -> Result:
    """The Result of a verb whose results.json is written (by rank 0: other ranks get an empty document)."""
    results = run.read_json("results.json") if dist.is_main() else {}
    return Result(verb, results, run, summary, exit_code, extras)
