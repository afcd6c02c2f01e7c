"""One exception family for everything babelscope reports to users.

The CLI turns any ``BabelscopeError`` into a one-line message and exit code 2; a traceback is
shown only with ``--verbose``.
"""

from __future__ import annotations


class BabelscopeError(Exception):
    """Base class: the message says what was wrong and how to fix it."""


class UsageError(BabelscopeError):
    """A flag, option or argument that cannot be used as given."""


class DataError(BabelscopeError):
    """A data file, row or item that cannot be read (names the file, line or item_id)."""


class LanguageError(BabelscopeError):
    """An unknown or unavailable language code."""


class ModelLoadError(BabelscopeError):
    """A model or tokenizer that cannot be loaded (missing file, offline hub, pickle refused)."""


class UnsupportedArchitectureError(BabelscopeError):
    """A model family without an adapter entry."""


class MissingExtraError(BabelscopeError):
    """A feature whose optional dependency is not installed; the message names the extra to install."""


def require(module: str, extra: str, feature: str = ""):
    """Import and return ``module``, or raise ``MissingExtraError`` naming the pip extra that provides it.

    ``feature`` says what needs it (e.g. "the tekken tokenizer"); by default the extra's name::

        mistral_common = require("mistral_common", extra="tekken", feature="the tekken tokenizer")
    """
    import importlib

    try:
        return importlib.import_module(module)
    except ModuleNotFoundError:
        top = module.split(".")[0]
        raise MissingExtraError(f"{feature or extra} needs the optional package {top}: "
                                f'pip install "babelscope[{extra}]"') from None
