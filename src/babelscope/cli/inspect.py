"""``babelscope ls {languages,sources,architectures,models,tasks}``."""

from __future__ import annotations

import argparse

from babelscope.cli.common import Verb

WHAT = ("languages", "sources", "architectures", "models", "tasks")


def add_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument("what", choices=WHAT, help="what to list")
    p.add_argument("--all", action="store_true",
                   help="languages: every known code, not only those in the built-in corpus")


def _languages(show_all: bool):
    from rich.table import Table

    from babelscope.data.corpus import load_corpus
    from babelscope.languages import all_codes, info

    counts = load_corpus("builtin").counts()
    codes = all_codes() if show_all else sorted(counts)
    table = Table(title=f"{len(codes)} languages" + ("" if show_all else " in the built-in corpus"))
    for col in ("code", "name", "ISO 639-1", "script", "built-in items"):
        table.add_column(col)
    for code in codes:
        lang = info(code)
        table.add_row(code, lang.name, lang.iso1, lang.script, str(counts.get(code, "")))
    return table


def _sources():
    from rich.table import Table

    from babelscope.data.corpus import list_sources

    table = Table(title="built-in aligned sources (--source builtin)")
    for col in ("source", "items", "languages", "licence", "description"):
        table.add_column(col)
    sources = list_sources()
    for s in sources:
        table.add_row(s["name"], str(s["items"]), str(len(s["languages"])), s["license"], s["description"])
    langs = sorted({lang for s in sources for lang in s["languages"]})
    table.caption = f"{len(langs)} languages in all; also --source <file.jsonl|csv|tsv> or hf:<dataset>"
    return table


def _architectures():
    from rich.table import Table

    from babelscope.models.adapters import ARCHITECTURES

    table = Table(title="supported architectures (register more with register_architecture)")
    for col in ("model_type", "layers", "o_proj", "gate", "up", "down", "mlp"):
        table.add_column(col)
    for name, a in sorted(ARCHITECTURES.items()):
        table.add_row(name, a.layers, a.o_proj, a.gate or "", a.up or "", a.down, a.mlp_kind)
    return table


def _models():
    from rich.table import Table

    from babelscope.models.load import EMBEDDED

    table = Table(title="embedded models (pretrained=NAME); any folder, .gguf file or hub id also works")
    table.add_column("name")
    table.add_column("model")
    for name, spec in EMBEDDED.items():
        table.add_row(name, spec.description)
    return table


def _tasks():
    from rich.table import Table

    from babelscope.measure.tasks import list_tasks

    table = Table(title="tasks (--tasks)")
    for col in ("task", "kind", "description"):
        table.add_column(col)
    for task in list_tasks():
        table.add_row(task["name"], task.get("kind", ""), task.get("description", ""))
    return table


def run(args: argparse.Namespace) -> int:
    from rich.console import Console

    make = {"languages": lambda: _languages(args.all), "sources": _sources, "architectures": _architectures,
            "models": _models, "tasks": _tasks}[args.what]
    Console().print(make())
    return 0


VERBS = [Verb("ls", "inspect", "list languages, built-in sources, architectures, embedded models or tasks",
              add_arguments, run)]
