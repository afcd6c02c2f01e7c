"""HTML report of run folders: ``write_report(run_paths, out_path) -> Path`` and run comparison."""

from __future__ import annotations


def write_report(run_paths, out_path="report.html", compare: bool = False, strict: bool = False, title=None,
                 rescore=None):
    """One self-contained HTML file (figures inline, no network requests) for the given run folders."""
    from babelscope.report.build import write_report as _write

    return _write(run_paths, out_path, compare=compare, strict=strict, title=title, rescore=rescore)


__all__ = ["write_report"]
