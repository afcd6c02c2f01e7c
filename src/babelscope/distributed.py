"""Data parallelism under ``torchrun`` / ``accelerate launch``: shard items, add up reducers.

On one process every function is a no-op, so code paths are the same. On CPU, ``torchrun
--nproc_per_node 2 -m babelscope ...`` uses the gloo backend::

    items = shard(items)                 # this rank's share, round-robin (deterministic)
    sums = all_reduce_sum(sums)          # tensors added across ranks
    records = gather_objects(records)    # rank 0 gets every rank's list, concatenated
"""

from __future__ import annotations

import os


def world_size() -> int:
    return int(os.environ.get("WORLD_SIZE", "1"))


def rank() -> int:
    return int(os.environ.get("RANK", "0"))


def is_main() -> bool:
    return rank() == 0


def init() -> bool:
    """Start the process group when launched with several processes; True when distributed."""
    if world_size() <= 1:
        return False
    import torch.distributed as dist

    if not dist.is_initialized():
        import torch

        backend = "nccl" if torch.cuda.is_available() else "gloo"
        dist.init_process_group(backend=backend)
        if backend == "nccl":
            torch.cuda.set_device(int(os.environ.get("LOCAL_RANK", "0")))
    return True


def shard(items: list) -> list:
    """This rank's items: every ``world_size``-th item starting at ``rank`` (order kept)."""
    if world_size() <= 1:
        return list(items)
    init()
    return list(items)[rank()::world_size()]


def all_reduce_sum(tensors: dict) -> dict:
    """Add each tensor across ranks (in place on a copy); identity on one process."""
    if world_size() <= 1:
        return tensors
    import torch.distributed as dist

    init()
    out = {}
    for key in sorted(tensors):  # same order on every rank
        t = tensors[key].clone()
        dist.all_reduce(t, op=dist.ReduceOp.SUM)
        out[key] = t
    return out


def gather_objects(obj: list) -> list:
    """Every rank's list concatenated in rank order, on every rank."""
    if world_size() <= 1:
        return obj
    import torch.distributed as dist

    init()
    parts = [None] * world_size()
    dist.all_gather_object(parts, obj)
    return [x for part in parts for x in part]


def barrier() -> None:
    if world_size() > 1:
        import torch.distributed as dist

        init()
        dist.barrier()
