"""Merge recipes: the subset of mergekit's YAML schema that babelscope shares, plus two methods.

A recipe is a dict (usually YAML) with mergekit's keys ``merge_method``, ``models`` *or*
``slices`` (each source with ``model``, ``layer_range`` [start, end) and ``parameters``),
``base_model``, ``parameters``, ``dtype``, ``out_dtype`` and ``tokenizer_source``; babelscope adds
``name`` (the run folder's model label) and the methods ``layer_swap`` and ``revert``, which
``layer_swap.py`` expands into ``linear`` slices (that expansion is what ``--emit_mergekit_yaml``
writes).

Parameter values follow mergekit exactly (``resolve``):

* a scalar;
* a list of numbers, a *gradient*: at relative position t in [0, 1] the value is
  (1 - f) v_i + f v_(i+1) with s = t (n - 1), i = floor(s), f = s - i; inside a slice of N layers
  layer k has t = k / (N - 1) (t = 1 when N = 1); embeddings and head use t = 0;
* a list of ``{filter, value}``: the first whose ``filter`` is a substring of the tensor name (the
  *input* tensor name for per-model parameters), or has no filter / ``"*"``, gives the value.

Precedence, highest first: the source's ``parameters``, the slice's ``parameters``, the global
``parameters``.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

from babelscope.errors import UsageError
from babelscope.improve.merge.methods import REQUIRED, MethodSpec, get_method
from babelscope.runs import read_yaml_mapping

TOP_KEYS = {
    "merge_method",
    "models",
    "slices",
    "base_model",
    "parameters",
    "dtype",
    "out_dtype",
    "tokenizer_source",
    "tokenizer",
    "name",
    # layer_swap / revert
    "task_expert",
    "language_expert",
    "model",
}
UNSUPPORTED = {
    "modules": "multi-module architectures (modules:) are not supported; use slices",
    "chat_template": "chat_template is not supported; the tokenizer's own template is copied",
}


@dataclass
class Source:
    model: str
    layer_range: tuple[int, int] | None = None  # None: all layers (models: form)
    parameters: dict = field(default_factory=dict)


@dataclass
class Slice:
    sources: list[Source]
    parameters: dict = field(default_factory=dict)
    base_model: str | None = None


@dataclass
class Recipe:
    merge_method: str
    slices: list[Slice] | None = None
    models: list[Source] | None = None
    base_model: str | None = None
    parameters: dict = field(default_factory=dict)
    dtype: str | None = None
    out_dtype: str | None = None
    tokenizer_source: str | None = None
    name: str | None = None
    raw: dict = field(default_factory=dict)  # the recipe as written (after --layers auto)
    config_source: str | None = None  # model whose config.json is copied (default: see plan.py)
    notes: list[str] = field(default_factory=list)  # lines for the README card

    def referenced_models(self) -> list[str]:
        out = [self.base_model] if self.base_model else []
        for s in self.models or []:
            out.append(s.model)
        for sl in self.slices or []:
            out += [s.model for s in sl.sources] + ([sl.base_model] if sl.base_model else [])
        return list(dict.fromkeys(out))


def load_recipe(path: str | Path) -> dict:
    path = Path(path)
    if not path.is_file():
        raise UsageError(f"recipe {path} not found; pass a YAML file (see docs/merge.md)")
    return read_yaml_mapping(path, "recipe", "merge_method: ..., models: [...] or slices: [...]")


def _params(obj, where: str) -> dict:
    params = obj.get("parameters") or {}
    if not isinstance(params, dict):
        raise UsageError(f"{where}.parameters must be a mapping of name: value")
    return dict(params)


def _source(obj, where: str, need_range: bool) -> Source:
    if isinstance(obj, str):
        obj = {"model": obj}
    if not isinstance(obj, dict) or "model" not in obj:
        raise UsageError(f"{where} needs a 'model:' key naming a local model folder")
    rng = obj.get("layer_range")
    if need_range:
        if not (isinstance(rng, list) and len(rng) == 2 and all(isinstance(i, int) for i in rng)):
            raise UsageError(f"{where}.layer_range must be [start, end) integers, got {rng!r}")
        if not 0 <= rng[0] <= rng[1]:
            raise UsageError(f"{where}.layer_range {rng} must have 0 <= start <= end")
        rng = (rng[0], rng[1])
    return Source(str(obj["model"]), rng, _params(obj, where))


def parse_recipe(raw: dict) -> Recipe:
    """Validate a mergekit-style recipe dict (``layer_swap``/``revert`` not yet expanded)."""
    for key in raw:
        if key in UNSUPPORTED:
            raise UsageError(UNSUPPORTED[key])
        if key not in TOP_KEYS:
            raise UsageError(f"unknown recipe key {key!r}; known keys: {', '.join(sorted(TOP_KEYS))}")
    method = raw.get("merge_method")
    if not method:
        raise UsageError("the recipe needs merge_method (linear, ties, layer_swap, ...)")
    tok = raw.get("tokenizer_source")
    if isinstance(raw.get("tokenizer"), dict):
        tok = raw["tokenizer"].get("source")
    if tok == "union":
        raise UsageError("tokenizer_source: union is not supported; use base or a model path")
    recipe = Recipe(
        merge_method=method,
        base_model=raw.get("base_model"),
        parameters=_params(raw, "recipe"),
        dtype=raw.get("dtype"),
        out_dtype=raw.get("out_dtype"),
        tokenizer_source=tok,
        name=raw.get("name"),
        raw=raw,
    )
    if method in ("layer_swap", "revert"):
        return recipe
    if ("models" in raw) == ("slices" in raw):
        raise UsageError("give exactly one of 'models' or 'slices' in the recipe")
    if "models" in raw:
        recipe.models = [_source(m, f"models[{i}]", False) for i, m in enumerate(raw["models"])]
    else:
        recipe.slices = []
        for i, sl in enumerate(raw["slices"] or []):
            if "residual_weight" in (sl or {}):
                raise UsageError(f"slices[{i}].residual_weight is not supported")
            srcs = [_source(s, f"slices[{i}].sources[{j}]", True) for j, s in enumerate(sl["sources"])]
            recipe.slices.append(Slice(srcs, _params(sl, f"slices[{i}]"), sl.get("base_model")))
        if not recipe.slices:
            raise UsageError("slices: is empty; give at least one slice")
    get_method(method)
    return recipe


# ---------------------------------------------------------------- parameter values (mergekit rules)


def evaluate_setting(tensor_name: str, setting, t: float):
    """The value of one parameter setting for one tensor at relative layer position t."""
    if isinstance(setting, dict):
        setting = [setting]
    if isinstance(setting, (bool, int, float, str)):
        return setting
    if not isinstance(setting, list):
        raise UsageError(f"unexpected parameter value {setting!r}")
    if not setting:
        return None
    if all(isinstance(e, (bool, int, float, str)) for e in setting):
        if not all(isinstance(e, (int, float)) and not isinstance(e, bool) for e in setting):
            return setting[int(t * (len(setting) - 1))]
        scaled = t * (len(setting) - 1)
        i0 = int(scaled)
        i1 = min(len(setting) - 1, i0 + 1)
        frac = scaled - i0
        return (1 - frac) * setting[i0] + frac * setting[i1]
    for cond in setting:
        if not isinstance(cond, dict) or "value" not in cond:
            raise UsageError(f"a conditional parameter needs filter/value keys, got {cond!r}")
        flt = cond.get("filter")
        if flt is None or flt == "*" or (tensor_name and flt in tensor_name):
            return evaluate_setting(tensor_name, cond["value"], t)
    return None


def _lookup(name: str, scopes, tensor_name: str, t: float, default, where: str):
    for scope in scopes:
        if scope and name in scope:
            value = evaluate_setting(tensor_name, scope[name], t)
            if value is not None:
                return _checked(name, value, where)
    if default is REQUIRED:
        raise UsageError(f"missing parameter {name!r} for {where}; set it under parameters:")
    return default


def _checked(name: str, value, where: str):
    """``normalize`` is true/false; every other method parameter (weight, density, lambda, scale) a number."""
    if isinstance(value, (int, float)) and (name == "normalize" or not isinstance(value, bool)):
        return value
    kind = "true or false" if name == "normalize" else "a number"
    raise UsageError(f"parameter {name!r} for {where} must be {kind}, not {value!r}")


def resolve(
    spec: MethodSpec,
    recipe: Recipe,
    sl: Slice,
    out_name: str,
    in_names: list[str],
    base_index: int | None,
    t: float,
) -> tuple[dict, list[dict]]:
    """Shared parameters (by output tensor name) and per-input parameters (by input name)."""
    shared_scopes = (sl.parameters, recipe.parameters)
    shared = {p: _lookup(p, shared_scopes, out_name, t, d, out_name) for p, d in spec.shared_params.items()}
    per_input = []
    for i, (src, name) in enumerate(zip(sl.sources, in_names)):
        scopes = (src.parameters, sl.parameters, recipe.parameters)
        if i == base_index and not spec.base_gets_input_params:
            per_input.append({})
            continue
        where = f"{src.model}:{name}"
        per_input.append({p: _lookup(p, scopes, name, t, d, where) for p, d in spec.input_params.items()})
    return shared, per_input
