import pytest

from babelscope.data.corpus import Item, ParallelCorpus
from babelscope.measure.aggregate import fertility_correlation
from babelscope.measure.fertility import HFCounter, add_nsl, fertility_table, get_counter

CORPUS = ParallelCorpus([
    Item("a", {"eng_Latn": "The cat sat on the mat.", "deu_Latn": "Die Katze saß auf der Matte.",
               "zho_Hans": "猫坐在垫子上。"}),
    Item("b", {"eng_Latn": "It looked out of the window.", "deu_Latn": "Sie schaute aus dem Fenster.",
               "zho_Hans": "它望着窗外。"}),
    Item("c", {"eng_Latn": "Only English here."}),
])


class SplitCounter:
    """Counts whitespace words, so expected figures are easy to state."""

    name = "words"

    def count(self, texts):
        return [len(t.split()) for t in texts]


def test_english_parity_is_one_and_other_figures(tiny_tokenizer):
    table = fertility_table(HFCounter("tiny", tiny_tokenizer), CORPUS, ["eng_Latn", "deu_Latn", "zho_Hans"],
                            progress=False)
    assert table["eng_Latn"]["parity"] == 1.0
    assert table["eng_Latn"]["items"] == 3 and table["deu_Latn"]["items"] == 2
    assert table["zho_Hans"]["unit"] == "char" and table["deu_Latn"]["unit"] == "word"
    for figures in table.values():
        assert figures["bytes_per_token"] * figures["tokens_per_char"] == pytest.approx(
            figures["bytes"] / figures["chars"])


def test_parity_uses_the_same_items():
    table = fertility_table(SplitCounter(), CORPUS, ["eng_Latn", "deu_Latn"], progress=False)
    # deu: 6 + 5 words on items a, b; eng on the same items: 6 + 6
    assert table["deu_Latn"]["parity"] == pytest.approx(11 / 12)
    assert table["deu_Latn"]["fertility"] == pytest.approx(1.0)


def test_tekken_counts_tokens():
    pytest.importorskip("mistral_common")  # babelscope[tekken]
    counter = get_counter("tekken")
    n = counter.count(["The cat sat on the mat.", "猫坐在垫子上。"])
    assert all(k > 0 for k in n)


def test_nsl_is_tokens_over_the_baseline_tokenizer_on_the_same_items(tiny_tokenizer):
    tables = {"base": fertility_table(SplitCounter(), CORPUS, ["eng_Latn", "deu_Latn"], progress=False),
              "tiny": fertility_table(HFCounter("tiny", tiny_tokenizer), CORPUS, ["eng_Latn", "deu_Latn"],
                                      progress=False)}
    add_nsl(tables)
    for lang in ("eng_Latn", "deu_Latn"):
        assert tables["base"][lang]["nsl"] == 1.0
        ratio = tables["tiny"][lang]["tokens"] / tables["base"][lang]["tokens"]
        assert tables["tiny"][lang]["nsl"] == pytest.approx(ratio)


def test_the_fertility_correlation_keeps_one_unit_per_figure():
    fert = {"eng_Latn": {"unit": "word", "fertility": 1.2, "tokens_per_char": 0.25},
            "deu_Latn": {"unit": "word", "fertility": 1.6, "tokens_per_char": 0.30},
            "fra_Latn": {"unit": "word", "fertility": 1.4, "tokens_per_char": 0.28},
            "zho_Hans": {"unit": "char", "fertility": 0.9, "tokens_per_char": 0.90},
            "jpn_Jpan": {"unit": "char", "fertility": 0.8, "tokens_per_char": 0.80}}
    per_task = {"t": {lang: {"acc": a} for lang, a in
                      zip(fert, (0.9, 0.5, 0.7, 0.4, 0.6), strict=True)}}
    out = fertility_correlation(per_task, {"t": {"headline": "acc"}}, fert)["t"]
    assert out["fertility_per_word"]["languages"] == ["eng_Latn", "deu_Latn", "fra_Latn"]
    assert out["fertility_per_word"]["pearson"] == pytest.approx(-1.0)  # more tokens per word, lower acc
    assert out["fertility_per_char"]["languages"] == ["zho_Hans", "jpn_Jpan"]
    assert out["fertility_per_char"]["pearson"] is None  # 2 languages: too few
    assert out["tokens_per_char"]["n"] == 5


def _eval_payload(acc: dict, tpc: dict, tokens: dict, task="belebele"):
    """A hand-made eval results payload: one task, headline acc, fertility per language."""
    fert = {lang: {"items": 10, "tokens": tokens[lang], "tokens_per_char": tpc[lang], "fertility": tpc[lang] * 4,
                   "unit": "char" if lang == "zho_Hans" else "word"} for lang in acc}
    return {"tasks": {task: {lang: {"acc": a} for lang, a in acc.items()}},
            "task_info": {task: {"headline": "acc"}}, "fertility": fert}


def test_pooled_fertility_correlation_pools_runs_tasks_and_languages():
    from babelscope.measure.aggregate import pooled_fertility_correlation

    a = _eval_payload({"eng_Latn": 0.9, "deu_Latn": 0.8, "zho_Hans": 0.5}, {"eng_Latn": 0.2, "deu_Latn": 0.3,
                      "zho_Hans": 0.9}, {"eng_Latn": 100, "deu_Latn": 150, "zho_Hans": 200})
    b = _eval_payload({"eng_Latn": 0.7, "deu_Latn": 0.6, "ben_Beng": 0.2}, {"eng_Latn": 0.25, "deu_Latn": 0.4,
                      "ben_Beng": 1.2}, {"eng_Latn": 120, "deu_Latn": 300, "ben_Beng": 50})
    b["tasks"]["other"] = {"eng_Latn": {"bleu": 30.0}}
    b["task_info"]["other"] = {"headline": "bleu"}
    out = pooled_fertility_correlation([a, b], ["a", "b"])
    acc = out["acc"]
    assert acc["runs"] == ["a", "b"] and acc["points"] == 6 and acc["tasks"] == ["belebele"]
    assert acc["languages"] == ["ben_Beng", "deu_Latn", "eng_Latn", "zho_Hans"]
    assert acc["tokens_per_char"]["n"] == 6 and acc["tokens_per_char"]["pearson"] < -0.9
    assert acc["fertility_per_word"]["n"] == 5 and acc["fertility_per_char"]["n"] == 1
    assert acc["fertility_per_char"]["pearson"] is None
    # nsl against the first run: a's 1.0 x3, b's eng 1.2 and deu 2.0 (ben_Beng has no baseline)
    assert acc["nsl"]["n"] == 5
    assert out["bleu"]["points"] == 1 and out["bleu"]["runs"] == ["b"]  # metrics are not mixed
    only = pooled_fertility_correlation([a, b], ["a", "b"], languages=["eng_Latn", "deu_Latn"])
    assert only["acc"]["points"] == 4 and only["acc"]["languages"] == ["deu_Latn", "eng_Latn"]
