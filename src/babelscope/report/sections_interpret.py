"""Generic section renderers for interpret-type content: attention-head scores and classes (layer x
head), per-layer series, neuron sets, training curves. Runs of ``heads``, ``neurons`` and ``layers`` get
curated sections instead (``sections_heads``, ``sections_neurons``, ``sections_layers``); these cover
the same shapes in other runs (a mask's scores, compare-neurons' series).

Inputs, by what the ``heads``/``neurons``/``layers``/``mask`` verbs write:
- ``artifacts/*.safetensors`` tensors with ``axes`` metadata: ``[layer, head, language]`` scores,
  ``[layer, head]`` maps (e.g. a soft head mask), ``[layer, neuron, language]`` 0/1 neuron sets.
- a results dict with ``general`` (flat head ids ``layer * H + head`` or ``[layer, head]`` pairs) and
  ``specific`` (``{language: [...]}``) heads, with ``n_heads_per_layer`` beside them.
- any dict of equal-length number lists (``{"specific": [..L], "related": [..L], ...}``).
"""

from __future__ import annotations

import re

from babelscope.report import plots
from babelscope.report.collect import Run, is_lang, is_number
from babelscope.report.labels import path_label
from babelscope.report.model import Figure, Section, Table, fmt
from babelscope.report.sections import axes_of

INTERPRET_VERBS = ("heads", "neurons", "layers", "compare-neurons")  # per-layer lists are per layer
MIN_SERIES_LEN = 3  # shortest list treated as a per-layer series
NOT_SERIES = ("ranking", "layers", "order", "indices", "ids", "losses", "revert_layers")  # index lists
ID_LISTS = ("specific", "candidates", "heads", "random_heads", "neurons", "languages_of_head")  # {x: [ids]}
HEAD_CLASS_COLORS = ["#f0f0f0", "#d9822b", "#2f6fb0"]  # none, specific, general


def _axis(axes: list[str], *names: str) -> int | None:
    for i, a in enumerate(axes):
        if any(a.startswith(n) for n in names):
            return i
    return None


# heads ------------------------------------------------------------------------------------


def head_scores(run: Run) -> list[Section]:
    """Layer x head heatmaps per language from [layer, head, language] artifacts; 2-D layer x head maps."""
    import numpy as np

    out = []
    for path in run.artifacts():
        tensors, meta = run.load_artifact(path)
        for name, arr in tensors.items():
            axes = axes_of(meta, name, arr.ndim)
            if not axes:
                continue
            li, hi, ki = _axis(axes, "layer"), _axis(axes, "head"), _axis(axes, "lang")
            if arr.ndim == 3 and None not in (li, hi, ki):
                langs = meta.get("languages") or [f"language {k}" for k in range(arr.shape[ki])]
                cube = np.transpose(arr, (li, hi, ki))  # [L, H, K]
                out.append(_score_grid(run, f"{path.stem} / {name}", cube, list(langs), meta))
            elif arr.ndim == 2 and None not in (li, hi):
                grid = arr if li == 0 else arr.T  # [L, H]
                out.append(_single_map(run, f"{path.stem} / {name}", grid))
    return out


def _score_grid(run: Run, name: str, cube, langs: list[str], meta: dict) -> Section:
    n_layers, n_heads, _ = cube.shape
    method = str(meta.get("method") or "").upper()
    title = f"Head scores per language{f' ({method})' if method else ''}: {name}"
    src = plots.heatmap_grid({lang: cube[:, :, k] for k, lang in enumerate(langs)}, title="", cbar_label="score")
    rows = [
        [layer, head, *[float(cube[layer, head, k]) for k in range(len(langs))]]
        for layer in range(n_layers)
        for head in range(n_heads)
    ]
    tab = Table.make(["layer", "head", *langs], rows, caption=f"{title}: every head", collapsed=True)
    best = []
    for k, lang in enumerate(langs):
        flat = int(cube[:, :, k].argmax())
        best.append(f"{lang} L{flat // n_heads}.H{flat % n_heads}")
    alt = (
        f"{len(langs)} heatmaps, one per language, of head scores with {n_layers} layers (rows) by "
        f"{n_heads} heads (columns) on one colour scale. Highest-scoring head: " + "; ".join(best) + "."
    )
    sec = Section(title, "heads", run.label)
    sec.add(
        Figure(
            src, alt, "Layer × head scores per language (brighter = more important); the table lists every head.", tab
        )
    )
    return sec


def _single_map(run: Run, name: str, grid) -> Section:
    n_layers, n_heads = grid.shape
    title = f"Layer × head map: {name}"
    src = plots.layer_head_map(grid.tolist(), title)
    rows = [[layer, *grid[layer].tolist()] for layer in range(n_layers)]
    tab = Table.make(["layer", *[f"head {h}" for h in range(n_heads)]], rows, caption=title)
    alt = (
        f"Heatmap of {name}: {n_layers} layers by {n_heads} heads, values {fmt(float(grid.min()))} to "
        f"{fmt(float(grid.max()))}."
    )
    return Section(title, "heads", run.label, blocks=[Figure(src, alt, title, tab)])


def _find_head_classes(obj, depth=0):
    """The dict holding ``general`` and ``specific`` head lists, if any."""
    if not isinstance(obj, dict) or depth > 4:
        return None
    if isinstance(obj.get("general"), list) and isinstance(obj.get("specific"), dict):
        return obj
    for key, val in obj.items():
        if key != "environment":
            found = _find_head_classes(val, depth + 1)
            if found is not None:
                return found
    return None


def _head_pair(h, n_heads: int | None):
    if isinstance(h, (list, tuple)) and len(h) == 2 and all(is_number(x) for x in h):
        return int(h[0]), int(h[1])
    if isinstance(h, dict) and "layer" in h and "head" in h:
        return int(h["layer"]), int(h["head"])
    if isinstance(h, str) and (m := re.match(r"^L?(\d+)[.:_/ ,H]+(\d+)$", h.strip(), re.I)):
        return int(m.group(1)), int(m.group(2))
    if is_number(h) and n_heads:
        return int(h) // n_heads, int(h) % n_heads
    return None


def head_classes(run: Run) -> list[Section]:
    """Specific/general head map (layer x head) from the classification in results.json."""
    import numpy as np

    found = _find_head_classes(run.results)
    for obj in run.json_files().values() if found is None else ():  # e.g. heads.json of an unfinished run
        found = found or _find_head_classes(obj)
    if found is None:
        return []
    n_heads = found.get("n_heads_per_layer") or found.get("n_heads")
    n_layers = found.get("n_layers")
    if not n_heads or not n_layers:  # fall back to the score artifact's shape
        for path in run.artifacts():
            tensors, meta = run.load_artifact(path)
            for name, arr in tensors.items():
                axes = axes_of(meta, name, arr.ndim) or []
                li, hi = _axis(axes, "layer"), _axis(axes, "head")
                if li is not None and hi is not None:
                    n_layers, n_heads = n_layers or arr.shape[li], n_heads or arr.shape[hi]
    general = [p for h in found["general"] if (p := _head_pair(h, n_heads))]
    specific = {
        lang: [p for h in heads if (p := _head_pair(h, n_heads))]
        for lang, heads in found["specific"].items()
        if isinstance(heads, list)
    }
    pairs = general + [p for v in specific.values() for p in v]
    if not pairs:
        return []
    n_layers = int(n_layers or max(p[0] for p in pairs) + 1)
    n_heads = int(n_heads or max(p[1] for p in pairs) + 1)
    grid = np.zeros((n_layers, n_heads))
    owners: dict[tuple, list[str]] = {}
    for lang, heads in specific.items():
        for p in heads:
            if p not in general and p[0] < n_layers and p[1] < n_heads:
                grid[p] = 1
                owners.setdefault(p, []).append(lang)
    for p in general:
        if p[0] < n_layers and p[1] < n_heads:
            grid[p] = 2
    title = "Language-specific and language-general heads"
    src = plots.categorical_map(
        grid, ["neither", "language-specific", "language-general"], HEAD_CLASS_COLORS, title=title
    )
    cands = {
        lang: {q for h in heads if (q := _head_pair(h, n_heads))}
        for lang, heads in (found.get("candidates") or {}).items()
        if isinstance(heads, list)
    }
    k = found.get("min_languages")

    def general_langs(p) -> str:
        langs = [lang for lang, heads in cands.items() if p in heads]
        return ", ".join(langs) if langs else f"at least {k} languages" if k else "general"

    rows = [[f"L{p[0]}.H{p[1]}", p[0], p[1], "general", general_langs(p)] for p in sorted(general)]
    rows += [[f"L{p[0]}.H{p[1]}", p[0], p[1], "specific", ", ".join(owners[p])] for p in sorted(owners)]
    tab = Table.make(["head", "layer", "head index", "class", "languages"], rows, caption=title, collapsed=True)
    alt = (
        f"Map of {n_layers} layers by {n_heads} heads: {len(general)} language-general heads "
        f"({', '.join(f'L{a}.H{b}' for a, b in sorted(general)) or 'none'}) and {len(owners)} "
        "language-specific heads; the table lists each with its languages."
    )
    intro = ""
    if "quantile" in found or "min_languages" in found:
        intro = (
            f"A head is a candidate for a language above the {fmt(found.get('quantile'))} quantile of its "
            f"scores; general when a candidate in at least {fmt(found.get('min_languages'))} languages."
        )
    per_lang = Table.make(
        ["language", "specific heads"],
        [[lang, ", ".join(f"L{a}.H{b}" for a, b in v if (a, b) not in general) or "–"] for lang, v in specific.items()],
        caption="Specific heads per language",
    )
    return [
        Section(
            title,
            "head_classes",
            run.label,
            intro=intro,
            blocks=[Figure(src, alt, "Orange: language-specific; blue: language-general.", tab), per_lang],
        )
    ]


# per-layer series -------------------------------------------------------------------------


def _series_dicts(obj, path=(), depth=0):
    """(path, {name: [numbers]}) for each dict holding 2+ or 1 named equal-length number lists."""
    if not isinstance(obj, dict) or depth > 5:
        return
    lists = {
        str(k): v
        for k, v in obj.items()
        if isinstance(v, list)
        and len(v) >= MIN_SERIES_LEN
        and all(is_number(x) for x in v)
        and str(k) not in NOT_SERIES
    }
    if isinstance(obj.get("specific"), dict):
        lists.pop("general", None)  # head classification: "general" holds head ids
    by_len: dict[int, dict] = {}
    for k, v in lists.items():
        by_len.setdefault(len(v), {})[k] = v
    for group in by_len.values():
        yield path, group
    for key, val in obj.items():
        if key == "environment":
            continue
        if isinstance(val, dict) and str(key) in ID_LISTS:
            continue
        if isinstance(val, dict):
            yield from _series_dicts(val, (*path, str(key)), depth + 1)
        elif isinstance(val, list) and val and all(isinstance(r, dict) and "layer" in r for r in val):
            cols = [c for c in val[0] if c != "layer" and all(is_number(r.get(c)) for r in val)]
            if cols and len(val) >= MIN_SERIES_LEN:
                yield (*path, str(key)), {c: [r[c] for r in val] for c in cols}


def layer_series(run: Run) -> list[Section]:
    """Line plots of per-layer series (e.g. neuron classes per layer) with their tables."""
    interpret = run.verb in INTERPRET_VERBS
    sources = [((), run.results)] + [((name,), obj) for name, obj in run.json_files().items()]
    out, seen = [], []  # seen: series of earlier sources
    for prefix, obj in sources:
        found = list(_series_dicts(obj, prefix))
        for path, series in found:
            full = " / ".join(path)
            if not (interpret or "layer" in full.lower()) or series in seen:
                continue  # the same numbers saved twice (results.json and a side file) show once
            if all(is_lang(k) for k in series) and len(series) > 8:
                series = dict(list(series.items())[:8])
            n = len(next(iter(series.values())))
            x = list(range(n))
            kind = "neuron_classes" if {"specific", "general"} <= set(series) else "layer_series"
            title = "Neuron classes per layer" if kind == "neuron_classes" else "Per layer"
            title += f": {path_label(path)}" if full else ""
            phases = _phases_near(obj, path)
            bands = [
                (p["layers"][0], p["layers"][1], p.get("phase", "").split()[0])
                for p in phases
                if isinstance(p.get("layers"), list) and len(p["layers"]) == 2
            ]
            src = plots.lines(
                x,
                series,
                xlabel="layer",
                ylabel=path[-1] if path else "value",
                title=title,
                bands=bands if kind == "neuron_classes" else (),
            )
            rows = [[i, *[series[k][i] for k in series]] for i in x]
            tab = Table.make(["layer", *series], rows, caption=f"{title}: every layer")
            peaks = "; ".join(
                f"{k} peaks at layer {max(x, key=lambda i, v=v: v[i])} ({fmt(max(v))})" for k, v in series.items()
            )
            alt = f"Line chart over {n} layers of {', '.join(series)}. {peaks}."
            sec = Section(title, kind, run.label, blocks=[Figure(src, alt, title, tab)])
            if phases:
                sec.add(
                    Table.make(
                        ["phase", "first layer", "last layer"],
                        [[p.get("phase"), *p.get("layers", [None, None])[:2]] for p in phases],
                        caption="Phases along the layers",
                        collapsed=False,
                    )
                )
            out.append(sec)
        seen += [series for _, series in found]
    return out


def _phases_near(obj, path) -> list[dict]:
    node = obj
    candidates = [node]
    for key in path:
        if isinstance(node, dict) and key in node:
            node = node[key]
            candidates.append(node)
    for c in reversed(candidates):
        if (
            isinstance(c, dict)
            and isinstance(c.get("phases"), list)
            and all(isinstance(p, dict) and "phase" in p for p in c["phases"])
        ):
            return c["phases"]
    return []


def neuron_sets(run: Run) -> list[Section]:
    """Neurons per layer and language from 0/1 ``[layer, neuron, language]`` artifacts."""
    import numpy as np

    out = []
    for path in run.artifacts():
        tensors, meta = run.load_artifact(path)
        for name, arr in tensors.items():
            axes = axes_of(meta, name, arr.ndim)
            if not axes or arr.ndim != 3:
                continue
            li, ni, ki = _axis(axes, "layer"), _axis(axes, "neuron", "unit", "feature"), _axis(axes, "lang")
            if None in (li, ni, ki) or not np.isin(arr, (0, 1)).all():
                continue
            langs = meta.get("languages") or [f"language {k}" for k in range(arr.shape[ki])]
            counts = np.transpose(arr, (li, ni, ki)).sum(1)  # [L, K]
            series = {str(lang): counts[:, k].astype(int).tolist() for k, lang in enumerate(langs)}
            x = list(range(counts.shape[0]))
            title = f"Selected neurons per layer and language: {path.stem} / {name}"
            src = plots.lines(x, dict(list(series.items())[:8]), xlabel="layer", ylabel="neurons", title=title)
            tab = Table.make(["layer", *series], [[i, *[series[k][i] for k in series]] for i in x], caption=title)
            alt = (
                f"Line chart of selected neurons per layer for {len(series)} languages over {len(x)} layers; "
                + "; ".join(f"{k} {sum(v)} in total" for k, v in series.items())
                + "."
            )
            out.append(Section(title, "neuron_sets", run.label, blocks=[Figure(src, alt, title, tab)]))
    return out


def training_curve(run: Run) -> list[Section]:
    """Training loss per optimizer step (``results["training"]["losses"]``, or ``results["losses"]``)."""
    training = run.results.get("training")
    losses = training.get("losses") if isinstance(training, dict) else run.results.get("losses")
    if not isinstance(losses, list) or len(losses) < 2 or not all(is_number(x) for x in losses):
        return []
    steps = list(range(1, len(losses) + 1))
    title = "Training loss per step"
    src = plots.lines(steps, {"loss": losses}, xlabel="step", ylabel="loss (token mean)", title=title)
    every = max(1, len(losses) // 200)  # at most ~200 table rows
    rows = [[s, v] for s, v in zip(steps, losses) if (s - 1) % every == 0 or s == len(losses)]
    tab = Table.make(["step", "loss"], rows, caption=title + ("" if every == 1 else f" (every {every}th step)"))
    alt = (
        f"Line chart of training loss over {len(losses)} steps: from {fmt(losses[0])} at step 1 to "
        f"{fmt(losses[-1])} at step {len(losses)}, lowest {fmt(min(losses))}."
    )
    return [Section(title, "training", run.label, blocks=[Figure(src, alt, title, tab)])]
