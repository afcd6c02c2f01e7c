"""A KV cache for decoding many rows: each layer's keys and values in one preallocated buffer.

``buffer_cache(n_layers, capacity)`` is a transformers ``Cache`` of ``BufferLayer``s: a step
writes its column into the buffer in place (a ``DynamicLayer`` concatenates, allocating a new
tensor per step and layer); rows are dropped with ``batch_select_indices`` and ``resize`` drops
leading columns or grows the buffer. Every layer keeps every column, sliding-window layers too:
the model's own sliding mask hides the old ones (exact, as with a plain ``DynamicLayer``).
"""

from __future__ import annotations

import functools

import torch


@functools.cache
def _buffer_layer_class():
    """``BufferLayer``: a full-attention cache layer (a ``DynamicLayer``) whose keys and values live in one
    buffer with room for ``capacity`` columns, so a step writes its column in place where
    ``DynamicLayer`` concatenates (a new allocation per step and layer). It keeps every column; a
    sliding window is the model's own sliding mask over whole rows, as with a plain ``DynamicLayer``."""
    from transformers.cache_utils import DynamicLayer

    class BufferLayer(DynamicLayer):
        def __init__(self, capacity: int):
            super().__init__()
            self.capacity, self.length, self.buffers = capacity, 0, []

        def update(self, key_states, value_states, *args, **kwargs):
            if not self.is_initialized:
                self.lazy_initialization(key_states, value_states)
                b, h = key_states.shape[:2]
                self.buffers = [s.new_empty(b, h, self.capacity, s.shape[-1]) for s in (key_states, value_states)]
            n = key_states.shape[-2]
            for buf, new in zip(self.buffers, (key_states, value_states), strict=True):
                buf[:, :, self.length : self.length + n] = new
            self.length += n
            self._views()
            return self.keys, self.values

        def _views(self):
            self.keys, self.values = (buf[:, :, : self.length] for buf in self.buffers)  # [B, H, length, d]

        def batch_select_indices(self, indices: torch.Tensor) -> None:
            if self.is_initialized:
                self.buffers = [buf[indices] for buf in self.buffers]
                self._views()

        def realign(self, shifts: list[int], length: int) -> None:
            """Move row r's first ``length - shifts[r]`` columns right by ``shifts[r]`` (its later
            columns are dropped; the ones freed on the left are padding, masked by the caller); the
            cache is then ``length`` long."""
            for r, shift in enumerate(shifts):
                if shift:
                    for buf in self.buffers:
                        buf[r, :, shift:length] = buf[r, :, : length - shift].clone()
            self.length = length
            self._views()

        def resize(self, first: int, capacity: int) -> None:
            """Drop the columns before ``first`` and make room for ``capacity`` columns."""
            kept = self.length - first
            grown = [buf.new_empty(*buf.shape[:2], capacity, buf.shape[-1]) for buf in self.buffers]
            for new, old in zip(grown, self.buffers, strict=True):
                new[:, :, :kept] = old[:, :, first : self.length]
            self.buffers, self.capacity, self.length = grown, capacity, kept
            self._views()

    return BufferLayer


def buffer_cache(n_layers: int, capacity: int):
    """A cache of ``BufferLayer``s, one per decoder layer, with room for ``capacity`` columns."""
    from transformers.cache_utils import Cache

    return Cache(layers=[_buffer_layer_class()(capacity) for _ in range(n_layers)])
