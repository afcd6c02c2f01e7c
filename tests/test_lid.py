"""Language identification for off-target rates: each identifier's labels map to FLORES-200 codes
(explicit and pinned here), a user's fastText model (trained here in a second, labels like
GlotLID's and OpenLID's) drives eval's off-target rate end to end, bad flags are one-line errors."""

from __future__ import annotations

import json
import re
import subprocess
import sys
from pathlib import Path

import pytest

from babelscope.cli.main import main
from babelscope.errors import UsageError
from babelscope.languages import all_codes
from babelscope.measure import lid
from babelscope.measure.aggregate import off_target

DOCS = Path(__file__).resolve().parents[1] / "docs" / "measure.md"


@pytest.mark.parametrize(
    "label,codes",
    [
        ("en", ("eng_Latn",)),
        ("zh", ("zho_Hans", "zho_Hant")),  # py3langid names no script: both
        ("sr", ("srp_Cyrl", "srp_Latn")),
        ("ar", ("arb_Arab", "arb_Latn")),
        ("arz", ("arz_Arab",)),  # ISO 639-3 labels
        ("ace", ("ace_Arab", "ace_Latn")),
        ("no", ("nob_Latn",)),  # through languages' aliases
        ("ms", ("zsm_Latn",)),
        ("fa", ("pes_Arab",)),
        ("la", ()),  # outside FLORES-200: names nothing, so it is off-target for every language
        ("zxx", ()),
    ],
)
def test_py3langid_labels_map_to_flores(label, codes):
    assert lid.py3langid_flores(label) == codes


@pytest.mark.parametrize(
    "label,codes",
    [
        ("__label__eng_Latn", ("eng_Latn",)),  # FLORES-200 labels (OpenLID, most of GlotLID) map to themselves
        ("__label__zho_Hant", ("zho_Hant",)),
        ("__label__ara_Arab", ("arb_Arab",)),  # macrolanguage spellings: FLORES's member
        ("__label__fas_Arab", ("pes_Arab",)),
        ("__label__ekk_Latn", ("est_Latn",)),
        ("__label__cmn_Hans", ("zho_Hans",)),
        ("__label__cmn_Hani", ("zho_Hans", "zho_Hant")),  # Han without Simplified/Traditional: both
        ("__label__yue_Hani", ("yue_Hant",)),
        ("__label__srp_Latn", ("srp_Latn",)),
        ("__label__deu_Cyrl", ()),  # a script FLORES does not have for the language
        ("__label__sco_Latn", ()),  # outside FLORES-200
    ],
)
def test_fasttext_labels_map_to_flores(label, codes):
    assert lid.fasttext_flores(label) == codes


def test_py3langid_names_every_flores_code_its_labels_map_to_and_docs_list_them():
    ident = lid.identifier()
    names = ident.names()
    assert names == {c for label in ident.labels() for c in lid.py3langid_flores(label)}
    assert names <= set(all_codes()) and len(names) == 125
    section = DOCS.read_text(encoding="utf-8").split("## Language identification", 1)[1].split("\n## ", 1)[0]
    listed = re.search(r"py3langid can name these (\d+):\n\n(.*?)\n\n", section, re.S)
    assert int(listed.group(1)) == len(names) and set(listed.group(2).replace("`", "").split(", ")) == names
    assert ident.detect("Das ist ein ganz normaler deutscher Satz über das Wetter.") == "deu_Latn"
    assert ident.detect("这是一个关于天气的普通中文句子。") == "zho_Hans|zho_Hant"
    assert ident.detect("   ") is None


TRAIN = {  # a GlotLID/OpenLID-style label set: FLORES codes, one Han label, one language outside FLORES
    "eng_Latn": ["the cat sat on the mat", "where is the station please", "the weather is nice today",
                 "i would like a cup of tea", "this is a book about history"],
    "fra_Latn": ["le chat est assis sur le tapis", "où est la gare s'il vous plaît", "il fait beau aujourd'hui",
                 "je voudrais une tasse de thé", "c'est un livre sur l'histoire"],
    "cmn_Hani": ["猫坐在垫子上", "请问车站在哪里", "今天天气很好", "我想要一杯茶", "这是一本关于历史的书"],
    "sco_Latn": ["the wee cat sat on the mat aye", "whaur is the station", "it's a braw day the day",
                 "ah wid like a cup o tea", "this is a buik aboot history"],
}


@pytest.fixture(scope="module")
def ft_model(tmp_path_factory) -> str:
    """A tiny supervised fastText LID model (real fastText training, about a second). It trains in a
    fresh process: in one where transformers has built a model, fastText's training hits NaN."""
    folder = tmp_path_factory.mktemp("lid")
    lines = [f"__label__{label} {text}" for label, texts in TRAIN.items() for text in texts]
    (folder / "train.txt").write_text("\n".join(lines * 20) + "\n", encoding="utf-8")
    train = ("import fasttext, sys; fasttext.train_supervised(input=sys.argv[1], epoch=25, lr=0.2, dim=16, minn=1, "
             "maxn=3, bucket=20000, thread=1, seed=0, verbose=0).save_model(sys.argv[2])")
    subprocess.run([sys.executable, "-c", train, str(folder / "train.txt"), str(folder / "model.bin")], check=True)
    return str(folder / "model.bin")


def test_a_fasttext_model_detects_and_names_flores_codes(ft_model):
    ident = lid.identifier(lid_model=ft_model)  # a model file implies --lid fasttext
    assert ident.name == "fasttext" and ident.names() == {"eng_Latn", "fra_Latn", "zho_Hans", "zho_Hant"}
    assert ident.detect("where is the cat") == "eng_Latn"
    assert ident.detect("le chat est\nsur le tapis") == "fra_Latn"  # newlines: fastText reads one line
    assert ident.detect("今天的茶很好") == "zho_Hans|zho_Hant"
    assert ident.detect("ah wid like a wee cat aye") == "sco_Latn"  # outside FLORES: the raw label
    recs = [{"output": t} for t in ("the cat sat on the mat", "le chat est assis", "ah wid like a wee braw cat aye")]
    assert off_target(recs, "fra_Latn", ident) == {"off_target": 2 / 3}
    note = "fasttext cannot name deu_Latn"
    assert off_target(recs, "deu_Latn", ident) == {"off_target": None, "off_target_note": note}


def test_eval_with_lid_model_writes_off_target_by_it_and_rescore_agrees(ft_model, tiny_model_dir, tmp_path, capsys):
    task = tmp_path / "qa.jsonl"
    rows = [{"item_id": f"q{i}", "language": lang, "context": f"{text}:", "references": [text], "max_gen_toks": 6}
            for lang, texts in (("eng_Latn", TRAIN["eng_Latn"]), ("fra_Latn", TRAIN["fra_Latn"]),
                                ("deu_Latn", ["der Hund schläft", "wo ist der Bahnhof"]))
            for i, text in enumerate(texts[:2])]  # fmt: skip
    task.write_text("".join(json.dumps(r, ensure_ascii=False) + "\n" for r in rows), encoding="utf-8")
    argv = ["eval", "--model_args", f"pretrained={tiny_model_dir}", "--tasks", str(task), "--languages",
            "eng_Latn,fra_Latn,deu_Latn", "--lid_model", ft_model, "--output_path", str(tmp_path / "runs"),
            "--run_name", "lid"]
    assert main(argv) == 0
    run = next((tmp_path / "runs").rglob("lid"))
    res = json.loads((run / "results.json").read_text())
    assert res["config"]["lid_model"] == ft_model
    ident = lid.identifier(lid_model=ft_model)
    for lang in ("eng_Latn", "fra_Latn"):
        recs = [json.loads(line) for line in (run / "samples" / f"qa.{lang}.jsonl").read_text().splitlines()]
        assert [r["detected_language"] for r in recs] == [ident.detect(r["output"]) for r in recs]
        judged = [r for r in recs if r["detected_language"]]
        want = sum(not lid.is_language(r["detected_language"], lang) for r in judged) / len(judged)
        assert res["tasks"]["qa"][lang]["off_target"] == pytest.approx(want)
    assert res["tasks"]["qa"]["deu_Latn"]["off_target"] is None  # the model has no German label
    capsys.readouterr()
    assert main(["rescore", str(run)]) == 0
    assert "identical" in capsys.readouterr().out


@pytest.mark.parametrize(
    "flags,message",
    [
        (["--lid", "glotlid"], "--lid 'glotlid' is not one of py3langid, fasttext."),
        (["--lid", "fasttext"], "--lid fasttext needs --lid_model PATH"),
        (["--lid_model", "/no/such/model.bin"], "--lid_model /no/such/model.bin is not a file"),
    ],
)
def test_bad_lid_flags_are_one_line_errors_before_any_run_folder(flags, message, tmp_path, capsys):
    argv = ["eval", "--tasks", "translation", "--languages", "eng_Latn", "--output_path", str(tmp_path), *flags]
    assert main(argv) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and message in err[0]
    assert not list(tmp_path.iterdir())


def test_lid_model_with_py3langid_is_refused(ft_model):
    with pytest.raises(UsageError, match="--lid_model is for --lid fasttext"):
        lid.identifier("py3langid", ft_model)
