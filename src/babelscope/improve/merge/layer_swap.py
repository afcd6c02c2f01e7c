"""Layer Swapping (Bandarkar et al., ICLR 2025) and revert-after-training, as ``linear`` slices.

Layer swapping builds one model from two experts tuned from the same base: the bottom ``bottom``
and top ``top`` decoder layers come from the *language* expert, the middle from the *task* (e.g.
math) expert, and optional transition layers blend the two:

    θ_l = θ^lang_l                                 l < bottom or l >= L - top
    θ_l = w_l θ^lang_l + (1 - w_l) θ^task_l        transition layers next to each boundary
    θ_l = θ^task_l                                 otherwise

With ``transition_weight`` unset the language share w ramps linearly across a transition of
width t: bottom zone (t - j) / (t + 1) for j = 0..t-1, the top zone mirrored (t = 1 gives 0.5).
Embeddings (``embeddings:``) and final norm + lm_head (``head:``) come from ``task`` (default),
``language``, or their ``average``.

Revert (Bandarkar & Peng 2025) resets chosen parts of a fine-tuned model to its base:
θ = θ_base + mask ⊙ (θ_ft - θ_base), the mask selecting ``layers`` x ``modules`` (substrings of
the tensor name, as mergekit filters match) plus optionally ``embeddings`` and ``head``.

Both expand into ``linear`` slices with 0/1 or blend weights: that expansion is exactly what
``--emit_mergekit_yaml`` writes, so mergekit reproduces the merge.
"""

from __future__ import annotations

import json
from pathlib import Path

import yaml

from babelscope.errors import DataError, UsageError
from babelscope.improve.merge.io import ModelFiles, resolve_layers
from babelscope.improve.merge.recipe import Recipe, Slice, Source

SWAP_KEYS = ("bottom", "top", "transition", "transition_bottom", "transition_top")
SWAP_KEYS += ("transition_weight", "embeddings", "head")
REVERT_KEYS = ("layers", "modules", "embeddings", "head")
SIDE_WEIGHT = {"language": 1.0, "task": 0.0, "average": 0.5}  # language share per choice


def _number(p: dict, key: str, kind: type, default=0):
    """``p[key]`` as an int (layer counts) or a float (weights); anything else is a one-line error."""
    value = p.get(key, default)
    if value is None or (isinstance(value, (int, float)) and not isinstance(value, bool)
                         and (kind is float or float(value).is_integer())):
        return value if value is None else kind(value)
    raise UsageError(f"layer_swap: parameters.{key} must be {'an integer' if kind is int else 'a number'}, "
                     f"not {value!r}")


def language_shares(n_layers: int, p: dict) -> list[float]:
    """The language expert's weight for each layer (1 = language, 0 = task)."""
    b, u = _number(p, "bottom", int), _number(p, "top", int)
    tb = _number(p, "transition_bottom", int, _number(p, "transition", int))
    tu = _number(p, "transition_top", int, _number(p, "transition", int))
    if min(b, u, tb, tu) < 0 or b + u + tb + tu > n_layers:
        raise UsageError(
            f"layer_swap: bottom {b} + top {u} + transitions {tb}+{tu} must be >= 0 and fit in the {n_layers} layers"
        )
    fixed = _number(p, "transition_weight", float, None)
    shares = [0.0] * n_layers
    for layer in range(n_layers):
        if layer < b or layer >= n_layers - u:
            shares[layer] = 1.0
        elif layer < b + tb:
            j = layer - b
            shares[layer] = float(fixed) if fixed is not None else (tb - j) / (tb + 1)
        elif layer >= n_layers - u - tu:
            j = layer - (n_layers - u - tu)
            shares[layer] = float(fixed) if fixed is not None else (j + 1) / (tu + 1)
    return shares


def _side(p: dict, key: str) -> float:
    choice = p.get(key, "task")
    if choice not in SIDE_WEIGHT:
        raise UsageError(f"layer_swap: {key} must be one of task, language, average; got {choice!r}")
    return SIDE_WEIGHT[choice]


def _weight(default: float, exact: dict[str, float]) -> float | list:
    """A mergekit weight: ``default`` unless a tensor name in ``exact`` (filter) overrides it."""
    conds = [{"filter": name, "value": v} for name, v in exact.items() if v != default]
    return default if not conds else conds + [{"value": default}]


def _runs(values: list) -> list[tuple[int, int]]:
    """[start, end) runs of equal consecutive values."""
    runs, start = [], 0
    for i in range(1, len(values) + 1):
        if i == len(values) or values[i] != values[start]:
            runs.append((start, i))
            start = i
    return runs


def _two_source_slices(first: str, second: str, runs, weights_of) -> list[Slice]:
    """One slice per run; ``weights_of(index, start)`` gives (first's weight, second's weight)."""
    slices = []
    for k, (start, end) in enumerate(runs):
        w1, w2 = weights_of(k, start, len(runs))
        slices.append(
            Slice(
                [
                    Source(first, (start, end), {"weight": w1}),
                    Source(second, (start, end), {"weight": w2}),
                ]
            )
        )
    return slices


def expand_layer_swap(recipe: Recipe, _num_layers=None) -> Recipe:
    raw = recipe.raw
    for key in ("task_expert", "language_expert"):
        if not raw.get(key):
            raise UsageError(f"layer_swap needs {key}: (a local model folder)")
    unknown = set(recipe.parameters) - set(SWAP_KEYS)
    if unknown:
        raise UsageError(f"layer_swap: unknown parameters {sorted(unknown)}; known: {SWAP_KEYS}")
    lang, task = raw["language_expert"], raw["task_expert"]
    lang_m, task_m = ModelFiles(lang), ModelFiles(task)
    n = task_m.num_layers()
    if lang_m.num_layers() != n:
        raise UsageError(f"layer_swap: experts have {lang_m.num_layers()} and {n} layers; they must match")
    layout = resolve_layers(task_m)
    shares = language_shares(n, recipe.parameters)
    emb, head = _side(recipe.parameters, "embeddings"), _side(recipe.parameters, "head")
    runs = _runs(shares)

    def weights_of(k, start, count):
        share = shares[start]
        exact = {}
        if k == 0:
            exact.update({name: emb for name in layout.pre})
        if k == count - 1:
            exact.update({name: head for name in layout.post})
        return _weight(share, exact), _weight(1.0 - share, {m: 1.0 - v for m, v in exact.items()})

    out = Recipe(
        merge_method="linear",
        slices=_two_source_slices(lang, task, runs, weights_of),
        dtype=recipe.dtype,
        out_dtype=recipe.out_dtype,
        tokenizer_source=recipe.tokenizer_source,
        name=recipe.name,
        raw=raw,
        config_source=task,
    )
    lang_layers = [i for i, s in enumerate(shares) if s == 1.0]
    blended = [f"{i} ({s:.2f})" for i, s in enumerate(shares) if 0 < s < 1]
    out.notes += [
        f"layer swap: language expert layers {lang_layers}, blended {blended or 'none'}, "
        f"task expert the rest; embeddings {recipe.parameters.get('embeddings', 'task')}, "
        f"head {recipe.parameters.get('head', 'task')}"
    ]
    return out


def _layer_selection(spec, n: int) -> list[bool]:
    if spec in (None, "all"):
        return [True] * n
    if not isinstance(spec, list) or not all(isinstance(i, int) for i in spec):
        raise UsageError(f"revert: layers must be 'all' or a list of layer indices, got {spec!r}")
    bad = [i for i in spec if not 0 <= i < n]
    if bad:
        raise UsageError(f"revert: layers {bad} are outside 0..{n - 1}")
    return [i in spec for i in range(n)]


def expand_revert(recipe: Recipe, _num_layers=None) -> Recipe:
    raw = recipe.raw
    ft, base = raw.get("model"), recipe.base_model
    if not ft or not base:
        raise UsageError("revert needs model: (the fine-tuned model) and base_model: (its base)")
    unknown = set(recipe.parameters) - set(REVERT_KEYS)
    if unknown:
        raise UsageError(f"revert: unknown parameters {sorted(unknown)}; known: {REVERT_KEYS}")
    ft_m = ModelFiles(ft)
    n = ft_m.num_layers()
    layout = resolve_layers(ft_m)
    chosen = _layer_selection(recipe.parameters.get("layers"), n)
    modules = recipe.parameters.get("modules") or []
    if isinstance(modules, str):
        modules = [modules]
    runs = _runs(chosen)
    exact = {}

    def weights_of(k, start, count):
        # per-tensor share kept from the fine-tuned model (1 keep, 0 revert)
        exact.clear()
        if k == 0:
            exact.update({name: 0.0 if recipe.parameters.get("embeddings") else 1.0 for name in layout.pre})
        if k == count - 1:
            exact.update({name: 0.0 if recipe.parameters.get("head") else 1.0 for name in layout.post})
        if not chosen[start]:
            return _weight(1.0, exact), _weight(0.0, {m: 1 - v for m, v in exact.items()})
        if not modules:
            return _weight(0.0, exact), _weight(1.0, {m: 1 - v for m, v in exact.items()})
        keep = [{"filter": name, "value": v} for name, v in exact.items()]
        keep += [{"filter": mod, "value": 0.0} for mod in modules] + [{"value": 1.0}]
        back = [{"filter": c["filter"], "value": 1.0 - c["value"]} for c in keep[:-1]] + [{"value": 0.0}]
        return keep, back

    out = Recipe(
        merge_method="linear",
        slices=_two_source_slices(ft, base, runs, weights_of),
        dtype=recipe.dtype,
        out_dtype=recipe.out_dtype,
        tokenizer_source=recipe.tokenizer_source,
        name=recipe.name,
        raw=raw,
        config_source=ft,
    )
    reverted = [i for i, c in enumerate(chosen) if c]
    out.notes.append(f"revert: layers {reverted}, modules {modules or 'all'} reset to {base}")
    return out


def to_mergekit_yaml(recipe: Recipe) -> str:
    """The equivalent mergekit 0.1.5 configuration (layer_swap/revert already expanded)."""
    doc: dict = {"merge_method": recipe.merge_method}
    if recipe.base_model:
        doc["base_model"] = recipe.base_model
    if recipe.models is not None:
        doc["models"] = [_drop_empty({"model": s.model, "parameters": s.parameters}) for s in recipe.models]
    else:
        doc["slices"] = []
        for sl in recipe.slices:
            srcs = [
                _drop_empty({"model": s.model, "layer_range": list(s.layer_range), "parameters": s.parameters})
                for s in sl.sources
            ]
            doc["slices"].append(
                _drop_empty({"sources": srcs, "parameters": sl.parameters, "base_model": sl.base_model})
            )
    for key in ("parameters", "dtype", "out_dtype", "tokenizer_source"):
        if getattr(recipe, key):
            doc[key] = getattr(recipe, key)
    return yaml.safe_dump(doc, sort_keys=False, default_flow_style=None)


def _drop_empty(d: dict) -> dict:
    return {k: v for k, v in d.items() if v not in (None, {}, [])}


def layers_from_json(path: str | Path) -> tuple[int, int]:
    """(bottom, top) from a ``babelscope layers`` result: ``{"recommended": {"bottom", "top"}}``."""
    path = Path(path)
    if path.is_dir():
        path = path / "layers.json"
    try:
        doc = json.loads(path.read_text())
        rec = doc["recommended"]
        return int(rec["bottom"]), int(rec["top"])
    except FileNotFoundError:
        raise DataError(f"{path} not found; run `babelscope layers` on the language expert first") from None
    except (KeyError, TypeError, ValueError, json.JSONDecodeError):
        raise DataError(f"{path} has no recommended.bottom/top integers (babelscope layers output)") from None
