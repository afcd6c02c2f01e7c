"""Aligned multilingual corpora (``item_id -> {language: text}``) and their loaders."""

from babelscope.data.corpus import Item, ParallelCorpus, list_sources, load_corpus

__all__ = ["Item", "ParallelCorpus", "list_sources", "load_corpus"]
