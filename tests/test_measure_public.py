"""Public benchmark adapters on local fixtures in the public schemas, user tasks, generation metrics."""

import json
from pathlib import Path

import pytest

pytest.importorskip("lm_eval")  # the public tasks take lm-eval's prompts: babelscope[lm_eval]

from babelscope.errors import DataError, LanguageError
from babelscope.measure import evaluate
from babelscope.measure import metrics as M
from babelscope.measure.tasks import get_task
from babelscope.measure.tasks.public import lm_eval_task_yaml, render

FIXTURES = Path(__file__).parent / "fixtures" / "measure"


@pytest.fixture(autouse=True)
def task_data(monkeypatch):
    monkeypatch.setenv("BABELSCOPE_TASK_DATA", str(FIXTURES))


def test_belebele_prompt_is_lm_evals():
    data = get_task("belebele").load(["eng_Latn", "fra_Latn"])
    spec = lm_eval_task_yaml("belebele/_default_template_yaml")
    doc = __import__("json").loads((FIXTURES / "belebele" / "eng_Latn.jsonl").read_text().splitlines()[0])
    item = data["eng_Latn"][0]
    assert item.context == render(spec["doc_to_text"], doc)
    assert item.choices == [" " + c for c in spec["doc_to_choice"]] and item.gold == 1
    assert [it.item_id for it in data["eng_Latn"]] == [it.item_id for it in data["fra_Latn"]]


def test_xnli_xcopa_xstorycloze_items():
    xnli = get_task("xnli").load(["eng_Latn", "deu_Latn"])
    assert (
        xnli["deu_Latn"][0].choices[0] == "Der Mann spielt auf der Bühne Gitarre., richtig? Ja, Ein Mann macht Musik."
    )
    assert xnli["eng_Latn"][1].gold == 2 and xnli["eng_Latn"][0].context == ""
    xcopa = get_task("xcopa").load(["ita_Latn", "zho_Hans"])
    assert xcopa["ita_Latn"][0].context == "L'uomo aprì il rubinetto quindi"
    assert xcopa["ita_Latn"][0].choices == [" il gabinetto si riempì d'acqua.", " l'acqua scorreva dal beccuccio."]
    story = get_task("xstorycloze").load(["eng_Latn", "rus_Cyrl"])
    assert story["eng_Latn"][0].item_id == story["rus_Cyrl"][0].item_id == "s-001"
    assert story["eng_Latn"][0].context.startswith("Tom wanted a dog. He saved") and story["eng_Latn"][0].gold == 0


def test_generation_tasks_use_lm_eval_prompts():
    mgsm = get_task("mgsm").load(["deu_Latn"])["deu_Latn"][0]
    assert mgsm.context == "Frage: Janet hat 3 Äpfel und kauft 4 dazu. Wie viele Äpfel hat sie?\nAntwort:"
    assert mgsm.references == ["7"] and "Frage:" in mgsm.until
    xquad = get_task("xquad").load(["eng_Latn", "deu_Latn"])
    assert (
        xquad["deu_Latn"][0].context.startswith("Kontext: Die Panthers")
        and xquad["deu_Latn"][0].item_id == xquad["eng_Latn"][0].item_id
    )
    flores = get_task("flores").load(["fra_Latn", "deu_Latn"])
    assert flores["fra_Latn"][0].context.startswith("English: ") and flores["fra_Latn"][0].context.endswith("French:")
    assert len(flores["deu_Latn"]) == 2
    mub = get_task("mubench").load(["eng_Latn", "deu_Latn"])
    assert mub["deu_Latn"][0].item_id == "sc-17" and mub["deu_Latn"][0].choices[0] == " Er adoptierte einen Welpen."


def test_language_without_config_and_missing_data_are_one_line_errors(monkeypatch):
    with pytest.raises(LanguageError, match="available: .*ita_Latn"):
        get_task("xcopa").load(["fra_Latn"])
    monkeypatch.setenv("BABELSCOPE_TASK_DATA", str(FIXTURES / "nowhere"))
    monkeypatch.setenv("HF_DATASETS_OFFLINE", "1")
    with pytest.raises(DataError, match="BABELSCOPE_TASK_DATA/xnli/en.jsonl") as err:
        get_task("xnli").load(["eng_Latn"])
    assert "\n" not in str(err.value)


def test_user_tasks_from_yaml_and_jsonl():
    caps = get_task(str(FIXTURES / "user" / "capitals.yaml"))
    data = caps.load(["deu_Latn", "fra_Latn"])
    assert caps.name == "capitals" and caps.kind == "mc"
    assert data["deu_Latn"][0].context == "Die Hauptstadt von Deutschland ist" and data["fra_Latn"][1].gold == 0
    qa = get_task(str(FIXTURES / "user" / "qa.jsonl"))
    assert qa.kind == "generate" and qa.load(["fra_Latn"])["fra_Latn"][0].references == ["4", "quatre"]
    with pytest.raises(LanguageError, match="available: eng_Latn, fra_Latn"):
        qa.load(["deu_Latn"])
    with pytest.raises(DataError, match="bad-7"):
        get_task(str(FIXTURES / "user" / "broken.jsonl")).load(["eng_Latn"])


def test_malformed_user_item_fails_at_task_resolution_with_file_line_and_id(tmp_path):
    items = tmp_path / "items.jsonl"
    good = {"item_id": "ok-1", "language": "eng_Latn", "context": "2 + 2 =", "choices": [" 4", " 5"], "gold": 0}
    bad = {"item_id": "bad-2", "language": "eng_Latn", "context": "3 + 3 =", "choices": [" 6"], "gold": 4}
    items.write_text(json.dumps(good) + "\n\n" + json.dumps(bad) + "\n", encoding="utf-8")  # a blank line 2
    with pytest.raises(DataError, match=r"items.jsonl line 3: item bad-2: gold index 4") as err:
        get_task(str(items))  # before any model is loaded
    assert "\n" not in str(err.value)
    spec = tmp_path / "task.yaml"
    spec.write_text("data: items.jsonl\n", encoding="utf-8")
    with pytest.raises(DataError, match=r"items.jsonl line 3: item bad-2"):
        get_task(str(spec))
    items.write_text("[1, 2]\n", encoding="utf-8")
    with pytest.raises(DataError, match="line 1: every row is a JSON object"):
        get_task(str(items))


def test_public_and_user_tasks_evaluate_end_to_end(tiny_tokenizer):
    from babelscope.testing import make_tiny_loaded

    loaded = make_tiny_loaded("llama", tiny_tokenizer, max_position_embeddings=1024)  # mgsm asks for 256 tokens
    result = evaluate(
        loaded,
        ["xquad", "mgsm", str(FIXTURES / "user" / "capitals.yaml")],
        ["deu_Latn"],
        progress=False,
        fertility=False,
    )
    res = result.results
    from babelscope.measure import format_table

    assert "xquad exact_match" in format_table(result) and "capitals cons. vs eng" in format_table(result)
    x = res["tasks"]["xquad"]["deu_Latn"]
    assert {"exact_match", "f1", "gold_in", "off_target", "n"} <= set(x) and x["n"] == 1
    assert 0 <= res["tasks"]["mgsm"]["deu_Latn"]["number_match"] <= 1
    assert res["tasks"]["capitals"]["deu_Latn"]["n"] == 2
    fl = evaluate(loaded, "flores", ["fra_Latn", "deu_Latn"], progress=False, fertility=False).results
    assert fl["tasks"]["flores"]["fra_Latn"]["chrf"] >= 0 and "bleu" in fl["tasks"]["flores"]["deu_Latn"]
    assert set(fl["off_target"]["flores"]) == {"fra_Latn", "deu_Latn"}


def test_generation_metrics():
    assert M.f1_score("the Arizona Cardinals", "Arizona Cardinals") == 1.0
    assert M.f1_score("Arizona", "Arizona Cardinals") == pytest.approx(2 / 3)
    assert M.f1_score("亚利桑那红雀队", "红雀队") == pytest.approx(2 * (3 / 7) * 1 / (3 / 7 + 1))
    assert M.extract_number("so she has 1,234.0 apples") == "1234" and M.extract_number("none") is None
    rec = M.gen_record(
        type("G", (), {"item_id": "a", "context": "", "references": ["Paris"]})(),
        "It is Paris, of course.",
        ("exact_match", "gold_in", "number_match"),
    )
    assert rec["exact_match"] == 0.0 and rec["gold_in"] == 1.0 and rec["number_match"] == 0.0
    recs = [{"output": "Le musée ouvre à neuf heures.", "references": ["Le musée ouvre à neuf heures."]}]
    assert M.gen_metrics(recs, ("chrf", "bleu"), "fra_Latn")["chrf"] == pytest.approx(100.0)


def test_off_target_detects_wrong_language():
    from babelscope.measure.aggregate import off_target

    recs = [
        {"output": "Das ist ein ganz normaler deutscher Satz über das Wetter."},
        {"output": "This sentence is written in English, not in German at all."},
    ]
    assert off_target(recs, "deu_Latn")["off_target"] == 0.5
    assert [r["detected_language"] for r in recs] == ["deu_Latn", "eng_Latn"]  # FLORES-200 codes


def test_mubench_table_has_its_61_languages_and_mmlu_pro():
    from babelscope.languages import resolve

    codes = ("af ar az bg bn ca ceb cs da de el en es et fa fi fr ga gu he hi hr hu id is it ja jv kk km kn ko lt lv "
             "ml mr ms my nl no pa pl pt ro ru sk sl sq sr sv sw ta te th tl tr uk ur uz vi zh").split()
    mub = get_task("mubench")
    assert len(mub.configs) == 61 and sorted(mub.configs.values()) == sorted(codes)
    assert all(resolve(code) == flores for flores, code in mub.configs.items())
    assert mub.config_for("ceb_Latn") == "StoryClozeDataset_lighteval_ceb"
    assert get_task("mubench_MMLUProDataset").config_for("tel_Telu") == "MMLUProDataset_lighteval_te"
