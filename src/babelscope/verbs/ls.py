"""``babelscope ls {languages,sources,architectures,models,tasks}``: what babelscope knows about.

``bs.ls(what="languages").to_frame()`` gives the same rows as a pandas table; nothing is written.
"""

from __future__ import annotations

from dataclasses import dataclass

from rich.table import Table

from babelscope import protocols
from babelscope.data.corpus import list_sources, load_corpus
from babelscope.languages import all_codes, info
from babelscope.measure.tasks import available_tasks, get_task
from babelscope.models.adapters import ARCHITECTURES
from babelscope.models.load import EMBEDDED
from babelscope.verbs import VerbSpec
from babelscope.verbs.config import Config, option
from babelscope.verbs.result import Result
from babelscope.verbs.text import as_text

WHAT = ("languages", "sources", "architectures", "models", "tasks", "protocols")


@dataclass
class LsConfig(Config):
    what: str = option(help="what to list", positional=True, choices=WHAT)
    all: bool = option(False, "languages: every known code, not only those in the built-in corpus")


def _languages(show_all: bool) -> tuple[str, list[dict]]:
    counts = load_corpus("builtin").counts()
    codes = all_codes() if show_all else sorted(counts)
    rows = [{"code": c, "name": info(c).name, "ISO 639-1": info(c).iso1, "script": info(c).script,
             "built-in items": counts.get(c)} for c in codes]
    return f"{len(codes)} languages" + ("" if show_all else " in the built-in corpus"), rows


def _sources(show_all: bool) -> tuple[str, list[dict], str]:
    sources = list_sources()
    rows = [{"source": s["name"], "items": s["items"], "languages": len(s["languages"]), "licence": s["license"],
             "description": s["description"]} for s in sources]
    langs = {lang for s in sources for lang in s["languages"]}
    caption = f"{len(langs)} languages in all; also --source <file.jsonl|csv|tsv> or hf:<dataset>"
    return "built-in aligned sources (--source builtin)", rows, caption


def _architectures(show_all: bool) -> tuple[str, list[dict]]:
    rows = [{"model_type": name, "layers": a.layers, "o_proj": a.o_proj, "gate": a.gate or "", "up": a.up or "",
             "down": a.down, "mlp": a.mlp_kind} for name, a in sorted(ARCHITECTURES.items())]
    return "supported architectures (register more with register_architecture)", rows


def _models(show_all: bool) -> tuple[str, list[dict]]:
    rows = [{"name": name, "model": spec.description} for name, spec in EMBEDDED.items()]
    return "embedded models (pretrained=NAME); any folder, .gguf file or hub id also works", rows


def _tasks(show_all: bool) -> tuple[str, list[dict]]:
    tasks = [get_task(name) for name in available_tasks()]
    rows = [{"task": t.name, "kind": t.kind, "description": t.description} for t in tasks]
    return "tasks (--tasks)", rows


def _protocols(show_all: bool) -> tuple[str, list[dict], str]:
    rows = [{"protocol": p.name, "verb": p.verb, "description": p.description, "paper": p.paper}
            for p in map(protocols.load, protocols.available())]
    return "paper protocols (babelscope VERB --protocol NAME)", rows, "each one's card: docs/protocols.md"


LISTS = {"languages": _languages, "sources": _sources, "architectures": _architectures, "models": _models,
         "tasks": _tasks, "protocols": _protocols}


def table(title: str, rows: list[dict], caption: str | None = None) -> Table:
    out = Table(title=title, caption=caption)
    for col in (rows[0] if rows else {}):
        out.add_column(col)
    for row in rows:
        out.add_row(*("" if v is None else str(v) for v in row.values()))
    return out


def run(config: LsConfig) -> Result:
    title, found, *caption = LISTS[config.what](config.all)
    shown = as_text(table(title, found, *caption))
    return Result("ls", {"verb": "ls", "what": config.what, "rows": found}, None, shown)


def rows(results: dict) -> list[dict]:
    """One row per listed thing, the table's columns."""
    return results["rows"]


SPEC = VerbSpec("ls", "inspect", "list languages, sources, architectures, embedded models, tasks or protocols",
                LsConfig, run,
                description="Prints a table of the languages in the built-in corpus (--all: every known code), "
                "the built-in aligned sources, the supported architectures, the embedded models, the tasks or the "
                "paper protocols (--protocol NAME of a verb). "
                "Python: bs.ls(what='languages').to_frame().", writes_results=False)
