"""Paper protocols: shipped presets of a verb's config; defaults < protocol < --config YAML < command line;
the run's config.yaml records the protocol and every resolved value."""

import dataclasses

import pytest
import yaml

import babelscope as bs
from babelscope import protocols, verbs
from babelscope.cli.main import _normalise, build_parser, config_of, main
from measure_fixtures import small_corpus

REQUIRED = {"languages": "eng_Latn,fra_Latn", "recipe": "recipe.yaml", "run_folder": "run", "run_a": "a",
            "run_b": "b", "runs": "run", "what": "protocols"}  # stand-ins for options without a default


def test_every_shipped_protocol_builds_a_valid_config_of_its_verb():
    assert len(protocols.available()) >= 5
    for name in protocols.available():
        preset = protocols.load(name)
        assert preset.paper and preset.description, name
        spec = verbs.spec(preset.verb)
        required = {f.name: REQUIRED[f.name] for f in spec.config.fields()
                    if f.default is dataclasses.MISSING and f.default_factory is dataclasses.MISSING}
        config = spec.config.from_mapping({**required, "protocol": name}, verb=preset.verb)
        for key, value in preset.values.items():
            assert getattr(config, key) == value or str(getattr(config, key)) == str(value), (name, key)


def test_ls_protocols_lists_every_preset(capsys):
    assert main(["ls", "protocols"]) == 0
    out = capsys.readouterr().out
    assert all(name in out for name in protocols.available())
    frame = bs.ls(what="protocols").to_frame()
    assert sorted(frame["protocol"]) == protocols.available()


def test_command_line_beats_config_file_beats_protocol(tmp_path):
    argv = _normalise(["neurons", "--protocol", "lape-paper", "--top_rate", "0.02"])
    config = config_of(build_parser(only="neurons").parse_args(argv))
    assert config.method == "lape" and config.top_rate == 0.02 and config.filter_rate == 0.95
    cfg = tmp_path / "run.yaml"
    cfg.write_text("protocol: lape-paper\nfilter_rate: 0.9\n")
    config = config_of(build_parser(only="neurons").parse_args(["neurons", "--config", str(cfg)]))
    assert config.method == "lape" and config.filter_rate == 0.9 and config.protocol == "lape-paper"


@pytest.mark.parametrize(("argv", "why"), [
    (["neurons", "--protocol", "lape-papr"], "Did you mean lape-paper"),
    (["eval", "--protocol", "lape-paper"], "configures `babelscope neurons`, not `eval`"),
])
def test_a_wrong_protocol_is_one_line(tmp_path, capsys, argv, why):
    assert main([*argv, "--output_path", str(tmp_path / "out")]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and why in err[0]
    assert not (tmp_path / "out").exists()


def test_the_run_records_the_protocol_and_its_values(tiny_model_dir, tmp_path, monkeypatch):
    preset = tmp_path / "tiny-eval.yaml"
    preset.write_text(yaml.safe_dump({"verb": "eval", "paper": "a test", "description": "a test preset",
                                      "values": {"tasks": "continuation", "limit": 2}}))
    monkeypatch.setattr(protocols, "_files", lambda: {"tiny-eval": preset})
    protocols.load.cache_clear()
    corpus = tmp_path / "aligned.jsonl"
    small_corpus().save(str(corpus))
    r = bs.eval(protocol="tiny-eval", model=str(tiny_model_dir), languages="eng_Latn,fra_Latn",
                source=str(corpus), output_path=str(tmp_path / "runs"))
    recorded = yaml.safe_load((r.path / "config.yaml").read_text())
    assert recorded["protocol"] == "tiny-eval" and recorded["tasks"] == "continuation" and recorded["limit"] == 2
    assert r.results["config"]["protocol"] == "tiny-eval"
    assert {row["n"] for row in r.results["tasks"]["continuation"].values()} == {2}
    protocols.load.cache_clear()  # forget the stand-in preset


def test_docs_have_a_card_for_every_protocol():
    from pathlib import Path

    text = (Path(__file__).resolve().parents[1] / "docs" / "protocols.md").read_text(encoding="utf-8")
    cards = [line for line in text.splitlines() if line.startswith("## ")]
    assert len(cards) >= 9  # LAHIS, LAPE, LNA, PLAST, layer swapping, JGP, Text2Cypher, Bengali, MuBench
    for name in protocols.available():
        assert any(f"`{name}`" in card for card in cards), f"docs/protocols.md has no card naming {name}"
