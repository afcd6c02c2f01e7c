"""Figures for the report: matplotlib (Agg) rendered to inline PNG data URIs.

Every function returns a ``data:image/png;base64,...`` string; nothing touches the screen or the
network. Colours are colour-blind safe (cividis for magnitudes, a blue-orange diverging map for
signed differences) and every figure is paired with a table by the section that makes it.
"""

from __future__ import annotations

import base64
import io
import math

DPI = 110  # pixel density of inline PNGs (sharp on screens, small in the file)
INK, MUTED, ACCENT, ACCENT2 = "#1f2933", "#7b8794", "#2f6fb0", "#d9822b"  # text, grid, series 1, series 2
DIVERGING = "PuOr_r"  # signed differences: orange = up, purple = down, white = 0
SEQUENTIAL = "cividis"  # magnitudes


def _plt():
    import matplotlib

    matplotlib.use("Agg", force=True)
    import matplotlib.pyplot as plt

    plt.rcParams.update(
        {
            "font.size": 9,
            "axes.titlesize": 10,
            "axes.edgecolor": MUTED,
            "axes.labelcolor": INK,
            "xtick.color": INK,
            "ytick.color": INK,
            "axes.spines.top": False,
            "axes.spines.right": False,
            "svg.fonttype": "none",
            "figure.facecolor": "white",
        }
    )
    return plt


def to_data_uri(fig) -> str:
    plt = _plt()
    buf = io.BytesIO()
    fig.savefig(buf, format="png", dpi=DPI, bbox_inches="tight")
    plt.close(fig)
    return "data:image/png;base64," + base64.b64encode(buf.getvalue()).decode("ascii")


def _row(n: int, base: float) -> float:
    """Inches per bar row: ``base`` up to 30 rows, then thinner so 100 languages stay readable."""
    return base if n <= 30 else max(0.13, base * 30 / n)


def _finite(values):
    return [v for v in values if v is not None and math.isfinite(v)]


def _label_rows(n: int, row: float = 0.28):
    """A figure with one horizontal row per label, top to bottom: ``(fig, ax, ys)``."""
    fig, ax = _plt().subplots(figsize=(6.4, 0.9 + _row(n, row) * n))
    return fig, ax, list(range(n))[::-1]


def _style_rows(ax, ys, labels, xlabel: str, title: str) -> None:
    """Label the rows and the value axis, with light vertical grid lines behind the data."""
    n = len(labels)
    ax.set_yticks(ys, labels, fontsize=7 if n > 30 else None)
    ax.set_ylim(-0.6, n - 0.4)
    ax.set_xlabel(xlabel)
    ax.set_title(title, loc="left")
    ax.grid(axis="x", color="#e4e7eb", linewidth=0.8)
    ax.set_axisbelow(True)


def bars(labels, values, errors=None, xlabel="", title="", means: dict | None = None) -> str:
    """Horizontal bars (one per label) with optional 95% intervals and mean lines."""
    fig, ax, ys = _label_rows(len(labels))
    vals = [v if v is not None else 0.0 for v in values]
    xerr = None
    if errors and any(e for e in errors if e):
        xerr = [e or 0.0 for e in errors]
    ax.barh(ys, vals, xerr=xerr, color=ACCENT, height=0.62, error_kw={"ecolor": INK, "elinewidth": 1, "capsize": 2.5})
    _style_rows(ax, ys, labels, xlabel, title)
    styles = ["--", ":"]
    for (name, value), style in zip((means or {}).items(), styles):
        if value is not None and math.isfinite(value):
            ax.axvline(value, color=ACCENT2, linestyle=style, linewidth=1.4, label=f"{name} {value:.3g}")
    if means:
        ax.legend(loc="upper left", bbox_to_anchor=(1.01, 1), frameon=False, fontsize=8)
    lo = min([0.0, *_finite(values)])
    if lo < 0:
        ax.axvline(0, color=INK, linewidth=0.8)
    else:
        hi = max([0.0, *_finite(values), *[v + (e or 0) for v, e in zip(_finite(values), xerr or [])]])
        ax.set_xlim(0, hi * 1.05 if hi > 0 else 1.0)  # bars start at 0; all-zero results still get an axis
    return to_data_uri(fig)


def heatmap(
    matrix,
    row_labels,
    col_labels,
    title="",
    cbar_label="",
    diverging=False,
    annotate: bool | None = None,
    xlabel="",
    ylabel="",
    fmt="{:.2f}",
) -> str:
    """A labelled heatmap; ``diverging`` centres the colours on 0 (for differences)."""
    import numpy as np

    plt = _plt()
    data = np.array([[np.nan if v is None else float(v) for v in row] for row in matrix], dtype=float)
    rows, cols = data.shape
    cell = 0.42 if max(rows, cols) <= 14 else max(0.11, min(0.22, 9.0 / max(rows, cols)))  # inches per cell
    fig, ax = plt.subplots(figsize=(max(3.5, 1.8 + cell * cols), max(2.4, 1.2 + cell * rows)))
    finite = data[np.isfinite(data)]
    if diverging:
        lim = float(np.abs(finite).max()) if finite.size else 1.0
        im = ax.imshow(data, cmap=DIVERGING, vmin=-lim or -1, vmax=lim or 1, aspect="auto")
    else:
        im = ax.imshow(data, cmap=SEQUENTIAL, aspect="auto")
    tilt = cols > 6 or max((len(str(c)) for c in col_labels), default=0) * cols > 30
    ax.set_xticks(
        range(cols), col_labels, rotation=45 if tilt else 0, ha="right" if tilt else "center", rotation_mode="anchor"
    )
    ax.set_yticks(range(rows), row_labels, fontsize=6 if rows > 30 else None)
    ax.set_xlabel(xlabel)
    ax.set_ylabel(ylabel)
    ax.set_title(title, loc="left")
    for spine in ax.spines.values():
        spine.set_visible(False)
    if annotate is None:
        annotate = rows * cols <= 144
    if annotate and finite.size:
        mid = (finite.min() + finite.max()) / 2
        for i in range(rows):
            for j in range(cols):
                v = data[i, j]
                if np.isfinite(v):
                    dark = abs(v) > abs(finite).max() * 0.55 if diverging else v < mid
                    ax.text(j, i, fmt.format(v), ha="center", va="center", fontsize=7, color="white" if dark else INK)
    cbar = fig.colorbar(im, ax=ax, fraction=0.046, pad=0.03)
    cbar.set_label(cbar_label)
    cbar.outline.set_visible(False)
    return to_data_uri(fig)


def layer_head_map(grid, title="", cbar_label="") -> str:
    """A layer x head heatmap (``grid`` [L, H]), cells annotated when there are at most 144."""
    n_layers, n_heads = len(grid), len(grid[0])
    return heatmap(
        grid,
        list(range(n_layers)),
        list(range(n_heads)),
        title=title,
        xlabel="head",
        ylabel="layer",
        annotate=n_layers * n_heads <= 144,
        cbar_label=cbar_label,
    )


def heatmap_grid(panels: dict, xlabel="head", ylabel="layer", title="", cbar_label="") -> str:
    """Small multiples of same-shaped heatmaps on one colour scale (e.g. layer x head per language)."""
    import numpy as np

    plt = _plt()
    names = list(panels)
    ncols = math.ceil(len(names) / math.ceil(len(names) / 5))  # at most 5 panels a row, rows balanced
    nrows = math.ceil(len(names) / ncols)
    first = np.asarray(panels[names[0]])
    aspect = first.shape[0] / max(1, first.shape[1])
    width = 2.1 if aspect > 2 else 2.8
    fig, axes = plt.subplots(
        nrows,
        ncols,
        figsize=(0.6 + width * ncols, 0.8 + min(5.0, width * aspect) * nrows),
        squeeze=False,
        constrained_layout=True,
    )
    stack = np.stack([np.asarray(panels[n], dtype=float) for n in names])
    vmin, vmax = float(np.nanmin(stack)), float(np.nanmax(stack))
    im = None
    for k, ax in enumerate(axes.flat):
        if k >= len(names):
            ax.axis("off")
            continue
        im = ax.imshow(stack[k], cmap=SEQUENTIAL, vmin=vmin, vmax=vmax, aspect="auto", interpolation="nearest")
        ax.set_title(names[k], fontsize=9)
        ax.set_xlabel(xlabel, fontsize=8)
        if k % ncols == 0:
            ax.set_ylabel(ylabel, fontsize=8)
        for spine in ax.spines.values():
            spine.set_visible(False)
    if im is not None:
        cbar = fig.colorbar(im, ax=axes, fraction=0.03, pad=0.02)
        cbar.set_label(cbar_label)
        cbar.outline.set_visible(False)
    if title:
        fig.suptitle(title, x=0.01, ha="left", fontsize=10)
    return to_data_uri(fig)


def categorical_map(matrix, categories: list[str], colors: list[str], title="", xlabel="head", ylabel="layer") -> str:
    """A layer x head map of categories (index into ``categories``), with a legend."""
    import numpy as np
    from matplotlib.colors import ListedColormap
    from matplotlib.patches import Patch

    plt = _plt()
    data = np.asarray(matrix, dtype=float)
    rows, cols = data.shape
    fig, ax = plt.subplots(figsize=(max(3.2, 1.6 + 0.32 * cols), max(2.6, 0.9 + 0.2 * rows)))
    ax.imshow(
        data, cmap=ListedColormap(colors), vmin=-0.5, vmax=len(colors) - 0.5, aspect="auto", interpolation="nearest"
    )
    ax.set_xlabel(xlabel)
    ax.set_ylabel(ylabel)
    ax.set_title(title, loc="left")
    for spine in ax.spines.values():
        spine.set_visible(False)
    ax.legend(
        handles=[Patch(color=c, label=n) for n, c in zip(categories, colors)],
        loc="upper left",
        bbox_to_anchor=(1.02, 1),
        frameon=False,
        fontsize=8,
    )
    return to_data_uri(fig)


def scatter(xs, ys, labels, xlabel="", ylabel="", title="") -> str:
    """One labelled point per language (no fitted line: a handful of languages does not make a trend)."""
    plt = _plt()
    fig, ax = plt.subplots(figsize=(5.6, 3.8))
    ax.scatter(xs, ys, color=ACCENT, s=36, zorder=3)
    for x, y, label in zip(xs, ys, labels):
        ax.annotate(label, (x, y), textcoords="offset points", xytext=(4, 4), fontsize=8, color=INK)
    ax.set_xlabel(xlabel)
    ax.set_ylabel(ylabel)
    ax.set_title(title, loc="left")
    ax.grid(color="#e4e7eb", linewidth=0.8)
    ax.set_axisbelow(True)
    return to_data_uri(fig)


SCALE_SPLIT = 8.0  # series whose largest values differ more than this get a panel each


def lines(x, series: dict, xlabel="", ylabel="", title="", bands=(), one_shade: bool = False) -> str:
    """Several series over the same x (e.g. neuron counts per layer and class); ``bands`` =
    [(first x, last x, label)] shade spans such as the phases along the layers. Series on very
    different scales are drawn in stacked panels sharing the x axis, so none is flattened."""
    from matplotlib.ticker import MaxNLocator

    plt = _plt()
    peaks = [max((abs(v) for v in _finite(ys)), default=0.0) for ys in series.values()]
    positive = [p for p in peaks if p > 0]
    split = len(series) > 1 and positive and max(positive) > SCALE_SPLIT * min(positive)
    groups = [{k: v} for k, v in series.items()] if split else [series]
    fig, axes = plt.subplots(
        len(groups), 1, figsize=(6.4, 3.4 if not split else 1.1 + 1.3 * len(groups)), sharex=True, squeeze=False
    )
    palette = [ACCENT, ACCENT2, "#3e8e5e", "#9b4f96", "#c23b22", MUTED]
    markers = ["o", "s", "^", "D", "v", "x"]
    names = list(series)
    for ax, group in zip(axes[:, 0], groups):
        _bands(ax, bands if ax is axes[0, 0] else [(a, b, "") for a, b, _ in bands], one_shade)
        for name, ys in group.items():
            k = names.index(name)
            ax.plot(
                x,
                ys,
                label=name,
                color=palette[k % len(palette)],
                marker=markers[k % len(markers)],
                markersize=3.5,
                linewidth=1.5,
                zorder=2,
            )
        ax.set_ylabel(next(iter(group)) if split else ylabel, fontsize=8 if split else None)
        ax.xaxis.set_major_locator(MaxNLocator(integer=True))  # layers and steps are whole numbers
        ax.grid(color="#e4e7eb", linewidth=0.8)
    axes[-1, 0].set_xlabel(xlabel)
    axes[0, 0].set_title(title, loc="left", pad=14 if bands else 6)
    if not split:
        axes[0, 0].legend(frameon=False, fontsize=8, loc="upper left", bbox_to_anchor=(1.01, 1))
    return to_data_uri(fig)


def _bands(ax, bands, one_shade: bool = False) -> None:
    shades = ("#fdf3e7",) if one_shade else ("#eef2f7", "#ffffff", "#fdf3e7", "#f3eef7")
    for k, (a, b, label) in enumerate(bands):
        ax.axvspan(a - 0.5, b + 0.5, color=shades[k % len(shades)], zorder=0, linewidth=0)
        if label:
            ax.text(
                (a + b) / 2,
                1.01,
                label,
                transform=ax.get_xaxis_transform(),
                ha="center",
                va="bottom",
                fontsize=7,
                color=MUTED,
            )


def dumbbell(labels, series: dict, xlabel="", title="") -> str:
    """Per label, one dot per series (e.g. before -> after) joined by a line; good for many languages."""
    names = list(series)
    fig, ax, ys = _label_rows(len(labels), 0.3)
    for k, y in enumerate(ys):
        vals = _finite(series[name][k] for name in names)
        if len(vals) >= 2:
            ax.plot([min(vals), max(vals)], [y, y], color="#cbd2d9", linewidth=2.2, zorder=1)
    palette = [MUTED, "#9b4f96", "#3e8e5e", ACCENT2]
    for j, name in enumerate(names):
        color = ACCENT if j == len(names) - 1 else palette[j % len(palette)]
        pts = [(v, y) for v, y in zip(series[name], ys) if v is not None and math.isfinite(v)]
        if pts:
            ax.scatter([p[0] for p in pts], [p[1] for p in pts], color=color, s=34, label=name, zorder=2 + j)
    _style_rows(ax, ys, labels, xlabel, title)
    ax.legend(frameon=False, fontsize=8, loc="upper left", bbox_to_anchor=(1.01, 1))
    return to_data_uri(fig)


def grouped_bars(labels, series: dict, xlabel="", title="", ref: float | None = None) -> str:
    """Horizontal bars per label, one bar per series (e.g. tokenizers side by side)."""
    n, k = len(labels), max(1, len(series))
    fig, ax, rows = _label_rows(n, 0.16 * k + 0.12)
    height = 0.8 / k
    palette = [ACCENT, ACCENT2, "#3e8e5e", "#9b4f96", "#c23b22", MUTED]
    for j, (name, values) in enumerate(series.items()):
        ys = [(n - 1 - i) + 0.4 - height * (j + 0.5) for i in range(n)]
        ax.barh(
            ys,
            [v if v is not None else 0.0 for v in values],
            height=height * 0.92,
            color=palette[j % len(palette)],
            label=name,
        )
    _style_rows(ax, rows, labels, xlabel, title)
    if ref is not None:
        ax.axvline(ref, color=INK, linewidth=1, linestyle="--")
    ax.legend(frameon=False, fontsize=8, loc="upper left", bbox_to_anchor=(1.01, 1))
    flat = [v for vals in series.values() for v in _finite(vals)]
    if min([0.0, *flat]) >= 0:
        ax.set_xlim(0, max(flat, default=0.0) * 1.05 or 1.0)  # bars start at 0; all-zero results still get an axis
    return to_data_uri(fig)


def diverging_bars(labels, values, xlabel="", title="") -> str:
    """Signed differences per label: orange right of 0 (up), purple left (down)."""
    fig, ax, ys = _label_rows(len(labels))
    vals = [v if v is not None else 0.0 for v in values]
    ax.barh(ys, vals, color=[ACCENT2 if v > 0 else "#6b4c9a" for v in vals], height=0.62)
    ax.axvline(0, color=INK, linewidth=0.9)
    _style_rows(ax, ys, labels, xlabel, title)
    return to_data_uri(fig)
