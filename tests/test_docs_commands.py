"""Every command that README.md and docs/*.md show, run in a test: each page's shell commands and
Python blocks, in the page's order, in one scratch folder per page.

The embedded models are replaced by a tiny stand-in the cache already holds (an 18-layer llama of
width 32, saved under the cache folders of ``default`` and ``smollm2-135m``), so a command runs as the
page prints it, with its sizes capped (``CAPS``: at most 4 items per language, 2 training steps, 16
generated tokens, ...) so that it takes seconds. Run folders a page names by placeholder
(``runs/default/heads-<UTC>``, ``eval-A`` / ``eval-B``) are the runs the page made before, or, when it
made none, a small run of that verb made first (``PREREQUISITES``). Input files the pages name
(``my_items.csv``, ``pairs.jsonl``, ``text2cypher_test.parquet``, ``demo_dbs/``, ``task_data/``) are
written into the scratch folder, as is every block headed by a comment naming a file (``# plan.yaml``).

What needs something this machine lacks (``NOT_HERE``: the hub, a GPU, a Neo4j server, a model file
the user downloads) is still checked: a babelscope command is parsed by the verb's own parser, so a
stale flag fails here too. Setup lines (``pip install``, ``hf download``) are not run.
"""

from __future__ import annotations

import copy
import json
import os
import re
import shlex
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from babelscope.cli.main import build_parser, main
from babelscope.models.load import EMBEDDED
from babelscope.testing import make_tiny_model

ROOT = Path(__file__).resolve().parents[1]
DOC_FILES = [ROOT / "README.md", *sorted((ROOT / "docs").glob("*.md"))]
BLOCK = re.compile(r"^```(bash|sh|shell|console|python)\n(.*?)^```", re.S | re.M)
FILE_BLOCK = re.compile(r"^```\w+\n# (?P<name>[\w.-]+\.(?:yaml|yml|json|jsonl|csv|tsv))\n(?P<body>.*?)^```",
                        re.S | re.M)
RUN_PLACEHOLDER = re.compile(r"runs/[^/\s]+/(?P<verb>[a-z-]+?)-(?P<tag>[^/\s]+)")
NOT_HERE = {  # a pattern in the command -> what it needs
    "bolt://": "a Neo4j server",
    "--device cuda": "a GPU",
    "models/smolvlm": "a model from the hub",
    "models/Qwen2-VL": "a model from the hub",
    "pretrained=tiny-llava": "a tiny LVLM folder (tests/test_lvlm_cli.py runs these commands)",
    "~/models/glotlid": "a language-ID model the user downloads",
    "lm_eval:xnli": "the hub or the HF datasets cache",
    "lm_eval:global_mmlu": "the hub or the HF datasets cache",
    "-o plast.html": "the LVLM runs above (models from the hub)",
    "scripts/build_corpus.py": "Debian's archive (it downloads the source packages)",
}
SETUP = ("pip install", "hf download", "python - <<", "tensorboard --logdir")  # not run: setup, or a viewer
CHAT_TEMPLATE = "{% for m in messages %}<{{ m['role'] }}>{{ m['content'] }}</{{ m['role'] }}>{% endfor %}<model>"
# Sizes a command may ask for, capped (and set where the verb has the option and the command omits it).
CAPS = {"limit": 4, "num_items": 8, "num_eval_items": 4, "max_steps": 2, "max_tokens": 2048, "train_limit": 4,
        "eval_limit": 4, "max_gen_toks": 16, "max_new_tokens": 16, "num_prompts": 2}
# A small run of a verb, made when a page names a run of it that the page did not make itself.
PREREQUISITES = {
    "eval": ["eval", "--tasks", "continuation", "--languages", "eng_Latn,fra_Latn", "--limit", "{n}"],
    "heads": ["heads", "--languages", "eng_Latn,fra_Latn", "--num_items", "4"],
    "neurons": ["neurons", "--languages", "eng_Latn,fra_Latn", "--max_tokens", "256"],
    "layers": ["layers", "--languages", "eng_Latn,fra_Latn", "--max_tokens", "256"],
    "finetune": ["finetune", "--layers", "0", "--data", "parallel:builtin", "--languages", "eng_Latn,fra_Latn",
                 "--max_steps", "{n}"],
    "mask": ["mask", "--languages", "fra_Latn", "--scores", "runs/default/heads-any", "--train_limit", "4",
             "--eval_limit", "4", "--epochs", "1"],
}


def page_steps(path: Path) -> list[tuple[int, str, object]]:
    """(line, "shell", words) for each shell command and (line, "python", code) for each Python block."""
    text = path.read_text(encoding="utf-8")
    steps = []
    for match in BLOCK.finditer(text):
        first_line = text.count("\n", 0, match.start(2)) + 1
        if match[1] == "python":
            steps.append((first_line, "python", match[2]))
        else:
            steps += [(first_line + i, "shell", words) for i, words in _shell_lines(match[2].splitlines())]
    return steps


def _shell_lines(lines: list[str]):
    """(offset, words) per command: continuation lines joined, here-documents skipped with their command."""
    i = 0
    while i < len(lines):
        start, line = i, lines[i]
        while line.rstrip().endswith("\\") and i + 1 < len(lines):
            i += 1
            line = line.rstrip()[:-1] + " " + lines[i]
        i += 1
        heredoc = re.search(r"<<-?\s*'?(\w+)'?", line)
        if heredoc:
            while i < len(lines) and lines[i].strip() != heredoc[1]:
                i += 1
            i += 1
        words = shlex.split(line, comments=True)
        if words:
            yield start, words


def babelscope_argv(words: list[str]) -> list[str] | None:
    """The verb's arguments when ``words`` run babelscope (directly, under torchrun, or as ``make demo``)."""
    if words[:1] == ["babelscope"]:
        return words[1:]
    if words[:1] == ["torchrun"] and "babelscope" in words:  # one process here; sharding has its own tests
        return words[words.index("babelscope") + 1:]
    if words == ["make", "demo"]:
        return ["demo"]
    return None


def test_the_docs_show_commands_of_every_verb():
    from babelscope.verbs import MODULES

    shown = {argv[0] for path in DOC_FILES for _, kind, words in page_steps(path)
             if kind == "shell" and (argv := babelscope_argv(words))}
    missing = sorted(set(MODULES) - shown)
    assert not missing, f"no README/docs shell command shows these verbs: {missing}"


@pytest.fixture
def workspace(tmp_path, tiny_tokenizer, monkeypatch):
    """A scratch folder holding the stand-in models in its cache and the input files the pages name."""
    model = make_tiny_model("llama", len(tiny_tokenizer), num_hidden_layers=18, max_position_embeddings=4096)
    tokenizer = copy.deepcopy(tiny_tokenizer)
    tokenizer.chat_template = CHAT_TEMPLATE
    cache = tmp_path / "cache"
    for folder in {spec.folder for spec in EMBEDDED.values()}:
        target = cache / "models" / folder
        model.save_pretrained(target)
        tokenizer.save_pretrained(target)
        target.with_name(target.name + ".complete").write_text("")
    monkeypatch.setenv("BABELSCOPE_CACHE", str(cache))
    monkeypatch.chdir(tmp_path)
    _write_inputs(tmp_path)
    return tmp_path


def _write_inputs(root: Path) -> None:
    import pandas as pd

    from cypher_fixtures import make_db
    from test_lm_eval_tasks import belebele_rows

    shutil.copytree(ROOT / "examples", root / "examples", ignore=shutil.ignore_patterns("models", "runs"))
    rows = [f"n-{i},Number {i} is here.,Le nombre {i} est ici.,Die Zahl {i} ist hier." for i in range(40)]
    (root / "my_items.csv").write_text("item_id,eng_Latn,fr,de_DE\n" + "\n".join(rows) + "\n")
    (root / "pairs.jsonl").write_text("".join(json.dumps({"item_id": f"p{i}", "eng_Latn": f"I have {i} cats.",
                                                          "fra_Latn": f"J'ai {i} chats."}) + "\n" for i in range(40)))
    for lang in ("eng_Latn", "fra_Latn", "deu_Latn"):
        data = root / "task_data" / "facebook" / "belebele" / lang / "test.jsonl"
        data.parent.mkdir(parents=True)
        data.write_text("".join(json.dumps(r, ensure_ascii=False) + "\n" for r in belebele_rows(lang)))
    t2c = [{"question": "List the movies", "schema": "Movie {name: STRING}", "cypher": "MATCH (m:Movie) RETURN m.name",
            "instance_id": "q1", "database_reference_alias": "movies", "data_source": "docs",
            "question_es": "Lista las películas"}]
    pd.DataFrame(t2c).to_parquet(root / "text2cypher_test.parquet")
    (root / "demo_dbs").mkdir()
    make_db(root / "demo_dbs" / "movies.lbug", "Movie", ["Apollo 13", "Heat"])


def _runs_of(root: Path, verb: str) -> list[Path]:
    runs = [p for p in (root / "runs").glob(f"*/{verb}-*") if (p / "results.json").is_file()]
    return sorted(runs, key=lambda p: json.loads((p / "results.json").read_text())["started"])


def _resolve_runs(argv: list[str], root: Path, where: str) -> list[str]:
    """Placeholder run folders -> runs the page made (A/X: the first, B/Y: the second, else the latest)."""
    out = []
    for word in argv:
        match = RUN_PLACEHOLDER.search(word)
        if match and not Path(word).exists():
            verb, tag = match["verb"], match["tag"]
            wanted = 2 if tag in ("B", "Y") else 1
            runs = _runs_of(root, verb)
            while len(runs) < wanted:
                _run(_prerequisite(verb, len(runs) + 2, root, where), where)
                runs = _runs_of(root, verb)
            run = runs[1] if tag in ("B", "Y") else runs[0] if tag in ("A", "X") else runs[-1]
            word = word.replace(match.group(0), str(run.relative_to(root)))
        out.append(word)
    return out


def _prerequisite(verb: str, n: int, root: Path, where: str) -> list[str]:
    if verb not in PREREQUISITES:
        pytest.fail(f"{where} names a {verb} run that the page did not make; add a small {verb} run to PREREQUISITES")
    return _resolve_runs([w.format(n=n) for w in PREREQUISITES[verb]], root, where)


def capped(argv: list[str]) -> list[str]:
    """``argv`` with each size in ``CAPS`` at most its cap, and added where the verb has it and argv omits it."""
    from babelscope.verbs import MODULES, spec

    fields = spec(argv[0]).config.__dataclass_fields__ if argv[0] in MODULES else {}
    out, given = list(argv), set()
    for i, word in enumerate(out[:-1]):
        name = word[2:].replace("-", "_") if word.startswith("--") else None
        if name in CAPS:
            given.add(name)
            out[i + 1] = str(min(float(out[i + 1]), CAPS[name])).removesuffix(".0")
    return out + [w for name, cap in CAPS.items() if name in fields and name not in given
                  for w in (f"--{name}", str(cap))]


def _run(argv: list[str], where: str) -> None:
    argv = capped(argv)
    rc = main(argv)
    assert rc == 0, f"{where}: `babelscope {shlex.join(argv)}` exited {rc}"


def _run_script(words: list[str], where: str, root: Path) -> None:
    """An example script (``examples/.../run.sh``), run in the scratch copy of examples/ with this Python."""
    env = dict(os.environ, PATH=f"{Path(sys.executable).parent}{os.pathsep}{os.environ['PATH']}")
    out = subprocess.run(["bash", *words], cwd=root, env=env, capture_output=True, text=True, timeout=600)
    assert out.returncode == 0, f"{where}: `{shlex.join(words)}` exited {out.returncode}:\n{out.stderr[-3000:]}"


def _shell(words: list[str], where: str, root: Path) -> None:
    argv, line = babelscope_argv(words), " ".join(words)
    if words == ["make", "test"] or line.startswith(SETUP):
        return  # the suite this test is part of; setup for a machine with the hub; a viewer
    not_here = any(mark in line for mark in NOT_HERE)
    if argv is not None:
        if not_here:
            build_parser().parse_args(argv)  # a valid command line; running it needs what NOT_HERE names
        else:
            _run(_resolve_runs(argv, root, where), where)
    elif words[0] == "python" and not_here:
        assert (ROOT / words[1]).is_file(), f"{where}: {words[1]} does not exist"
    else:
        assert words[0].startswith("examples/"), f"{where}: teach this test to run `{line}`"
        _run_script(words, where, root)


def _python(code: str, where: str) -> None:
    if any(mark in code for mark in NOT_HERE):
        compile(code, where, "exec")
        return
    exec(compile(code, where, "exec"), {"__name__": "__docs__"})  # noqa: S102 - the page's own example


@pytest.mark.parametrize("path", [p for p in DOC_FILES if page_steps(p)], ids=lambda p: p.name)
def test_every_documented_command_runs(path, workspace):
    for match in FILE_BLOCK.finditer(path.read_text(encoding="utf-8")):  # a block headed `# plan.yaml`
        (workspace / match["name"]).write_text(match["body"], encoding="utf-8")
    for line, kind, step in page_steps(path):
        where = f"{path.relative_to(ROOT)}:{line}"
        if kind == "shell":
            _shell(step, where, workspace)
        else:
            _python(step, where)
