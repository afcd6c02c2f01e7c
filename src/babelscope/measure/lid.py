"""Language identification for off-target rates, every label mapped to FLORES-200 codes.

Two identifiers (``--lid``):

- ``py3langid`` (default): langid.py's model as py3langid ships it (140 labels, mostly ISO 639-1,
  some ISO 639-3; no script). A label stands for every FLORES-200 language with that ISO 639-1
  code or ISO 639-3 base, in every script (``zh`` -> zho_Hans and zho_Hant, ``ace`` -> ace_Arab
  and ace_Latn; ``no`` -> nob_Latn through the aliases of ``babelscope.languages``); labels of
  languages outside FLORES-200 (``la``, ``an``...) stand for none: such an output is off-target.
- ``fasttext``: a fastText LID model file given with ``--lid_model`` whose labels are
  ``__label__<iso639-3>_<script>``, as GlotLID's (cis-lmu/glotlid; v3: 2,102 labels, Apache-2.0,
  about 1.7 GB) and OpenLID's (laurievb/OpenLID: the 201 FLORES-200 languages, GPL-3.0) are. A
  FLORES-200 label maps to itself; a macrolanguage spelling to FLORES's member in the same script
  (``ara_Arab`` -> arb_Arab, ``cmn_Hans`` -> zho_Hans); the ``Hani`` script to both Chinese
  scripts. No PyPI package ships either model (their packages download it from the Hugging Face
  Hub at run time), so the file is the user's; reading it needs the ``fasttext`` bindings
  (``pip install 'babelscope[lid]'``).

``detect(text)`` returns the FLORES codes the label stands for joined by ``|`` (or the raw label
when it stands for none); ``names()`` is every FLORES code the identifier can name: a language
outside it has no off-target rate.
"""

from __future__ import annotations

import functools
import importlib.util
from pathlib import Path

from babelscope.errors import LanguageError, UsageError
from babelscope.languages import all_codes, info, resolve

IDENTIFIERS = ("py3langid", "fasttext")
DEFAULT_LID = "py3langid"
FASTTEXT_PREFIX = "__label__"
_CHINESE_SCRIPTS = ("Hans", "Hant")
LID_HELP = ("language identifier of the off-target rate, its labels mapped to FLORES-200 codes: py3langid "
            "(bundled; the default) or fasttext (a GlotLID / OpenLID model file, --lid_model)")
LID_MODEL_HELP = ("fastText LID model file (labels like __label__eng_Latn), e.g. GlotLID's model.bin; implies "
                  "--lid fasttext")


@functools.cache
def _flores() -> frozenset[str]:
    return frozenset(all_codes())


@functools.cache
def py3langid_flores(label: str) -> tuple[str, ...]:
    """The FLORES-200 codes a py3langid label stands for (see the module docstring): py3langid names
    no script, so a label covers every script of its language (``sr`` -> srp_Cyrl and srp_Latn)."""
    try:
        bases = {info(c).iso3 for c in _flores() if label in (info(c).iso1, info(c).iso3)}
        bases = bases or ({resolve(label).split("_")[0]} if len(label) == 2 else set())  # aliases: no -> nob
    except LanguageError:
        return ()
    return tuple(sorted(c for c in _flores() if info(c).iso3 in bases))


@functools.cache
def fasttext_flores(label: str) -> tuple[str, ...]:
    """The FLORES-200 codes of a fastText label ``__label__xxx_Yyyy`` (see the module docstring)."""
    code = label.removeprefix(FASTTEXT_PREFIX)
    if code in _flores():
        return (code,)
    base, _, script = code.partition("_")
    try:
        member = resolve(base).split("_")[0]  # the macrolanguage's FLORES member (ara -> arb)
    except LanguageError:
        return ()
    scripts = _CHINESE_SCRIPTS if script == "Hani" else (script,)
    return tuple(f"{member}_{s}" for s in scripts if f"{member}_{s}" in _flores())


class Identifier:
    """One language identifier: ``label(text)`` (raw), ``flores(label)``, ``detect(text)``, ``names()``."""

    def __init__(self, name: str = DEFAULT_LID, model: str | None = None):
        self.name, self.model = name, model
        self._to_flores = py3langid_flores if name == "py3langid" else fasttext_flores

    @functools.cached_property
    def _backend(self):
        if self.name == "py3langid":
            from py3langid.langid import MODEL_FILE, LanguageIdentifier

            return LanguageIdentifier.from_model_file(MODEL_FILE)
        return _load_fasttext(str(Path(self.model).expanduser().resolve()))

    def labels(self) -> list[str]:
        if self.name == "py3langid":
            return sorted(set(self._backend.nb_classes))
        return list(self._backend.get_labels())

    def label(self, text: str) -> str | None:
        """The identifier's own label for ``text`` (None for blank text)."""
        if not text.strip():
            return None
        if self.name == "py3langid":
            return self._backend.classify(text)[0]
        labels, _ = self._backend.predict(" ".join(text.split()), k=1)
        return labels[0]

    def flores(self, label: str) -> tuple[str, ...]:
        return self._to_flores(label)

    def detect(self, text: str) -> str | None:
        """``|``-joined FLORES codes of ``text``'s label (the raw label when it names none; None if blank)."""
        label = self.label(text)
        if label is None:
            return None
        return "|".join(self.flores(label)) or label.removeprefix(FASTTEXT_PREFIX)

    def names(self) -> set[str]:
        """Every FLORES-200 code this identifier can name."""
        return {code for label in self.labels() for code in self.flores(label)}

    def spec(self) -> dict:
        return {"lid": self.name, "lid_model": self.model}


def is_language(detected: str | None, code: str) -> bool:
    """Whether a ``detect`` result names FLORES code ``code``."""
    return detected is not None and code in detected.split("|")


def identifier(lid: str | None = None, lid_model: str | None = None) -> Identifier:
    """The identifier ``--lid`` / ``--lid_model`` ask for (a model file implies fasttext); one-line errors."""
    name = lid or ("fasttext" if lid_model else DEFAULT_LID)
    if name not in IDENTIFIERS:
        raise UsageError(f"--lid {name!r} is not one of {', '.join(IDENTIFIERS)}.")
    if name == "fasttext":
        if not lid_model:
            raise UsageError("--lid fasttext needs --lid_model PATH: a fastText LID model such as GlotLID's or "
                             "OpenLID's model.bin (labels __label__eng_Latn).")
        if not Path(lid_model).expanduser().is_file():
            raise UsageError(f"--lid_model {lid_model} is not a file; pass a fastText LID model (.bin).")
        if importlib.util.find_spec("fasttext") is None:
            raise UsageError("--lid fasttext needs the fastText bindings: pip install 'babelscope[lid]'.")
    elif lid_model:
        raise UsageError(f"--lid_model is for --lid fasttext; --lid {name} uses its bundled model.")
    return _cached(name, lid_model)


@functools.cache
def _cached(name: str, model: str | None) -> Identifier:
    return Identifier(name, model)


@functools.cache
def _load_fasttext(path: str):
    import fasttext

    try:
        return fasttext.load_model(path)
    except ValueError as exc:
        raise UsageError(f"--lid_model {path} is not a fastText model ({exc}).") from None
