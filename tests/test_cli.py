import subprocess
import sys

import pytest

from babelscope.cli.main import _normalise, build_parser, config_of, main


def _subparsers(parser):
    return parser._subparsers._group_actions[0].choices


def test_every_verb_has_help_for_every_flag():
    parser = build_parser()
    sub = _subparsers(parser)
    assert {"eval", "rescore", "fertility", "ls", "demo"} <= set(sub)
    for name, p in sub.items():
        for action in p._actions:
            if action.option_strings and action.dest != "help":
                assert action.help, f"{name} {action.option_strings} has no help"


def test_help_runs_in_a_subprocess():
    out = subprocess.run([sys.executable, "-m", "babelscope", "--help"], capture_output=True, text=True)
    assert out.returncode == 0 and "measure:" in out.stdout and "fertility" in out.stdout and "eval" in out.stdout


def test_wrong_language_is_one_line_and_exit_2(capsys):
    assert main(["fertility", "--languages", "eng_Latn,Germn", "--output_path", "/nonexistent/x"]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and "Did you mean deu_Latn" in err[0]


def test_hyphen_aliases_and_config_precedence(tmp_path):
    cfg = tmp_path / "run.yaml"
    cfg.write_text("languages: deu_Latn\nlimit: 7\nbatch_size: 2\nverb: eval\n")
    argv = _normalise(["eval", "--config", str(cfg), "--output-path", "out", "--limit", "3"])
    config = config_of(build_parser().parse_args(argv))
    assert config.languages == "deu_Latn"  # from YAML
    assert config.limit == 3  # CLI beats YAML
    assert config.output_path == "out"  # hyphen alias
    assert config.batch_size == 2 and config.tasks == "continuation,translation"  # YAML, default


def test_unknown_config_key(tmp_path, capsys):
    cfg = tmp_path / "bad.yaml"
    cfg.write_text("langs: x\n")
    assert main(["eval", "--config", str(cfg)]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and "unknown option(s) langs" in err[0]


@pytest.mark.parametrize("text,why", [("- a\n- b\n", "must be a YAML mapping"), ("a: [\n", "not valid YAML"),
                                      ("limit: lots\n", "--limit must be a number"),
                                      ("limit: 0\n", "--limit must be at least 1")])
def test_bad_config_file_is_one_line(tmp_path, capsys, text, why):
    cfg = tmp_path / "bad.yaml"
    cfg.write_text(text)
    assert main(["eval", "--config", str(cfg), "--output_path", str(tmp_path / "runs")]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and why in err[0], err
    assert not (tmp_path / "runs").exists()


def _ls_topics():
    from babelscope.verbs.ls import WHAT

    return list(WHAT)


@pytest.mark.parametrize("what", _ls_topics())
def test_every_ls_topic_lists_something(what, capsys):
    assert main(["ls", what]) == 0
    out = capsys.readouterr().out
    expected = {"architectures": "llama", "models": "default", "languages": "fra_Latn", "sources": "gnome",
                "tasks": "continuation", "protocols": "lape-paper"}
    assert expected[what] in out, (what, out[:500])


def test_negative_boolean_flags_accept_hyphens():
    assert _normalise(["--no-dry-run", "--batch-size=4", "--no-verbose"]) == ["--no-dry_run", "--batch_size=4",
                                                                           "--no-verbose"]


def test_lm_eval_model_flag_habits(tmp_path, capsys):
    argv = _normalise(["eval", "--model", "hf", "--model_args", "pretrained=smollm2-135m,dtype=float32"])
    config = config_of(build_parser(only="eval").parse_args(argv))
    assert config.model_spec() == {"pretrained": "smollm2-135m", "dtype": "float32"}
    argv = _normalise(["eval", "--model", "hf", "--model_args", "pretrained=x", "--num_fewshot", "0", "--log_samples",
                       "--trust_remote_code"])
    config = config_of(build_parser(only="eval").parse_args(argv))
    assert config.model_spec() == {"pretrained": "x", "trust_remote_code": True} and config.log_samples
    assert main(["eval", "--model", "vllm", "--model_args", "pretrained=x", "--output_path", str(tmp_path)]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and "--model vllm" in err[0] and "--model hf" in err[0]


@pytest.mark.parametrize("argv", [["eval", "--model_arg", "pretrained=x"], ["eval", "--lim", "3"]])
def test_flag_prefixes_are_not_guessed(argv, capsys):
    with pytest.raises(SystemExit) as exc:
        main(argv)
    assert exc.value.code == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and "unrecognized arguments" in err[0]
