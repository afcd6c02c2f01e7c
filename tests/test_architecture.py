"""The dependency rule of docs/architecture.md, checked on the source with the AST:

    cli -> verbs -> measure / interpret / improve / cypher / report -> models / data
        -> runs, languages, errors, distributed, schema

A module may import its own layer or any layer below it, never one above; imports inside
functions count too (they hid three import circles before). `babelscope/__init__.py` (the lazy
public API) and `__main__.py` sit above everything.
"""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

SRC = Path(__file__).resolve().parents[1] / "src" / "babelscope"
LAYERS = {  # first component under babelscope -> rank (higher may import lower)
    "__init__": 9, "__main__": 9, "testing": 8,
    "cli": 6, "verbs": 5,
    "measure": 4, "interpret": 4, "improve": 4, "cypher": 4, "report": 4,
    "models": 3, "data": 3,
    "runs": 2, "languages": 2, "errors": 2, "distributed": 2, "schema": 2, "protocols": 2,
}
MIDDLE_ALLOWED = {  # sideways edges inside the middle layer: improving re-measures; interpreting scores
    ("improve", "measure"), ("improve", "interpret"), ("interpret", "measure"),
}


def _component(module: str) -> str:
    parts = module.split(".")
    return parts[1] if len(parts) > 1 else "__init__"


def _module_name(path: Path, root: Path = SRC) -> str:
    rel = path.relative_to(root.parent).with_suffix("")
    parts = list(rel.parts)
    if parts[-1] == "__init__" and len(parts) > 1:
        parts = parts[:-1] if len(parts) > 2 else parts
    return ".".join(parts)


def internal_imports(path: Path, root: Path = SRC) -> list[tuple[int, str]]:
    """(line, imported babelscope module) for every import in the file, at any depth."""
    tree = ast.parse(path.read_text(encoding="utf-8"))
    name = _module_name(path, root)
    package = name if path.name == "__init__.py" else name.rsplit(".", 1)[0]
    out = []
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            out += [(node.lineno, a.name) for a in node.names if a.name.startswith("babelscope")]
        elif isinstance(node, ast.ImportFrom):
            base = node.module or ""
            if node.level:
                anchor = package.split(".")[: len(package.split(".")) - node.level + 1]
                base = ".".join([*anchor, *([base] if base else [])])
            if base == "babelscope":  # from babelscope import verbs
                out += [(node.lineno, f"babelscope.{a.name}") for a in node.names]
            elif base.startswith("babelscope"):
                out.append((node.lineno, base))
    return out


def violations(root: Path = SRC) -> list[str]:
    found = []
    for path in sorted(root.rglob("*.py")):
        source = _component(_module_name(path, root))
        for line, target in internal_imports(path, root):
            dest = _component(target)
            if dest not in LAYERS or source not in LAYERS or source == dest:
                continue
            up = LAYERS[dest] > LAYERS[source]
            sideways = LAYERS[dest] == LAYERS[source] == 4 and (source, dest) not in MIDDLE_ALLOWED
            if up or sideways:
                found.append(f"{path.relative_to(root.parent)}:{line}: {source} -> {dest} ({target})")
    return found


def test_every_component_has_a_layer():
    components = {_component(_module_name(p)) for p in SRC.rglob("*.py")}
    assert components <= set(LAYERS), f"add a layer for {sorted(components - set(LAYERS))}"


def test_no_import_goes_against_the_dependency_rule():
    assert violations() == []


@pytest.mark.parametrize("library_module", ["measure/evaluate.py", "models/load.py", "runs.py", "verbs/eval.py"])
def test_the_rule_catches_an_upward_import(tmp_path, library_module):
    import shutil

    copy = tmp_path / "babelscope"
    shutil.copytree(SRC, copy)
    target = copy / library_module
    target.write_text(target.read_text(encoding="utf-8") + "\nfrom babelscope.cli.main import main\n")
    assert any("-> cli" in v for v in violations(copy))


def test_no_function_in_cli_or_verbs_is_longer_than_60_lines():
    long = []
    for folder in ("cli", "verbs"):
        for path in sorted((SRC / folder).rglob("*.py")):
            for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
                if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef)):
                    length = node.end_lineno - node.lineno + 1
                    if length > 60:
                        long.append(f"{path.relative_to(SRC)}:{node.lineno} {node.name} ({length} lines)")
    assert long == []


def test_no_cli_module_is_over_120_lines():
    sizes = {p.name: len(p.read_text(encoding="utf-8").splitlines()) for p in (SRC / "cli").glob("*.py")}
    assert {name: n for name, n in sizes.items() if n > 120} == {}


def test_library_code_never_sees_argparse():
    users = [str(p.relative_to(SRC)) for p in SRC.rglob("*.py")
             if "argparse" in p.read_text(encoding="utf-8") and p.parts[len(SRC.parts)] not in ("cli", "verbs")]
    assert users == []
