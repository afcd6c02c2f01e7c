"""Section renderers for improve-type runs (finetune, merge, mask): provenance (what was changed,
from what, with which settings) and before/after results per language.

``before_after`` in results.json may be any of
- ``{language: {"before": x, "after": y, "delta": d}}`` (finetune),
- ``{language: {model_or_stage: x, ...}}`` (merge: the inputs and the merged model),
- ``{language: {"before": {metric: x}, "after": {metric: y}}}`` or ``{language: {metric: {...}}}``,
- any of these one level down, keyed by task or metric.
"""

from __future__ import annotations

from babelscope.report import plots
from babelscope.report.collect import COUNT_KEYS, Run, find_key, is_lang, is_number
from babelscope.report.model import Figure, Note, Section, Table, fmt
from babelscope.report.sections import mean

IMPROVE_VERBS = ("finetune", "merge", "mask")
COUNTS = (*COUNT_KEYS, "judged", "samples")  # per-language counts, not results
STAGES = ("before", "after", "base", "trained", "merged", "masked", "delta")  # names that are stages, not metrics
LOWER_IS_BETTER = ("bpc", "bits", "loss", "ppl", "perplexity", "error", "off_target")  # metric name parts
PROVENANCE_KEYS = (
    "model_args",
    "base_model",
    "method",
    "merge_method",
    "layers",
    "revert_layers",
    "data",
    "languages",
    "tasks",
    "max_steps",
    "epochs",
    "lr",
    "learning_rate",
    "top_rate",
    "num_heads",
    "seed",
    "recipe",
)  # config keys shown as "what was done", in this order


def _is_delta(name: str) -> bool:
    return "delta" in name.lower() or name.lower().startswith("diff")


def before_after_tables(obj, path=()) -> list[tuple[str, dict]]:
    """Normalise to ``[(name, {language: {series: value}})]``."""
    if not isinstance(obj, dict):
        return []
    langs = [k for k in obj if is_lang(k)]
    if not langs:
        out = []
        for key, val in obj.items():
            out += before_after_tables(val, (*path, str(key)))
        return out
    tables: dict[str, dict] = {}
    for lang in langs:
        entry = obj[lang]
        if not isinstance(entry, dict):
            continue
        for k, v in entry.items():
            if is_number(v):
                tables.setdefault(" / ".join(path), {}).setdefault(lang, {})[k] = float(v)
            elif isinstance(v, dict):
                for k2, v2 in v.items():
                    if not is_number(v2):
                        continue
                    stage_first = k.lower() in STAGES or k2.lower() not in STAGES
                    metric, series = (k2, k) if stage_first else (k, k2)
                    name = " / ".join((*path, metric))
                    tables.setdefault(name, {}).setdefault(lang, {})[series] = float(v2)
    counts = [name for name in tables if name.split(" / ")[-1] in COUNTS]
    if len(counts) < len(tables):  # item counts beside real metrics are not worth a figure
        for name in counts:
            del tables[name]
    return list(tables.items())


def _lower_is_better(name: str) -> bool:
    low = name.lower()
    return any(part in low for part in LOWER_IS_BETTER)


def before_after_block(name: str, table: dict) -> list:
    langs = list(table)
    series: list[str] = []
    for vals in table.values():
        series += [k for k in vals if k not in series]
    values = [s for s in series if not _is_delta(s)]
    deltas = [s for s in series if _is_delta(s)]
    if not values:
        return []
    first = "before" if "before" in values else values[0]
    last = "after" if "after" in values else ("merged" if "merged" in values else values[-1])
    rows = []
    for lang in langs:
        v = table[lang]
        delta = (
            v.get(deltas[0])
            if deltas
            else (v[last] - v[first] if first != last and is_number(v.get(last)) and is_number(v.get(first)) else None)
        )
        rows.append([lang, *[v.get(s) for s in values], delta])
    delta_col = deltas[0] if deltas else f"{last} − {first}"
    columns = ["language", *values, delta_col]
    foot = [["macro mean", *[mean(r[j + 1] for r in rows) for j in range(len(values) + 1)]]]
    tab = Table.make(
        columns,
        rows,
        caption=f"{name or 'result'} per language, {' / '.join(values)}",
        signed_cols=(len(columns) - 1,),
        foot=foot,
        collapsed=False,
        lower_is_better=_lower_is_better(name),
    )
    ordered = [first, *[s for s in values if s not in (first, last)], last] if first != last else values
    src = plots.dumbbell(
        langs,
        {s: [table[lang].get(s) for lang in langs] for s in ordered},
        xlabel=name or "value",
        title=f"{name or 'result'}: {first} → {last}",
    )
    better = "lower is better" if _lower_is_better(name) else "higher is better"
    change = "; ".join(f"{r[0]} {fmt(r[-1])}" for r in rows if r[-1] is not None)
    alt = (
        f"Dot plot per language of {name or 'the result'} for {', '.join(ordered)} ({better}). "
        f"Change {delta_col}: {change}."
    )
    macro_delta = foot[0][-1]
    notes = [
        Note(
            f"Macro mean change ({delta_col}) over {len(langs)} languages: "
            f"{'+' if (macro_delta or 0) > 0 else ''}{fmt(macro_delta)} ({better})."
        )
    ]
    return [Figure(src, alt, f"{first} (grey) and {last} (blue) per language; {better}.", tab), *notes]


BEFORE_AFTER_KEYS = (
    "before_after_tasks",
    "before_after_by_task",
    "before_after",
)  # the first present is rendered (tasks: all tasks)


def before_after_sources(results: dict) -> list[tuple[str, dict]]:
    """(key, dict) of the before/after tables: the first of BEFORE_AFTER_KEYS, plus any other top-level
    ``{language: {"before": ..., "after": ...}}`` dict (e.g. off-target rates before/after ablation)."""
    out = []
    for key in BEFORE_AFTER_KEYS:
        found = find_key(results, (key,))
        if isinstance(found, dict):
            out.append((key, found))
            break
    else:
        paired = _paired(results.get("before"), results.get("after"))
        if paired:  # separate "before" and "after" dicts of the same shape (babelscope mask)
            out.append(("before", paired))
    for key, val in results.items():
        if key in BEFORE_AFTER_KEYS or not isinstance(val, dict):
            continue
        entries = [v for k, v in val.items() if is_lang(k)]
        if entries and all(isinstance(v, dict) and "before" in v and "after" in v for v in entries):
            out.append((key, val))
    return out


def _paired(before, after):
    """``{x: {lang: v}}`` before and after -> ``{x: {lang: {"before": v, "after": w}}}`` (or one level less)."""
    if not isinstance(before, dict) or not isinstance(after, dict):
        return None
    if any(is_lang(k) for k in before):
        pairs = {k: {"before": before[k], "after": after.get(k)} for k in before if is_lang(k)}
        ok = all(is_number(v["before"]) and is_number(v["after"]) for v in pairs.values())
        return pairs if pairs and ok else None
    out = {k: p for k in before if (p := _paired(before[k], after.get(k)))}
    return out or None


def before_after(run: Run) -> list[Section]:
    out = []
    metric = run.results.get("metric") or run.config.get("metric")  # names a bare before/after table
    for key, found in before_after_sources(run.results):
        prefix = () if key in (*BEFORE_AFTER_KEYS, "before") else (key,)
        for name, table in before_after_tables(found, prefix):
            name = name or (str(metric) if isinstance(metric, str) else "")
            blocks = before_after_block(name, table)
            if blocks:
                title = f"Before and after, per language{f': {name}' if name else ''}"
                out.append(Section(title, "before_after", run.label, blocks=blocks))
    return out


def provenance(run: Run) -> list[Section]:
    """What an improve run changed: method, base, layers, data, trainable share, recipe, output."""
    import yaml

    if run.verb not in IMPROVE_VERBS and "before_after" not in run.results:
        return []
    rows = [[k, _short(run.config[k])] for k in PROVENANCE_KEYS if k in run.config and k != "recipe"]
    if isinstance(run.results.get("layers"), list):  # the layers actually trained (``--layers auto`` resolved)
        source = run.results.get("layer_source")
        rows.append(["layers trained", _short(run.results["layers"]) + (f" ({source})" if source else "")])
    for key, val in _trainable(run.results):
        rows.append([key, val])
    merge_stats = run.results.get("merge")
    if isinstance(merge_stats, dict):
        rows += [[f"merge / {k}", _short(v)] for k, v in merge_stats.items() if k != "files"]
    sec = Section(
        f"Provenance: {run.verb}",
        "provenance",
        run.label,
        intro=f"What this {run.verb} run changed and from what (model {run.model}).",
    )
    if rows:
        sec.add(Table.make(["setting", "value"], rows, caption="Settings of this run", collapsed=False))
    recipe = run.results.get("recipe") if isinstance(run.results.get("recipe"), dict) else None
    if recipe:
        sec.add(Note(yaml.safe_dump(recipe, sort_keys=False, allow_unicode=True), pre=True, summary="merge recipe"))
    return [sec] if sec.blocks else []


def _trainable(results: dict):
    stack = [((), results)]
    while stack:
        path, node = stack.pop(0)
        for k, v in node.items():
            if k == "environment":
                continue
            if "trainable" in k.lower() and (is_number(v) or isinstance(v, str)):
                yield " / ".join((*path, k)), v
            elif isinstance(v, dict) and len(path) < 3:
                stack.append(((*path, k), v))


def _short(value) -> str:
    if isinstance(value, (list, tuple)):
        return ", ".join(map(str, value))
    if isinstance(value, dict):
        return ", ".join(f"{k}={v}" for k, v in value.items())
    return fmt(value) if is_number(value) else str(value)


def head_mask(run: Run) -> list[Section]:
    """The trained soft head mask of ``babelscope mask``: value per trained head, on the layer x head grid."""
    import numpy as np

    heads, values = run.results.get("heads"), run.results.get("values")
    if not (isinstance(heads, list) and isinstance(values, list) and len(heads) == len(values) and heads):
        return []
    pairs = [_head_of(h) for h in heads]
    if any(p is None for p in pairs) or not all(is_number(v) for v in values):
        return []
    n_layers, n_heads = _grid_size(run, pairs)
    grid = np.ones((n_layers, n_heads))
    for (layer, head), v in zip(pairs, values):
        grid[layer, head] = v
    title = "Trained soft head mask"
    src = plots.layer_head_map(grid.tolist(), title, cbar_label="mask value")
    rows = [[h, layer, head, v] for h, (layer, head), v in zip(heads, pairs, values)]
    tab = Table.make(
        ["head", "layer", "head index", "mask value"],
        rows,
        caption=f"{title}: the trained entries (every other head keeps 1)",
        collapsed=False,
    )
    alt = (
        f"Heatmap of the {n_layers} x {n_heads} head mask; {len(heads)} trained heads: "
        + "; ".join(f"{h} {fmt(v)}" for h, v in zip(heads, values))
        + "; every other head is 1."
    )
    return [Section(title, "head_mask", run.label, blocks=[Figure(src, alt, title, tab)])]


def _head_of(name):
    import re

    m = re.match(r"^L(\d+)\.H(\d+)$", str(name))
    return (int(m.group(1)), int(m.group(2))) if m else None


def _grid_size(run: Run, pairs) -> tuple[int, int]:
    """(layers, heads) from head_mask.safetensors metadata, else from the largest trained head."""
    path = run.path / "head_mask.safetensors"
    if path.is_file():
        _, meta = run.load_artifact(path)
        if is_number(meta.get("n_layers")) and is_number(meta.get("n_heads")):
            return int(meta["n_layers"]), int(meta["n_heads"])
    return max(p[0] for p in pairs) + 1, max(p[1] for p in pairs) + 1
