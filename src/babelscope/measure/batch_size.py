"""``--batch_size auto``: the most rows a memory budget holds, as lm-eval's ``auto`` finds the largest
batch that fits, but computed from the model's shape instead of probing until memory runs out (a
CPU process out of memory is killed, not told).

A row of ``T`` tokens holds its KV cache (``2 x layers x KV heads x head dim`` values per token)
and, one layer at a time, its activations (the residual stream and attention projections, the MLP's
gate/up/activation, and eager attention's ``heads x T`` scores per token)::

    auto_rows(loaded, tokens_per_row=1200)   # e.g. 41 on a machine with 10 GiB free, Gemma 3 270M
"""

from __future__ import annotations

import os

import torch

AUTO = "auto"
AUTO_MAX_ROWS = 64  # lm-eval's default max_batch_size for auto
MEMORY_SHARE = 0.5  # of the memory free when the batch is sized
HIDDEN_COPIES = 6  # residual, norm output, q/k/v and attention output: ~6 hidden-sized tensors per token
MLP_COPIES = 3  # gate, up and their product


def free_memory(device: torch.device) -> int:
    """Bytes free on ``device``: CUDA's free memory, else the host's available memory."""
    if device.type == "cuda":
        return int(torch.cuda.mem_get_info(device)[0])
    try:
        import psutil

        return int(psutil.virtual_memory().available)
    except ImportError:  # psutil is optional: the kernel's own estimate
        return os.sysconf("SC_AVPHYS_PAGES") * os.sysconf("SC_PAGE_SIZE")


def bytes_per_row(adapter, dtype: torch.dtype, tokens: int) -> int:
    """Memory one row of ``tokens`` tokens needs: its KV cache plus one layer's activations."""
    size = torch.finfo(dtype).bits // 8 if dtype.is_floating_point else 4
    kv = 2 * adapter.n_layers * adapter.n_kv_heads * adapter.head_dim
    activations = HIDDEN_COPIES * adapter.d_model + MLP_COPIES * adapter.d_mlp + adapter.n_heads * tokens
    return tokens * (kv + activations) * size


def auto_rows(loaded, tokens_per_row: int, budget: int | None = None) -> int:
    """Rows of ``tokens_per_row`` tokens that fit ``budget`` bytes (default: a share of the free memory),
    between 1 and ``AUTO_MAX_ROWS``."""
    param = next(loaded.model.parameters())
    budget = int(MEMORY_SHARE * free_memory(param.device)) if budget is None else budget
    per_row = bytes_per_row(loaded.adapter, param.dtype, max(1, tokens_per_row))
    return max(1, min(AUTO_MAX_ROWS, budget // per_row))
