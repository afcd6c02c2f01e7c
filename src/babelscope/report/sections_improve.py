"""Section renderers for improve-type runs (finetune, merge, mask): provenance (what was changed,
from what, with which settings) and before/after results per language.

Before/after tables come from the one shape of ``babelscope.schema``: ``stages`` (named, in order,
e.g. before, after or task_expert, language_expert, merged) and ``before_after``
``{task: {language: {stage: value}}}``; plus the off-target rates that ``heads`` writes as
``off_target`` ``{language: {before: {off_target_rate}, after: {...}}}``. Old run folders reach
here already rewritten into this shape (``report.legacy``).
"""

from __future__ import annotations

from babelscope.report import plots
from babelscope.report.collect import Run, is_number
from babelscope.report.model import Figure, Note, Section, Table, fmt
from babelscope.report.sections import mean

IMPROVE_VERBS = ("finetune", "merge", "mask")
BEFORE_AFTER_KEYS = ("before_after", "before", "after", "delta")  # schema keys shown by before_after (mask and
# finetune also write each stage and the change on their own); no other renderer draws them again
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


def stage_tables(run: Run) -> list[tuple[str, list[str], dict]]:
    """``[(name, stages, {language: {stage: value}})]``: one per task of ``before_after``, and the
    off-target rate of a ``heads`` run before/after zeroing each language's specific heads."""
    out = []
    stages, table = run.results.get("stages"), run.results.get("before_after")
    if isinstance(stages, list) and len(stages) >= 2 and isinstance(table, dict):
        out += [(str(task), [str(s) for s in stages], by_lang) for task, by_lang in table.items()
                if isinstance(by_lang, dict) and by_lang]
    off = run.results.get("off_target") if run.verb == "heads" else None
    if isinstance(off, dict):
        rates = {lang: {s: row[s].get("off_target_rate") for s in ("before", "after") if isinstance(row.get(s), dict)}
                 for lang, row in off.items() if isinstance(row, dict)}
        if any(len(r) == 2 for r in rates.values()):
            out.append(("off_target_rate", ["before", "after"], rates))
    return out


def claimed_keys(run: Run) -> list[str]:
    """Top-level results keys shown elsewhere (the per-language tables skip them): before/after, and the
    off-target rates (a heads run's before/after; an eval's are in its per-task tables and the summary)."""
    return [*BEFORE_AFTER_KEYS, "off_target"]


def _lower_is_better(name: str) -> bool:
    low = name.lower()
    return any(part in low for part in LOWER_IS_BETTER)


def before_after_block(name: str, stages: list[str], table: dict) -> list:
    """Dot plot of every stage per language, a table with the change last − first, the macro change."""
    langs = list(table)
    first, last = stages[0], stages[-1]
    rows = []
    for lang in langs:
        v = table[lang] if isinstance(table[lang], dict) else {}
        a, b = v.get(first), v.get(last)
        rows.append([lang, *[v.get(s) for s in stages], b - a if is_number(a) and is_number(b) else None])
    if not any(is_number(x) for r in rows for x in r[1:]):
        return []
    delta_col = f"{last} − {first}"
    columns = ["language", *stages, delta_col]
    foot = [["macro mean", *[mean(r[j + 1] for r in rows) for j in range(len(stages) + 1)]]]
    tab = Table.make(columns, rows, caption=f"{name} per language, {' / '.join(stages)}",
                     signed_cols=(len(columns) - 1,), foot=foot, collapsed=False,
                     lower_is_better=_lower_is_better(name))
    src = plots.dumbbell(langs, {s: [table[lang].get(s) for lang in langs] for s in stages}, xlabel=name,
                         title=f"{name}: {first} → {last}")
    better = "lower is better" if _lower_is_better(name) else "higher is better"
    change = "; ".join(f"{r[0]} {fmt(r[-1])}" for r in rows if r[-1] is not None)
    alt = f"Dot plot per language of {name} for {', '.join(stages)} ({better}). Change {delta_col}: {change}."
    macro_delta = foot[0][-1]
    notes = [Note(f"Macro mean change ({delta_col}) over {len(langs)} languages: "
                  f"{'+' if (macro_delta or 0) > 0 else ''}{fmt(macro_delta)} ({better}).")]
    return [Figure(src, alt, f"{first} (grey) and {last} (blue) per language; {better}.", tab), *notes]


def before_after(run: Run) -> list[Section]:
    out = []
    for name, stages, table in stage_tables(run):
        blocks = before_after_block(name, stages, table)
        if blocks:
            out.append(Section(f"Before and after, per language: {name}", "before_after", run.label, blocks=blocks))
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
