"""Exact greedy argmax over a large vocabulary: an int8 screen, float32 only where it cannot decide.

A decoding step's argmax reads the whole output projection W [V, D] (Gemma 3: 262,144 x 640,
670 MB in float32) for a few positions. ``Int8Screen`` splits the hidden dimensions in two: the
few ``outliers`` (the channels where the final hidden states are largest, 10x the rest on
Gemma 3) stay float32, and the others are int8 on both sides: weight rows ŵ_v = scale_v q_v
(symmetric, per row) and each hidden state on a 7-bit grid ĥ = s k (k integers in [-63, 63],
s = max |h| / 63 over that position's non-outlier channels). fbgemm's int8 kernel computes the
products q_v . k exactly, and for every vocabulary row (Cauchy-Schwarz)

    |w_v . h - (ŵ_v . ĥ + outliers)|  <=  ||w_v - ŵ_v|| ||ĥ|| + ||w_v|| ||h - ĥ||  (+ rounding slack)

with the norms over the int8 channels. A row whose upper bound lies below the best lower bound
cannot be the argmax; on Gemma 3 a few rows per position survive (median 19, mean 35 of 262,144
on few-shot prompts in four languages), and only those are computed in float32, as the blocks
would compute them. So the answer is the float32 argmax (first maximum on ties), not an
approximation: the screen only decides which rows are not worth computing, with a bound that
holds for any weights and inputs. Which channels are outliers (those where the hidden states of
the head's first calls were largest) changes how many rows survive, never the answer.

Why 7 bits: fbgemm's dynamic kernel quantizes its float input per tensor with ``reduce_range``
(values 0..127), which keeps its int16 pair sums from saturating on AVX2; integer inputs with
one extra row holding -64 and 63 are exactly its grid (scale 1, zero point 64), so nothing is
lost there. A self-check at preparation compares the kernel with exact products, extremes
included; without a passing kernel the caller keeps the float32 blocks.
"""

from __future__ import annotations

import warnings
import weakref
from concurrent.futures import ThreadPoolExecutor

import torch

LEVEL = 63  # |k| <= 63: the 7-bit grid fbgemm's reduce_range input keeps exact
OUTLIERS = 32  # hidden channels kept in float32 (at most an eighth of them)
MIN_WEIGHTS = 1 << 22  # heads with fewer weights (V x D) keep the float32 blocks: nothing to gain
BLOCK = 16384  # vocabulary rows per kernel call: a [P, BLOCK] slab stays in cache while it is screened
MIN_STEP = 1e-20  # keeps logits / step finite for states that are zero outside the outliers
ROUNDING = 4 * 2.0**-24  # per hidden dimension: float32 dot products err by at most D u ||w|| ||h|| each

AFTER_CALLS = 16  # argmax calls on a head before its screen is prepared (about 2 s for Gemma 3's)

_screens: weakref.WeakKeyDictionary = weakref.WeakKeyDictionary()  # lm_head -> (key, calls, screen, channel max)


class Int8Screen:
    """The int8 copy of an output projection, its float32 outlier columns, and the per-row norms
    its bound needs; the outliers are the channels with the largest ``channel_max`` [D] (the
    largest |h| seen in each)."""

    def __init__(self, weight: torch.Tensor, channel_max: torch.Tensor):
        V, D = weight.shape
        self.outliers = channel_max.topk(min(OUTLIERS, D // 8)).indices.sort().values  # [m]
        self.outlier_weight = weight[:, self.outliers].float().contiguous()  # [V, m]
        with ThreadPoolExecutor(max(1, torch.get_num_threads())) as pool:  # fbgemm packs on one core
            blocks = list(pool.map(lambda v: self._block(weight[v : v + BLOCK]), range(0, V, BLOCK)))
        self.scale, self.err, self.norm = (torch.cat(parts) for parts in list(zip(*blocks))[:3])  # [V] each
        self.packed = [b[3] for b in blocks]
        self.err_max, self.norm_max = float(self.err.max()), float(self.norm.max())
        self.rounding = ROUNDING * D * max(b[4] for b in blocks)  # x ||h||: a float32 logit's error
        self._check(weight[:BLOCK])

    def _block(self, w: torch.Tensor):
        """Row scales, norms ||w_v|| and errors ||w_v - ŵ_v|| (both rounded up), packed int8 rows and
        the largest full row norm of the weight rows ``w`` [n, D]."""
        full_norm = float(w.float().norm(dim=1).max())
        rest, scale, q = self._int8(w)  # [n, D], [n], [n, D]
        norm = rest.norm(dim=1).mul_(1 + 1e-4)  # [n]
        err = rest.sub_(q * scale[:, None]).norm(dim=1).mul_(1 + 1e-4)  # [n]
        return scale, err, norm, _pack(q.to(torch.int8)), full_norm

    def _int8(self, w: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        """The int8 part of weight rows ``w`` [n, D] (outlier columns zero), its row scales [n] and
        its integers q [n, D] (as floats in [-127, 127])."""
        rest = w.float().index_fill(1, self.outliers, 0.0)  # [n, D]
        scale = rest.abs().amax(1).clamp_(min=torch.finfo(torch.float32).tiny).div_(127)  # [n]
        return rest, scale, rest.div(scale[:, None]).round_().clamp_(-127, 127)

    def _check(self, w: torch.Tensor) -> None:
        """Raise unless the kernel returns the integer products of the first block's rows (exact below
        2^24, else rounded once), saturating extremes included."""
        q = self._int8(w)[2]  # [n, D]
        gen = torch.Generator().manual_seed(0)
        k = torch.randint(-LEVEL, LEVEL + 1, (4, q.shape[1]), generator=gen).float()  # [4, D]
        k[0], k[1] = LEVEL, -LEVEL  # all-extreme rows: the largest pair sums there are
        want = torch.mm(k.double(), q.double().t())  # [4, n] exact
        if not ((_products(self.packed[0], k).double() - want).abs() <= want.abs() * 2.0**-24).all():
            raise RuntimeError("the int8 kernel does not return exact products")

    def candidates(self, hidden: torch.Tensor, bias: torch.Tensor | None) -> tuple[torch.Tensor, torch.Tensor]:
        """The vocabulary rows that may hold each position's maximum: ``rows`` [C] (ascending) and
        ``mask`` [C, P] (row c may be position p's argmax). ``hidden``: [P, D] float32, finite."""
        P = hidden.shape[0]
        rest = hidden.index_fill(1, self.outliers, 0.0)  # [P, D] the int8 part
        step = rest.abs().amax(1, keepdim=True).clamp(min=MIN_STEP) / LEVEL  # [P, 1] (z below is in steps)
        k = (rest / step).round_().clamp_(-LEVEL, LEVEL)  # [P, D]
        grid = k * step  # [P, D] ĥ
        h_norm, e_norm = grid.norm(dim=1), (rest - grid).norm(dim=1)  # [P], [P]
        slack = self.rounding * hidden.norm(dim=1)  # [P]
        widest = (self.err_max * h_norm + self.norm_max * e_norm + slack) / step[:, 0]  # [P] any row's bound / step
        outliers = hidden[:, self.outliers] / step  # [P, m]
        pos, row, value, top = [], [], [], torch.full((P, 1), -torch.inf)
        for b, packed in enumerate(self.packed):
            v = b * BLOCK
            z = torch.mm(outliers, self.outlier_weight[v : v + BLOCK].t())  # [P, n]
            z.addcmul_(_products(packed, k), self.scale[v : v + BLOCK])  # [P, n] approximate logits / step
            if bias is not None:
                z += bias[v : v + BLOCK] / step
            top = torch.maximum(top, z.amax(1, keepdim=True))  # [P, 1] best so far
            p, r = (z >= top - 2 * widest[:, None]).nonzero(as_tuple=True)  # a superset: ``top`` only grows
            pos.append(p), row.append(r + v), value.append(z[p, r])
        pos, row, value = torch.cat(pos), torch.cat(row), torch.cat(value) * step[torch.cat(pos), 0]  # [N]
        bound = self.err[row] * h_norm[pos] + self.norm[row] * e_norm[pos] + slack[pos]  # [N] each row's own
        best_low = torch.full((P,), -torch.inf).scatter_reduce(0, pos, value - bound, "amax")  # [P]
        keep = value + bound >= best_low[pos]  # [N]
        rows, slot = torch.unique(row[keep], return_inverse=True)  # [C], [N kept]
        mask = torch.zeros(rows.shape[0], P, dtype=torch.bool)  # [C, P]
        mask[slot, pos[keep]] = True
        return rows, mask


def _pack(q: torch.Tensor):
    """fbgemm's packed form of int8 rows ``q`` [n, K] (scale 1: the kernel returns integer products)."""
    with warnings.catch_warnings():  # torch marks quantized tensors deprecated; the kernel is checked
        warnings.simplefilter("ignore")
        return torch.ops.quantized.linear_prepack(torch._make_per_tensor_quantized_tensor(q, 1.0, 0), None)


def _products(packed, k: torch.Tensor) -> torch.Tensor:
    """``q_v . k_p`` for integer rows ``k`` [P, K] in [-63, 63]: [P, n]. One more input row
    holds -64 and 63, so the kernel's per-tensor input grid is exactly the integers (scale 1)."""
    extra = k.new_zeros(1, k.shape[1])
    extra[0, 0], extra[0, -1] = -LEVEL - 1, LEVEL
    return torch.ops.quantized.linear_dynamic(torch.cat([k, extra]), packed, True)[: k.shape[0]]


def screen_of(lm_head: torch.nn.Module, hidden: torch.Tensor) -> Int8Screen | None:
    """The screen of a plain float32 CPU ``nn.Linear`` head of at least ``MIN_WEIGHTS`` weights,
    prepared at the head's ``AFTER_CALLS``-th argmax (short runs never pay for it; the states
    [P, D] of the calls up to then pick its outlier channels) and again after the weight changes;
    None until then and where there is none (the caller uses float32 blocks)."""
    weight = lm_head.weight
    if (type(lm_head) is not torch.nn.Linear or weight.dtype != torch.float32 or weight.device.type != "cpu"
            or weight.numel() < MIN_WEIGHTS or weight.shape[1] < 16):
        return None
    key = (weight.data_ptr(), _version(weight), tuple(weight.shape))
    seen = _screens.get(lm_head)
    calls, screen, channel_max = (seen[1] + 1, *seen[2:]) if seen is not None and seen[0] == key else (1, None, 0)
    if calls <= AFTER_CALLS:  # the states that pick the outlier channels
        channel_max = torch.maximum(hidden.detach().abs().amax(0), torch.as_tensor(channel_max))  # [D]
    if calls == AFTER_CALLS:
        try:
            screen = Int8Screen(weight.detach(), channel_max)
        except (RuntimeError, NotImplementedError, AttributeError):  # no int8 kernel, or one that is not exact
            screen = None
    _screens[lm_head] = (key, calls, screen, channel_max)
    return screen


def _version(weight: torch.Tensor) -> int | None:
    """The weight's in-place edit counter (inference tensors have none)."""
    try:
        return weight._version
    except RuntimeError:
        return None
