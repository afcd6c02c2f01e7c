#!/usr/bin/env python
"""Rebuild babelscope's built-in aligned corpus from human translations.

Sources (all translated by people, none machine-generated):

* GNOME user documentation (Debian ``gnome-user-docs``): Mallard ``<p>``/``<title>`` elements,
  aligned by position when a translated page has as many elements as the English ``C`` page.
* LibreOffice help (Debian ``libreoffice-help-<lang>``): HTML paragraphs aligned by
  ``(file, id)``; untranslated paragraphs (equal to en-US) are dropped.
* Django's gettext catalogs (the ``django==5.2.17`` wheel from PyPI): English msgid -> msgstr.

Usage (from the repository root; needs ``apt-get`` and ``dpkg-deb``, i.e. Debian/Ubuntu)::

    python scripts/build_corpus.py                      # apt-get update + download + build
    python scripts/build_corpus.py --debs /tmp/debs --no-update   # reuse downloaded .debs

Writes ``src/babelscope/data/builtin/{gnome,libreoffice,django}.jsonl.xz`` and
``manifest.json``. The output is deterministic for the same package versions.
"""

from __future__ import annotations

import argparse
import collections
import glob
import hashlib
import json
import lzma
import os
import subprocess
import sys
import tempfile

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, os.path.join(REPO, "src"))
from babelscope.errors import LanguageError  # noqa: E402
from babelscope.languages import info, resolve  # noqa: E402

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from corpus_extract import django_items, gnome_items, lo_items  # noqa: E402

DJANGO_VERSION = "5.2.17"  # pinned: the catalogs must not change between rebuilds
BUDGET_BYTES = 9_600_000  # all data files together (the package ships <= 10 MB)
ENGLISH = "eng_Latn"
XZ = {"preset": 9 | lzma.PRESET_EXTREME}


# --------------------------------------------------------------------------- fetching


def fetch_debs(packages: list[str], dest: str, update: bool) -> None:
    """``apt-get download`` the packages not already in ``dest``."""
    have = {os.path.basename(p).split("_")[0] for p in glob.glob(os.path.join(dest, "*.deb"))}
    missing = [p for p in packages if p not in have]
    if not missing:
        return
    if update:
        subprocess.run(["apt-get", "update"], check=True)
    subprocess.run(["apt-get", "download", *missing], cwd=dest, check=True)


def deb_version(debs: str, package: str) -> str:
    (path,) = glob.glob(os.path.join(debs, f"{package}_*.deb"))
    out = subprocess.run(["dpkg-deb", "-f", path, "Version"], capture_output=True, text=True, check=True)
    return out.stdout.strip()


def extract_debs(debs: str, packages: list[str], root: str) -> None:
    for package in packages:
        (path,) = glob.glob(os.path.join(debs, f"{package}_*.deb"))
        subprocess.run(["dpkg-deb", "-x", path, root], check=True)


def fetch_django_wheel(dest: str) -> str:
    pip = [sys.executable, "-m", "pip", "download", "--no-deps", "-d", dest]
    subprocess.run([*pip, f"django=={DJANGO_VERSION}"], check=True)
    (wheel,) = glob.glob(os.path.join(dest, f"django-{DJANGO_VERSION}-*.whl"))
    return wheel


# --------------------------------------------------------------------------- languages


def canonicalize(items: dict[str, dict[str, str]], english: str) -> tuple[list[dict], dict[str, str]]:
    """Locale keys -> FLORES codes, one locale per code (the one translating most items).

    Returns rows ``{"item_id", "texts"}`` sorted by item_id and ``{code: locale used}``.
    Locales that resolve to English (en_GB, en_AU) or to no known language are skipped.
    """
    counts = collections.Counter(loc for it in items.values() for loc in it if loc != english)
    by_code: dict[str, list[str]] = collections.defaultdict(list)
    for loc in sorted(counts):
        try:
            code = resolve(loc)
        except LanguageError:
            print(f"  skip locale {loc!r}: no FLORES code", file=sys.stderr)
            continue
        if code != ENGLISH:
            by_code[code].append(loc)
    chosen = {code: min(locs, key=lambda loc: (-counts[loc], len(loc), loc)) for code, locs in by_code.items()}
    rows = []
    for item_id in sorted(items):
        item = items[item_id]
        texts = {code: item[loc] for code, loc in chosen.items() if loc in item}
        if texts:
            rows.append({"item_id": item_id, "texts": {ENGLISH: item[english], **texts}})
    return rows, dict(sorted(chosen.items()))


def drop_seen(rows: list[dict], seen: set[str]) -> list[dict]:
    """Keep the first item for each English text, so no text sits in both halves of a split."""
    out = []
    for row in rows:
        key = row["texts"][ENGLISH].casefold()
        if key not in seen:
            seen.add(key)
            out.append(row)
    return out


def lo_priority(row: dict) -> tuple:
    """Most languages first; Hindi and Turkish (rarely translated) count extra."""
    texts = row["texts"]
    rare = ("hin_Deva" in texts) + ("tur_Latn" in texts)
    tie = hashlib.sha1(row["item_id"].encode()).hexdigest()
    return (-rare, -len(texts), tie)


# --------------------------------------------------------------------------- writing


def encode(rows: list[dict], source: str) -> bytes:
    lines = [
        json.dumps(
            {"item_id": r["item_id"], "source": source, "texts": r["texts"]},
            ensure_ascii=False,
        )
        for r in rows
    ]
    return lzma.compress(("\n".join(lines) + "\n").encode("utf-8"), **XZ)


def fit_budget(rows: list[dict], source: str, budget: int) -> tuple[list[dict], bytes]:
    """The largest prefix of ``rows`` (priority order) whose compressed file fits ``budget``."""
    sample = rows[: min(len(rows), 2000)]
    per_row = len(encode(sample, source)) / max(len(sample), 1)
    n = min(len(rows), int(budget / per_row))
    while True:
        chosen = sorted(rows[:n], key=lambda r: r["item_id"])
        data = encode(chosen, source)
        if len(data) <= budget or n == 0:
            return chosen, data
        n = int(n * min(0.98, budget / len(data)))


SOURCES = {  # name -> licence, English locale key, human description
    "gnome": (
        "CC-BY-SA-3.0",
        "C",
        "GNOME user documentation (gnome-help, system-admin-guide)",
    ),
    "libreoffice": ("MPL-2.0", "en-US", "LibreOffice help pages"),
    "django": (
        "BSD-3-Clause",
        "en",
        "Django web framework message catalogs (core + contrib)",
    ),
}


def write_outputs(out: str, built: dict[str, tuple[list[dict], bytes, dict]], origins: dict) -> dict:
    os.makedirs(out, exist_ok=True)
    manifest: dict = {
        "format": "babelscope-corpus/1",
        "files": {},
        "sources": {},
        "languages": {},
    }
    totals: collections.Counter = collections.Counter()
    for name, (rows, data, locales) in built.items():
        fname = f"{name}.jsonl.xz"
        with open(os.path.join(out, fname), "wb") as f:
            f.write(data)
        counts = collections.Counter(code for r in rows for code in r["texts"])
        totals.update(counts)
        manifest["files"][fname] = {
            "sha256": hashlib.sha256(data).hexdigest(),
            "bytes": len(data),
            "items": len(rows),
        }
        manifest["sources"][name] = {
            "file": fname,
            "license": SOURCES[name][0],
            "description": SOURCES[name][2],
            "origin": origins[name],
            "items": len(rows),
            "languages": dict(sorted(counts.items())),
            "locales": {ENGLISH: SOURCES[name][1], **locales},
        }
    manifest["languages"] = dict(sorted(totals.items()))
    with open(os.path.join(out, "manifest.json"), "w", encoding="utf-8") as f:
        json.dump(manifest, f, indent=1, ensure_ascii=False)
        f.write("\n")
    with open(os.path.join(out, "SOURCES.md"), "w", encoding="utf-8") as f:
        f.write(sources_md(manifest))
    return manifest


def sources_md(manifest: dict) -> str:
    src = manifest["sources"]
    lines = [
        "# Sources of the built-in aligned corpus",
        "",
        "Every text here was written or translated by people (no machine translation). The files",
        "are rebuilt by `python scripts/build_corpus.py`; `manifest.json` has the sha256 of each file,",
        "the item counts per language and the locale used for each language code.",
        "",
        "| file | source | origin | licence | items | languages |",
        "| --- | --- | --- | --- | --- | --- |",
    ]
    for s in src.values():
        lines.append(
            f"| `{s['file']}` | {s['description']} | {s['origin']} | {s['license']} "
            f"| {s['items']} | {len(s['languages'])} |"
        )
    lines += [
        "",
        "## Attribution and licences",
        "",
        "* **gnome**: GNOME Help and the GNOME System Administration Guide, Copyright (C) 2010-2014",
        "  Shaun McCance and the GNOME Documentation Project, with translations by the GNOME",
        "  translation teams. Licensed under the Creative Commons Attribution-ShareAlike 3.0",
        "  Unported licence (https://creativecommons.org/licenses/by-sa/3.0/). The paragraphs here",
        "  are an excerpt (aligned paragraphs of 8+ English words) and are shared under the same",
        "  licence.",
        "* **libreoffice**: LibreOffice Help, Copyright 2000, 2010 Oracle and/or its affiliates and",
        "  The Document Foundation and LibreOffice contributors, with translations by the",
        "  LibreOffice localisation teams. Licensed under the Mozilla Public License 2.0",
        "  (https://mozilla.org/MPL/2.0/); the source form is the helpcontent2 repository of",
        "  LibreOffice (https://git.libreoffice.org/help). A deterministic subsample of the",
        "  paragraphs is shipped.",
        "* **django**: message catalogs of Django, Copyright (c) Django Software Foundation and",
        "  individual contributors, translated on Transifex by the Django translation teams.",
        "  Licensed under the BSD 3-Clause licence (https://github.com/django/django/blob/main/LICENSE).",
        "  Only whole-sentence messages (4+ words, no format placeholders, no markup) are kept.",
        "",
        "## Languages",
        "",
        "Language codes are FLORES-200 style (`deu_Latn`). Where a source has several locales for",
        "one code (pt and pt_BR, es and es_AR, ...) the locale translating the most items is used;",
        "`manifest.json` records it under `sources.<name>.locales`.",
        "",
        *language_table(manifest),
        "",
    ]
    return "\n".join(lines)


def language_table(manifest: dict) -> list[str]:
    """Markdown rows: code, name, script, items per source, total, locale per source."""
    names = list(manifest["sources"])
    src = manifest["sources"]
    head = " | ".join(names)
    rows = [
        f"| code | language | script | {head} | total | locale ({' / '.join(names)}) |",
        "| --- | --- | --- | " + "---: | " * len(names) + "---: | --- |",
    ]
    for code, total in sorted(manifest["languages"].items(), key=lambda kv: (-kv[1], kv[0])):
        lang = info(code)
        counts = " | ".join(str(src[n]["languages"].get(code, "")) for n in names)
        locales = " / ".join(src[n]["locales"].get(code, "–") for n in names)
        rows.append(f"| `{code}` | {lang.name} | {lang.script} | {counts} | {total} | {locales} |")
    return rows


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--out", default=os.path.join(REPO, "src", "babelscope", "data", "builtin"))
    ap.add_argument(
        "--debs",
        help="folder holding (or receiving) the .deb files; default a temp dir",
    )
    ap.add_argument("--no-update", action="store_true", help="skip `apt-get update`")
    ap.add_argument("--budget", type=int, default=BUDGET_BYTES, help="max bytes of all data files")
    ap.add_argument("--sources-md-only", action="store_true", help="rewrite SOURCES.md from manifest.json")
    args = ap.parse_args(argv)
    if args.sources_md_only:
        with open(os.path.join(args.out, "manifest.json"), encoding="utf-8") as f:
            manifest = json.load(f)
        with open(os.path.join(args.out, "SOURCES.md"), "w", encoding="utf-8") as f:
            f.write(sources_md(manifest))
        return 0

    lo_langs = subprocess.run(
        ["apt-cache", "pkgnames", "libreoffice-help-"],
        capture_output=True,
        text=True,
        check=True,
    ).stdout.split()
    lo_packages = sorted(p for p in lo_langs if p != "libreoffice-help-common")
    packages = ["gnome-user-docs", *lo_packages]
    with tempfile.TemporaryDirectory(prefix="babelscope-corpus-") as tmp:
        debs = args.debs or os.path.join(tmp, "debs")
        os.makedirs(debs, exist_ok=True)
        print(f"fetching {len(packages)} Debian packages into {debs}")
        fetch_debs(packages, debs, update=not args.no_update)
        root = os.path.join(tmp, "root")
        extract_debs(debs, packages, root)
        wheel = fetch_django_wheel(os.path.join(tmp, "wheel"))
        lo_version = deb_version(debs, lo_packages[0])
        origins = {
            "gnome": f"Debian gnome-user-docs {deb_version(debs, 'gnome-user-docs')}",
            "libreoffice": f"Debian libreoffice-help-* {lo_version} ({len(lo_packages)} packages)",
            "django": f"PyPI django=={DJANGO_VERSION} (django.mo catalogs)",
        }
        print("extracting gnome-user-docs")
        gnome, _ = gnome_items(os.path.join(root, "usr", "share", "help"))
        print("extracting LibreOffice help (a few minutes)")
        lo, _ = lo_items(os.path.join(root, "usr", "share", "libreoffice", "help"))
        print("extracting Django catalogs")
        dj, _ = django_items(wheel)

    seen: set[str] = set()
    built = {}
    for name, items in (("gnome", gnome), ("django", dj)):
        rows, locales = canonicalize(items, SOURCES[name][1])
        rows = drop_seen(rows, seen)
        built[name] = (rows, encode(rows, name), locales)
    rows, lo_locales = canonicalize(lo, SOURCES["libreoffice"][1])
    rows = sorted(drop_seen(rows, seen), key=lo_priority)
    budget = args.budget - sum(len(b[1]) for b in built.values())
    lo_rows, lo_data = fit_budget(rows, "libreoffice", budget)
    print(f"libreoffice: kept {len(lo_rows)} of {len(rows)} aligned paragraphs")
    built = {
        "gnome": built["gnome"],
        "libreoffice": (lo_rows, lo_data, lo_locales),
        "django": built["django"],
    }
    manifest = write_outputs(args.out, built, origins)
    for fname, f in manifest["files"].items():
        print(f"{fname}: {f['items']} items, {f['bytes'] / 1e6:.2f} MB")
    print(f"{len(manifest['languages'])} languages: {manifest['languages']}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
