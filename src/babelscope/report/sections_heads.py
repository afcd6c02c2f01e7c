"""The ``heads`` run (LAHIS), compact: the map of language-specific and language-general heads, the
ablation matrix (zero one language's heads, see whose loss rises) and the off-target rate before and
after, all from results.json (``general``/``specific``, ``ablation.delta``, ``off_target``)."""

from __future__ import annotations

from babelscope.report.collect import Run, is_lang, language_matrices
from babelscope.report.labels import label
from babelscope.report.model import Section, Table
from babelscope.report.sections import axes_of, matrix_block
from babelscope.report.sections_improve import stage_tables
from babelscope.report.sections_interpret import _axis, head_classes

TOP_HEADS = 3  # highest-scoring heads listed per language

ABLATIONS = {  # results.json keys of the ablation checks, with their titles
    "ablation": "Loss increase when a language's heads are zeroed",
    "ablation_specific": "Loss increase when a language's specific heads are zeroed",
}


def top_heads(run: Run) -> Table | None:
    """The highest-scoring heads per language, from the ``[layer, head, language]`` score artifact."""
    import numpy as np

    for path in run.artifacts():
        tensors, meta = run.load_artifact(path)
        for name, arr in tensors.items():
            axes = axes_of(meta, name, arr.ndim) or []
            li, hi, ki = _axis(axes, "layer"), _axis(axes, "head"), _axis(axes, "lang")
            if arr.ndim != 3 or None in (li, hi, ki):
                continue
            cube = np.transpose(arr, (li, hi, ki))  # [L, H, K]
            langs = meta.get("languages") or [f"language {k}" for k in range(cube.shape[2])]
            n_heads, rows = cube.shape[1], []
            for k, lang in enumerate(langs):
                best = np.argsort(-cube[:, :, k], axis=None)[:TOP_HEADS]
                rows.append([lang, *[f"L{i // n_heads}.H{i % n_heads} ({cube[:, :, k].flat[i]:.3g})" for i in best]])
            cols = ["language", *[f"head {r + 1} (score)" for r in range(TOP_HEADS)]]
            return Table.make(cols, rows, caption="Highest-scoring heads per language (LAHIS score)", collapsed=False)
    return None


def heads(run: Run) -> list[Section]:
    out = head_classes(run)
    top = top_heads(run)
    if top is not None and out:
        out[0].add(top)
    for key, title in ABLATIONS.items():
        node = run.results.get(key)
        found = language_matrices({"delta": node.get("delta")}) if isinstance(node, dict) else []
        if found:
            blocks = matrix_block(found[0], title, cbar_label="loss increase")
            intro = ("Rows: the language whose heads are zeroed; columns: the language whose loss is measured. "
                     "Language-specific heads show as a bright diagonal.")
            out.append(Section(title, "heads", run.label, intro=intro, blocks=blocks))
    for name, stages, table in stage_tables(run):
        rows = [[lang, *[v.get(s) for s in stages]] for lang, v in table.items() if is_lang(lang)]
        table = Table.make(["language", *stages], rows, caption=f"{label(name)}: {', '.join(stages)}",
                           collapsed=False)
        out.append(Section("Off-target rate with each language's specific heads zeroed", "heads", run.label,
                           blocks=[table]))
    return out
