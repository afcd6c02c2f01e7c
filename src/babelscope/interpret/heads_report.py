"""Tables and heatmaps for LAHIS results (matplotlib, Agg backend, PNG in the run folder)."""

from __future__ import annotations

from pathlib import Path

import torch

from babelscope.interpret.lahis import LahisResult, head_name


def _pyplot():
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    return plt


def _save(fig, path: Path) -> Path:
    """Write ``fig`` as a PNG at ``path`` (folders made) and free it."""
    fig.tight_layout()
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path, dpi=100)
    _pyplot().close(fig)
    return path


def plot_language_heatmaps(result: LahisResult, folder: Path) -> list[Path]:
    """One layer x head heatmap of the scores per language: ``heatmap_<lang>.png``."""
    plt = _pyplot()
    paths = []
    for lang in result.languages:
        s = result.of(lang).float().numpy()  # [L, H]
        fig, ax = plt.subplots(figsize=(2 + 0.35 * s.shape[1], 1.5 + 0.25 * s.shape[0]))
        im = ax.imshow(s, aspect="auto", cmap="viridis")
        ax.set_xlabel("head")
        ax.set_ylabel("layer")
        ax.set_title(f"LAHIS {lang}")
        fig.colorbar(im, ax=ax)
        paths.append(_save(fig, folder / f"heatmap_{lang}.png"))
    return paths


def plot_classes(classes: dict, n_layers: int, n_heads: int, path: Path) -> Path:
    """Layer x head map: 0 = not a candidate, 1 = language-specific (in one or more lists but below
    the general threshold), 2 = language-general; cells name the languages."""
    plt = _pyplot()
    from matplotlib.colors import ListedColormap

    grid = torch.zeros(n_layers, n_heads)  # [L, H]
    for h in classes["languages_of_head"]:
        grid[h // n_heads, h % n_heads] = 2.0 if h in classes["general"] else 1.0
    fig, ax = plt.subplots(figsize=(2.5 + 1.1 * n_heads, 1.5 + 0.3 * n_layers))
    ax.imshow(grid.numpy(), aspect="auto", cmap=ListedColormap(["#f0f0f0", "#4c9be8", "#e8744c"]), vmin=0, vmax=2)
    for h, langs in classes["languages_of_head"].items():
        label = "general" if h in classes["general"] else ",".join(lang.split("_")[0] for lang in langs)
        ax.text(h % n_heads, h // n_heads, label, ha="center", va="center", fontsize=6)
    ax.set_xlabel("head")
    ax.set_ylabel("layer")
    ax.set_title(f"specific (blue) / general (orange, >= {classes['min_languages']} languages)")
    return _save(fig, path)


def plot_ablation(ablation: dict, path: Path) -> Path:
    """Heatmap of the loss rise: rows = zeroed heads of language A, columns = test language B;
    the last row is the random-heads baseline (of each column's language's size)."""
    plt = _pyplot()
    langs = list(ablation["base_loss"])
    rows = list(ablation["delta"])
    random_row = [ablation["random_delta"].get(c, float("nan")) for c in langs]  # NaN: no heads, no control
    grid = [[ablation["delta"][r][c] for c in langs] for r in rows] + [random_row]
    fig, ax = plt.subplots(figsize=(2 + 0.9 * len(langs), 1.5 + 0.5 * len(grid)))
    im = ax.imshow(grid, aspect="auto", cmap="Reds")
    ax.set_xticks(range(len(langs)), [c.split("_")[0] for c in langs])
    ax.set_yticks(range(len(grid)), [r.split("_")[0] for r in rows] + ["random"])
    for i, row in enumerate(grid):
        for j, v in enumerate(row):
            if v == v:  # NaN: an empty cell
                ax.text(j, i, f"{v:.3f}", ha="center", va="center", fontsize=6)
    ax.set_xlabel("test language")
    ax.set_ylabel("zeroed heads of")
    ax.set_title("loss rise (nats/token) after zeroing heads")
    fig.colorbar(im, ax=ax)
    return _save(fig, path)


def classes_table(classes: dict, result: LahisResult) -> str:
    """Markdown table: language, top candidates with scores, specific heads."""
    h = classes["n_heads_per_layer"]
    lines = ["| language | candidates (score) | specific |", "|---|---|---|"]
    for lang in result.languages:
        s = result.of(lang).flatten()
        cands = ", ".join(f"{head_name(x, h)} ({s[x]:.3g})" for x in classes["candidates"][lang]) or "-"
        spec = ", ".join(head_name(x, h) for x in classes["specific"][lang]) or "-"
        lines.append(f"| {lang} | {cands} | {spec} |")
    general = ", ".join(head_name(x, h) for x in classes["general"]) or "none"
    lines.append("")
    lines.append(f"Language-general heads (in >= {classes['min_languages']} lists): {general}")
    return "\n".join(lines)


def ablation_table(ablation: dict) -> str:
    """Markdown: loss rise per (zeroed heads, test language), the random row, and the verdicts."""
    langs = list(ablation["base_loss"])
    head = "| zeroed heads of \\ test | " + " | ".join(langs) + " |"
    lines = [head, "|---" * (len(langs) + 1) + "|"]
    base = "base mean exp(loss)" if ablation.get("metric") == "mean_exp_loss" else "base loss"
    lines.append(f"| ({base}) | " + " | ".join(f"{ablation['base_loss'][c]:.3f}" for c in langs) + " |")
    for r in ablation["delta"]:
        cells = [
            (f"**{ablation['delta'][r][c]:+.4f}**" if r == c else f"{ablation['delta'][r][c]:+.4f}") for c in langs
        ]
        lines.append(f"| {r} | " + " | ".join(cells) + " |")
    rand = [f"{ablation['random_delta'][c]:+.4f}" if c in ablation["random_delta"] else "-" for c in langs]
    lines.append("| random (same size) | " + " | ".join(rand) + " |")
    lines.append("")
    for lang, v in ablation["verdict"].items():
        if v.get("own_heads_hurt_most") is None:
            lines.append(f"- {lang}: {v['note']}")
        else:
            lines.append(
                f"- {lang}: own heads hurt it most: {'yes' if v['own_heads_hurt_most'] else 'no'} "
                f"(most hurt by {v['most_hurt_by']}; own {v['own_delta']:+.4f} vs random "
                f"{v['random_delta']:+.4f})"
            )
    return "\n".join(lines)


def off_target_table(off: dict) -> str:
    def fmt(x):
        return "-" if x is None else f"{x:.2f}"

    lines = ["| language | heads zeroed | off-target before | after | judged |", "|---|---|---|---|---|"]
    for lang, row in off.items():
        after = row.get("after", {})
        lines.append(
            f"| {lang} | {len(row['heads'])} | {fmt(row['before']['off_target_rate'])} | "
            f"{fmt(after.get('off_target_rate'))} | {row['before']['judged']}/{row['before']['n']} |"
        )
    return "\n".join(lines)
