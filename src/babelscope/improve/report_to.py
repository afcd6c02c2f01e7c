"""``--report_to``: send the training scalars (loss, learning rate, by step) to the trackers
Hugging Face's Trainer reports to: TensorBoard, Weights & Biases, trackio.

``none`` (the default) reports nowhere; a comma list reports to several. TensorBoard writes event
files under ``<run>/tensorboard`` (``torch.utils.tensorboard``, which needs the ``tensorboard``
package: ``pip install 'babelscope[tensorboard]'``). wandb and trackio are used only when they are
installed; their project is ``$WANDB_PROJECT`` / ``$TRACKIO_PROJECT`` or ``babelscope``, the run's
name is the run folder's, and where they write and whether offline follows their own settings
(``WANDB_DIR``, ``WANDB_MODE=offline``), so their logs stay out of the run folder.
Tags follow the Trainer's: ``train/loss``, ``train/learning_rate``.
"""

from __future__ import annotations

import importlib.util
import os
from pathlib import Path

from babelscope.errors import UsageError

TRACKERS = {"tensorboard": "tensorboard", "wandb": "wandb", "trackio": "trackio"}  # name -> package it needs
HELP = "where training scalars go besides results.json: none, or a comma list of tensorboard, wandb, trackio"


def parse_report_to(spec: str | None) -> list[str]:
    """The trackers of ``spec`` (``none`` -> []); one line naming what is wrong or not installed."""
    names = [s.strip().lower() for s in (spec or "none").split(",") if s.strip()]
    if names == ["none"] or not names:
        return []
    for name in names:
        if name not in TRACKERS:
            raise UsageError(f"--report_to {name!r} is not one of none, {', '.join(TRACKERS)}.")
        if importlib.util.find_spec(TRACKERS[name]) is None:
            extra = " (or 'babelscope[tensorboard]')" if name == "tensorboard" else ""
            raise UsageError(f"--report_to {name} needs the `{TRACKERS[name]}` package: "
                             f"pip install {TRACKERS[name]}{extra}, or drop it from --report_to.")
    return list(dict.fromkeys(names))


class Reporter:
    """Scalars by step to every chosen tracker; ``close()`` flushes them (also as a context manager)."""

    def __init__(self, spec: str | None, run_dir, name: str, config: dict | None = None):
        self.names = parse_report_to(spec)
        self._sinks = [_open(n, Path(run_dir), name, config or {}) for n in self.names]

    def log(self, scalars: dict[str, float], step: int) -> None:
        for sink in self._sinks:
            sink.log({k: float(v) for k, v in scalars.items()}, step)

    def close(self) -> None:
        for sink in self._sinks:
            sink.close()
        self._sinks = []

    def __enter__(self) -> Reporter:
        return self

    def __exit__(self, *exc) -> None:
        self.close()


def _open(name: str, run_dir: Path, run_name: str, config: dict):
    if name == "tensorboard":
        return _TensorBoard(run_dir / "tensorboard")
    if name == "wandb":
        import wandb

        run = wandb.init(project=os.environ.get("WANDB_PROJECT", "babelscope"), name=run_name, config=config)
        return _Tracker(run.log, run.finish)
    import trackio

    trackio.init(project=os.environ.get("TRACKIO_PROJECT", "babelscope"), name=run_name, config=config)
    return _Tracker(trackio.log, trackio.finish)


class _TensorBoard:
    def __init__(self, log_dir: Path):
        from torch.utils.tensorboard import SummaryWriter

        self.writer = SummaryWriter(log_dir=str(log_dir))

    def log(self, scalars: dict, step: int) -> None:
        for key, value in scalars.items():
            self.writer.add_scalar(key, value, global_step=step)

    def close(self) -> None:
        self.writer.close()


class _Tracker:
    """wandb's run or trackio's module: ``log(dict, step=...)`` and ``finish()``."""

    def __init__(self, log, finish):
        self._log, self._finish = log, finish

    def log(self, scalars: dict, step: int) -> None:
        self._log(scalars, step=step)

    def close(self) -> None:
        self._finish()
