import subprocess
import sys

import pytest

from babelscope.cli.main import build_parser, discover, main


def test_every_verb_has_help_for_every_flag():
    verbs = discover()
    assert {"fertility", "ls", "demo"} <= {v.name for v in verbs}
    parser = build_parser(verbs)
    sub = parser._subparsers._group_actions[0].choices
    for verb in verbs:
        for action in sub[verb.name]._actions:
            if action.option_strings and action.dest != "help":
                assert action.help, f"{verb.name} {action.option_strings} has no help"


def test_help_runs_in_a_subprocess():
    out = subprocess.run([sys.executable, "-m", "babelscope", "--help"], capture_output=True, text=True)
    assert out.returncode == 0 and "measure:" in out.stdout and "fertility" in out.stdout


def test_wrong_language_is_one_line_and_exit_2(capsys):
    assert main(["fertility", "--languages", "eng_Latn,Germn", "--output_path", "/nonexistent/x"]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and "Did you mean deu_Latn" in err[0]


def test_hyphen_aliases_and_config_precedence(tmp_path):
    cfg = tmp_path / "run.yaml"
    cfg.write_text("languages: deu_Latn\nlimit: 7\nverb: fertility\n")
    parser = build_parser(discover())
    from babelscope.cli.main import _apply_config, _normalise

    argv = _normalise(["fertility", "--config", str(cfg), "--output-path", "out", "--limit", "3"])
    args = _apply_config(parser, argv, parser.parse_args(argv))
    assert args.languages == "deu_Latn"  # from YAML
    assert args.limit == 3  # CLI beats YAML
    assert args.output_path == "out"  # hyphen alias


def test_unknown_config_key(tmp_path, capsys):
    cfg = tmp_path / "bad.yaml"
    cfg.write_text("langs: x\n")
    assert main(["fertility", "--config", str(cfg)]) == 2
    assert "unknown key(s) langs" in capsys.readouterr().err


@pytest.mark.parametrize("what", ["architectures", "models"])
def test_ls(what, capsys):
    assert main(["ls", what]) == 0
    assert "llama" in capsys.readouterr().out or what == "models"
