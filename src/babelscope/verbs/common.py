"""What every verb's ``run`` does around its method: the run folder, the model, the seed, the Result."""

from __future__ import annotations

import sys
from pathlib import Path

from babelscope import distributed as dist
from babelscope.models.identity import identity
from babelscope.runs import RunFolder
from babelscope.verbs.result import Result


def start_run(config, verb: str, model_name: str | None = None) -> RunFolder:
    """Create and announce ``<output_path>/<model>/<verb>-<UTC time>/`` with config.yaml (rank 0 creates;
    under torchrun every rank gets the same folder)."""
    name = model_name or getattr(config, "model_name", verb)
    if dist.world_size() > 1:
        path = None
        if dist.is_main():
            path = str(RunFolder.create(config.output_path, name, verb, config.to_dict(),
                                        run_name=config.run_name).path)
        return RunFolder(Path(dist.gather_objects([path])[0]), verb=verb, config=config.to_dict())
    return RunFolder.create(config.output_path, name, verb, config.to_dict(), run_name=config.run_name)


def reopen_run(path, config, verb: str) -> RunFolder:
    """An interrupted run to continue (``--resume``): its config.yaml is rewritten with ``config``."""
    run = RunFolder.open(path)
    run.verb, run.config = verb, config.to_dict()
    if dist.is_main():
        print(f"babelscope: resuming run folder {run.path}", file=sys.stderr)
        run.write_config({"verb": verb, **run.config})
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
