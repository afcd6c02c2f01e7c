"""Text extraction for scripts/build_corpus.py: GNOME Mallard pages, LibreOffice help HTML,
Django gettext catalogs. Each ``*_items`` function returns ``item_id -> {locale: text}`` with
the English text under the source's own English locale key (``C``, ``en-US``, ``en``).
"""

from __future__ import annotations

import collections
import gettext
import glob
import hashlib
import html.parser
import os
import re
import xml.etree.ElementTree as ET
import zipfile
from typing import ClassVar

MIN_WORDS_DOCS = 8  # English paragraphs shorter than this are headings/labels, not prose
MIN_WORDS_DJANGO = 4  # UI messages shorter than this are button labels
MAX_CHARS = 1200  # longer paragraphs are mostly tables/code listings flattened into text
MALLARD = "{http://projectmallard.org/1.0/}"
LO_LANGS_SKIP = {"en-US", "en-GB", "media"}  # en-US is the English side; en-GB is a variant


def norm(text: str) -> str:
    """Collapse whitespace (line breaks inside source paragraphs are layout, not content)."""
    return re.sub(r"\s+", " ", text).strip()


def same(a: str, b: str) -> bool:
    """Equal but for whitespace: an untranslated paragraph re-wrapped by the translation tool."""
    return re.sub(r"\s+", "", a) == re.sub(r"\s+", "", b)


def n_words(text: str) -> int:
    return len(text.split())


# --------------------------------------------------------------------------- GNOME (Mallard)


def mallard_elements(path: str) -> list[tuple[str, bool]]:
    """(text, complete) for every <p>/<title> outside <info>/<comment>, in document order.

    ``complete`` is False when the element holds an empty ``<link xref=.../>``: the renderer
    fills in the target's title, so the source text has a hole in it.
    """
    out: list[tuple[str, bool]] = []

    def walk(el: ET.Element) -> None:
        for child in el:
            tag = child.tag
            if tag in (MALLARD + "info", MALLARD + "comment"):
                continue
            if tag in (MALLARD + "p", MALLARD + "title"):
                holes = any(e.tag == MALLARD + "link" and not "".join(e.itertext()).strip() for e in child.iter())
                out.append((norm("".join(child.itertext())), not holes))
            walk(child)

    walk(ET.parse(path).getroot())
    return out


def gnome_items(help_root: str) -> tuple[dict[str, dict[str, str]], list[str]]:
    """item_id -> {locale: text} (English under "C"); locales found."""
    items: dict[str, dict[str, str]] = {}
    locales = sorted(d for d in os.listdir(help_root) if d != "C")
    for page in sorted(glob.glob(os.path.join(help_root, "C", "*", "*.page"))):
        rel = os.path.relpath(page, os.path.join(help_root, "C"))
        english = mallard_elements(page)
        for loc in locales:
            other = os.path.join(help_root, loc, rel)
            if not os.path.isfile(other):
                continue
            try:
                translated = mallard_elements(other)
            except ET.ParseError:
                continue
            if len(translated) != len(english):
                continue
            for i, ((en, ok), (tr, _)) in enumerate(zip(english, translated)):
                if not ok or n_words(en) < MIN_WORDS_DOCS or len(en) > MAX_CHARS:
                    continue
                if not tr or same(tr, en):
                    continue
                item = items.setdefault(f"gnome:{rel}:{i}", {"C": en})
                item[loc] = tr
    return items, locales


# --------------------------------------------------------------------------- LibreOffice help


class _ParagraphParser(html.parser.HTMLParser):
    """Collect the text of every <p>/<h1..6> carrying an ``id`` attribute.

    LibreOffice pages hold per-system and per-module variants as hidden alternatives
    (``<span class="switchinline"><span hidden id="MAC...">Command</span><span hidden
    id="default...">Ctrl</span></span>``); only the ``default`` one is kept. A paragraph whose
    switch has no default variant would have a hole, so it is recorded as ``None``.
    """

    TAGS: ClassVar[set[str]] = {"p", "h1", "h2", "h3", "h4", "h5", "h6"}
    VOID: ClassVar[set[str]] = {"img", "br", "hr", "input", "meta", "link", "wbr", "source", "embed"}

    def __init__(self) -> None:
        super().__init__(convert_charrefs=True)
        self.paragraphs: dict[str, str | None] = {}
        self._id: str | None = None
        self._tag = ""
        self._buf: list[str] = []
        self._stack: list[dict] = []  # open elements inside the paragraph
        self._broken = False

    def handle_starttag(self, tag, attrs):
        a = dict(attrs)
        if self._id is None:
            if tag in self.TAGS and a.get("id"):
                self._id, self._tag, self._buf, self._stack, self._broken = a["id"], tag, [], [], False
            return
        if tag in self.VOID:
            return
        default = (a.get("id") or "").startswith("default")
        if default:
            for frame in reversed(self._stack):
                if frame["switch"]:
                    frame["default"] = True
                    break
        hidden = "hidden" in a and not default
        switch = a.get("class") in ("switchinline", "switch")
        self._stack.append({"tag": tag, "hidden": hidden, "switch": switch, "default": False})

    def handle_endtag(self, tag):
        if self._id is None:
            return
        if tag == self._tag and not any(f["tag"] == tag for f in self._stack):
            text = None if self._broken else norm("".join(self._buf))
            self.paragraphs.setdefault(self._id, text)
            self._id = None
            return
        while self._stack:
            frame = self._stack.pop()
            if frame["switch"] and not frame["default"]:
                self._broken = True
            if frame["tag"] == tag:
                break

    def handle_data(self, data):
        if self._id is not None and not any(f["hidden"] for f in self._stack):
            self._buf.append(data)


def lo_paragraphs(path: str) -> dict[str, str | None]:
    parser = _ParagraphParser()
    with open(path, encoding="utf-8") as f:
        parser.feed(f.read())
    return parser.paragraphs


def lo_items(help_root: str) -> tuple[dict[str, dict[str, str]], list[str]]:
    """item_id -> {locale: text} (English under "en-US"); locales found."""
    items: dict[str, dict[str, str]] = {}
    locales = sorted(d for d in os.listdir(help_root) if d not in LO_LANGS_SKIP)
    en_root = os.path.join(help_root, "en-US")
    for page in sorted(glob.glob(os.path.join(en_root, "text", "**", "*.html"), recursive=True)):
        rel = os.path.relpath(page, en_root)
        english = {
            pid: t
            for pid, t in lo_paragraphs(page).items()
            if t is not None and n_words(t) >= MIN_WORDS_DOCS and len(t) <= MAX_CHARS
        }
        if not english:
            continue
        per_loc = {}
        for loc in locales:
            other = os.path.join(help_root, loc, rel)
            if os.path.isfile(other):
                per_loc[loc] = lo_paragraphs(other)
        for pid, en in english.items():
            item = {"en-US": en}
            for loc, paras in per_loc.items():
                tr = paras.get(pid)
                if tr and not same(tr, en):
                    item[loc] = tr
            if len(item) > 1:
                items[f"lo:{rel}#{pid}"] = item
    return items, locales


# --------------------------------------------------------------------------- Django catalogs

_PLACEHOLDER = re.compile(r"%(\([^)]*\))?[#0\- +]*\d*(\.\d+)?[sdifrxXeEgG%]|\{[^{}]*\}")
_MARKUP = re.compile(r"<[^>]+>|&[a-z]+;|\\n|\n|https?://")


def placeholders(text: str) -> list[str]:
    return sorted(m.group(0) for m in _PLACEHOLDER.finditer(text) if m.group(0) != "%%")


def django_usable(msgid: str) -> bool:
    """Whole sentences only: no markup, no format placeholder, enough words.

    A "%(field)s" hole is filled in at run time, so the catalog text is not a sentence anyone
    reads; filling it ourselves would break agreement in inflected languages. Such messages
    are skipped rather than stripped.
    """
    if _MARKUP.search(msgid) or placeholders(msgid):
        return False
    return n_words(msgid) >= MIN_WORDS_DJANGO


def django_items(wheel: str) -> tuple[dict[str, dict[str, str]], list[str]]:
    """item_id -> {locale: text} (English under "en"); locales found.

    Every ``django.mo`` (core and contrib apps) is read; the first catalog (sorted by path)
    that translates a msgid wins. Plural entries contribute their singular form.
    """
    catalogs: dict[str, dict[str, str]] = collections.defaultdict(dict)
    with zipfile.ZipFile(wheel) as zf:
        names = sorted(n for n in zf.namelist() if n.endswith("/LC_MESSAGES/django.mo"))
        for name in names:
            loc = name.split("/")[-3]
            with zf.open(name) as f:
                catalog = gettext.GNUTranslations(f)._catalog
            for key, value in sorted(catalog.items(), key=lambda kv: str(kv[0])):
                if isinstance(key, tuple):
                    if key[1] != 0:
                        continue
                    key = key[0]
                msgid = norm(key.split("\x04")[-1])
                value = norm(value)
                if msgid and value and not same(value, msgid) and django_usable(msgid):
                    catalogs[loc].setdefault(msgid, value)
    items: dict[str, dict[str, str]] = {}
    for loc in sorted(catalogs):
        for msgid, value in catalogs[loc].items():
            if placeholders(value) or _MARKUP.search(value):
                continue
            digest = hashlib.sha1(msgid.encode()).hexdigest()[:12]
            items.setdefault(f"django:{digest}", {"en": msgid})[loc] = value
    return items, sorted(catalogs)
