"""Streaming per-language statistics of MLP neurons (the core of LAPE, ternary neurons and PLAST).

For every decoder layer ``i``, MLP neuron ``j`` and language ``k`` the reducer keeps

* ``over_zero[k, i, j]``: number of counted tokens whose gate output is positive (int64). The
  gate output is the ``blocks.{i}.mlp.hook_pre`` site: the gate projection for gated MLPs
  (SiLU/GELU keep its sign, so this is LAPE's ``act(gate) > 0``), the first half of a fused
  gate_up projection, or the fc1 output of an ungated MLP;
* ``act_sum[k, i, j]``: sum of the gate output over counted tokens (each batch summed in the
  model's dtype, accumulated across batches in float64; mean = sum / tokens);
* ``tokens[k]``: number of counted tokens (int64).

Which tokens count is decided per batch by a boolean ``[B, T]`` mask: all real (non-padding)
tokens, or only answer tokens (the language-neurons paper counts generated answers only). The
state has a fixed size ``K x L x F`` whatever the number of tokens (plus, between a forward pass and
its flush, references to that pass' gate outputs), adds with ``+`` and across
processes with :meth:`NeuronReducer.all_reduce`, and saves to safetensors::

    red = NeuronReducer(["eng_Latn", "fra_Latn"], adapter.n_layers, adapter.d_mlp)
    with red.attach(model):
        for lang, input_ids, attention_mask in batches:
            red.select(lang, attention_mask)          # or attention_mask & answer_mask
            adapter.body(model)(input_ids=input_ids, attention_mask=attention_mask)
    red = red.all_reduce()
    red.probabilities()                               # [L, F, K] activation probability
"""

from __future__ import annotations

import json
from contextlib import contextmanager

import torch

from babelscope.distributed import all_reduce_sum
from babelscope.errors import DataError, UsageError
from babelscope.models.hooks import hooks

SITE = "mlp.hook_pre"  # gate output: positive <=> act(gate) > 0 for SiLU / GELU / ReLU gates


@contextmanager
def _serial(device):
    """One CPU thread for the small reductions of a hook.

    They take about a millisecond, and on a busy machine an OpenMP parallel region waits for its
    slowest thread: with 2 threads on shared cores the same reductions measured 50-100x slower.
    """
    n = torch.get_num_threads()
    if device.type != "cpu" or n == 1:
        yield
        return
    torch.set_num_threads(1)
    try:
        yield
    finally:
        torch.set_num_threads(n)


class NeuronReducer:
    """Per-language counts of positive gate outputs, activation sums and token counts."""

    def __init__(self, languages: list[str], n_layers: int, d_mlp: int, device="cpu", token_selection="all"):
        if len(set(languages)) != len(languages) or not languages:
            raise UsageError(f"NeuronReducer needs distinct languages, got {languages}.")
        self.languages = list(languages)
        self.n_layers, self.d_mlp = int(n_layers), int(d_mlp)
        self.token_selection = token_selection  # "all" or "answer": recorded in the metadata
        k = len(self.languages)
        self.over_zero = torch.zeros(k, n_layers, d_mlp, dtype=torch.int64, device=device)  # [K, L, F]
        self.act_sum = torch.zeros(k, n_layers, d_mlp, dtype=torch.float64, device=device)  # [K, L, F]
        self.tokens = torch.zeros(k, dtype=torch.int64, device=device)  # [K]
        self._lang: int | None = None
        self._mask: torch.Tensor | None = None  # [B, T] bool: tokens of the current batch that count
        self._all = False  # every token of the batch counts (no indexing needed)
        self._pending: list = []  # (layer, gate output [B, T, F]) of the current pass, until flush()

    # ------------------------------------------------------------------------- collection
    def select(self, language: str, mask: torch.Tensor) -> int:
        """Set the language and the counted tokens ``mask`` [B, T] for the next forward pass.

        Returns the number of counted tokens. Padding must be False in ``mask`` (pass the
        attention mask, or the attention mask AND an answer mask).
        """
        if language not in self.languages:
            raise UsageError(f"language {language!r} is not one of this reducer's {self.languages}.")
        self.flush()  # the previous pass belongs to the previous language and mask
        self._lang = self.languages.index(language)
        self._mask = mask.to(device=self.over_zero.device, dtype=torch.bool)
        self._all = bool(self._mask.all())
        n = int(self._mask.sum())
        self.tokens[self._lang] += n
        return n

    def _hook(self, layer: int):
        def fn(pre, site):  # pre: [B, T, F] gate output
            if self._lang is None:
                raise UsageError("NeuronReducer: call select(language, mask) before each forward pass.")
            self._pending.append((layer, pre.detach()))  # folded in by flush(), after the forward pass
            return None

        return fn

    def flush(self) -> None:
        """Fold the gate outputs of the last forward pass into the counts.

        Done once per pass, on one CPU thread: these reductions take milliseconds, and on a busy
        machine each extra OpenMP parallel region (or thread-count switch) inside the forward pass
        waits for a descheduled thread; batching them after the pass keeps the forward undisturbed.
        """
        if not self._pending:
            return
        with _serial(self._pending[0][1].device):
            for layer, pre in self._pending:
                x = pre.reshape(-1, pre.shape[-1]) if self._all else pre[self._mask]  # [N, F] counted tokens
                self.over_zero[self._lang, layer] += (x > 0).sum(0)  # [F] int64
                self.act_sum[self._lang, layer] += x.sum(0).double()  # [F]: batch sum, float64 across batches
        self._pending.clear()

    def hook_fns(self) -> dict:
        """``{site: fn}`` for :func:`babelscope.models.hooks.hooks` (one per layer)."""
        return {f"blocks.{i}.{SITE}": self._hook(i) for i in range(self.n_layers)}

    @contextmanager
    def attach(self, model):
        """Register the counting hooks on ``model`` for the body of the ``with`` block."""
        with hooks(model, self.hook_fns()):
            yield self
        self.flush()
        self._lang, self._mask = None, None

    # ------------------------------------------------------------------------- combination
    def _check_compatible(self, other: NeuronReducer) -> None:
        if (other.languages, other.n_layers, other.d_mlp) != (self.languages, self.n_layers, self.d_mlp):
            raise UsageError(
                "cannot add neuron statistics with different languages or shapes: "
                f"{self.languages} {self.n_layers}x{self.d_mlp} vs "
                f"{other.languages} {other.n_layers}x{other.d_mlp}."
            )

    def add(self, other: NeuronReducer) -> NeuronReducer:
        """Add ``other`` into this reducer (in place) and return it."""
        self._check_compatible(other)
        self.flush()
        other.flush()
        self.over_zero += other.over_zero.to(self.over_zero.device)
        self.act_sum += other.act_sum.to(self.act_sum.device)
        self.tokens += other.tokens.to(self.tokens.device)
        return self

    def __add__(self, other: NeuronReducer) -> NeuronReducer:
        return self.copy().add(other)

    def copy(self) -> NeuronReducer:
        self.flush()
        out = NeuronReducer(self.languages, self.n_layers, self.d_mlp, self.over_zero.device, self.token_selection)
        out.over_zero, out.act_sum, out.tokens = self.over_zero.clone(), self.act_sum.clone(), self.tokens.clone()
        return out

    def all_reduce(self) -> NeuronReducer:
        """Sum the state over all processes (torchrun / accelerate); identity on one process."""
        summed = all_reduce_sum(self.state())
        self.over_zero, self.act_sum, self.tokens = summed["over_zero"], summed["act_sum"], summed["tokens"]
        return self

    def subset(self, languages: list[str]) -> NeuronReducer:
        """The statistics of some languages only (in the given order)."""
        self.flush()
        idx = [self.languages.index(lang) for lang in languages]
        out = NeuronReducer(languages, self.n_layers, self.d_mlp, self.over_zero.device, self.token_selection)
        out.over_zero, out.act_sum, out.tokens = self.over_zero[idx], self.act_sum[idx], self.tokens[idx]
        return out

    # ------------------------------------------------------------------------- results
    def _check_tokens(self) -> None:
        empty = [lang for lang, n in zip(self.languages, self.tokens.tolist(), strict=True) if n == 0]
        if empty:
            raise DataError(f"no tokens were counted for {', '.join(empty)}; give text in these languages.")

    def probabilities(self) -> torch.Tensor:
        """Activation probability ``P[i, j, k]`` = share of language k's tokens with gate_j > 0."""
        self.flush()
        self._check_tokens()
        p = self.over_zero.double() / self.tokens.double()[:, None, None]  # [K, L, F]
        return p.permute(1, 2, 0).contiguous()  # [L, F, K]

    def mean_activation(self) -> torch.Tensor:
        """Mean gate output ``[L, F, K]`` over counted tokens."""
        self.flush()
        self._check_tokens()
        return (self.act_sum / self.tokens.double()[:, None, None]).permute(1, 2, 0).contiguous()

    def state(self) -> dict[str, torch.Tensor]:
        self.flush()
        return {"over_zero": self.over_zero, "act_sum": self.act_sum, "tokens": self.tokens}

    def metadata(self) -> dict:
        return {
            "languages": self.languages,
            "axes": {
                "over_zero": ["language", "layer", "neuron"],
                "act_sum": ["language", "layer", "neuron"],
                "tokens": ["language"],
            },
            "site": SITE,
            "token_selection": self.token_selection,
            "n_layers": self.n_layers,
            "d_mlp": self.d_mlp,
        }

    def save(self, path, extra_metadata: dict | None = None) -> None:
        """Write the state to a safetensors file (atomic); languages and axes in the metadata."""
        import os

        from safetensors.torch import save_file

        meta = {**self.metadata(), **(extra_metadata or {})}
        meta = {k: v if isinstance(v, str) else json.dumps(v) for k, v in meta.items()}
        tmp = f"{path}.tmp"
        save_file({k: v.detach().cpu().contiguous() for k, v in self.state().items()}, tmp, metadata=meta)
        os.replace(tmp, path)

    @classmethod
    def load(cls, path) -> NeuronReducer:
        """Read a file written by :meth:`save`."""
        from safetensors import safe_open

        try:
            with safe_open(str(path), framework="pt") as f:
                meta = {k: json.loads(v) if v[:1] in "[{0123456789" else v for k, v in (f.metadata() or {}).items()}
                state = {k: f.get_tensor(k) for k in f.keys()}
        except (OSError, ValueError) as exc:
            raise DataError(f"cannot read neuron statistics {path}: {exc}") from None
        if set(state) != {"over_zero", "act_sum", "tokens"} or "languages" not in meta:
            raise DataError(f"{path} is not a neuron-statistics file (written by NeuronReducer.save).")
        k, n_layers, d_mlp = state["over_zero"].shape
        out = cls(meta["languages"], n_layers, d_mlp, token_selection=meta.get("token_selection", "all"))
        out.over_zero, out.act_sum, out.tokens = state["over_zero"], state["act_sum"], state["tokens"]
        return out
