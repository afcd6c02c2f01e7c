"""babelscope's metrics against the well-kept libraries that define them, on fixed inputs with
their edge cases (empty strings, Unicode, CJK): nltk's GLEU, rouge-score's ROUGE-L, sacrebleu's
13a tokens, scikit-learn's Cohen's kappa and the SQuAD EM/F1 of torchmetrics."""

from __future__ import annotations

import random

import pytest

from babelscope.cypher import metrics as C
from babelscope.measure import metrics as M
from babelscope.measure.consistency import _kappa

QUERIES = [  # (prediction, gold)
    ("MATCH (c:Country) RETURN c.name", "MATCH (c:Country) RETURN c.name"),
    ("MATCH (c:Country) RETURN c.code", "MATCH (c:Country) RETURN c.name"),
    ("", "MATCH (c:Country) RETURN c.name"),
    ("", ""),
    ("RETURN 'Zürich'", "RETURN 'zürich'"),  # literals keep their case
    ("MATCH (c:City {name: '東京'}) RETURN c", "MATCH (c:City {name: '北京'}) RETURN c"),
    ("not cypher at all", "MATCH (n) RETURN n"),
    ("MATCH (a)-[:R]->(b) RETURN b ORDER BY b.x;", "MATCH (a)-[:R]->(b) RETURN b ORDER BY b.x"),
]


def test_google_bleu_is_nltk_gleu_on_fixed_queries_and_corpus():
    from nltk.translate.gleu_score import corpus_gleu, sentence_gleu

    # worked by hand: matching 1-4-grams / max(n-grams of either); one of 10 tokens differs: 30/34
    expected = [1.0, 15 / 17, 0.0, 0.0, 1 / 3, 18 / 23, 0.0, 1.0]
    for (pred, gold), want in zip(QUERIES, expected, strict=True):
        p, g = C.query_tokens(pred), C.query_tokens(gold)
        assert C.google_bleu(pred, gold) == sentence_gleu([g], p) == pytest.approx(want, abs=1e-15)
    counts = [C.gleu_counts(C.query_tokens(p), C.query_tokens(g)) for p, g in QUERIES]
    assert counts[3] == (0, 0)  # two empty queries add nothing to the corpus sums, as in nltk
    nltk_corpus = corpus_gleu([[C.query_tokens(g)] for _, g in QUERIES], [C.query_tokens(p) for p, _ in QUERIES])
    assert C.corpus_google_bleu(counts) == nltk_corpus
    assert C.corpus_google_bleu([]) == 0.0 == corpus_gleu([[[]]], [[]])


def test_rouge_l_is_rouge_score_f1_on_query_tokens():
    expected = [1.0, 9 / 10, 0.0, 0.0, 1 / 2, 12 / 13, 0.0, 1.0]  # LCS F1 worked by hand
    for (pred, gold), want in zip(QUERIES, expected, strict=True):
        assert C.rouge_l(pred, gold) == pytest.approx(want, abs=1e-15)


def test_rouge_scores_own_tokenizer_would_erase_cypher_and_non_latin_text():
    """Why rouge_l passes the Cypher lexer to rouge-score: its default tokenizer keeps [a-z0-9] runs only."""
    from rouge_score.rouge_scorer import RougeScorer

    default = RougeScorer(["rougeL"])
    pred, gold = QUERIES[5]
    assert default.score(gold, pred)["rougeL"].fmeasure == 1.0  # '東京' and '北京' both vanish
    assert C.rouge_l(pred, gold) < 1.0


@pytest.mark.parametrize(
    "text,tokens",
    [
        ("", []),
        ("[1.5, \"a-b\"]\n[2, 3]", ["[", "1.5", ",", '"', "a-b", '"', "]", "[", "2", ",", "3", "]"]),
        ("x&amp;y &lt;z&gt; 4-5", ["x", "&", "y", "<", "z", ">", "4", "-", "5"]),
        ("Zürich 東京, ok.", ["Zürich", "東京", ",", "ok", "."]),
    ],
)
def test_13a_tokens_are_sacrebleus(text, tokens):
    from sacrebleu.tokenizers.tokenizer_13a import Tokenizer13a

    assert C.tokenize_13a(text) == Tokenizer13a()(text).split() == tokens


def test_cohen_kappa_equals_scikit_learn():
    from sklearn.metrics import cohen_kappa_score

    rng = random.Random(0)
    cases = [([0, 1, 2, 3], [0, 1, 2, 3]), ([0, 0, 1, 1], [1, 1, 0, 0]), ([0, 1, 0, 1], [0, 0, 0, 1]), ([2], [3])]
    cases += [([rng.randrange(k) for _ in range(n)], [rng.randrange(k) for _ in range(n)])
              for n, k in [(5, 2), (50, 4), (200, 4), (31, 3)]]  # fmt: skip
    for a, b in cases:
        assert _kappa(a, b) == pytest.approx(cohen_kappa_score(a, b), abs=1e-12)
    assert _kappa([1, 1, 1], [1, 1, 1]) is None  # chance agreement is 1: undefined (sklearn: nan and a warning)
    assert _kappa([], []) is None  # sklearn raises on empty input


SPACED = [  # (prediction, reference): ASCII punctuation, spaced scripts: SQuAD's own domain
    ("the Arizona Cardinals", "Arizona Cardinals"),
    ("Arizona", "Arizona Cardinals"),
    ("Denver Broncos!", "denver broncos"),
    ("don't know", "dont know"),
    ("U.S. Army", "US army"),
    ("an apple a day", "apple day day"),
    ("", ""),
    ("", "Paris"),
    ("the", ""),  # normalises to empty
    ("Zürich, Schweiz", "zürich schweiz"),
    ("1990-2000", "19902000"),
]


def _squad(pred: str, ref: str) -> tuple[float, float]:
    from torchmetrics.functional.text.squad import _compute_exact_match_score, _compute_f1_score

    return float(_compute_exact_match_score(pred, ref)), float(_compute_f1_score(pred, ref))


@pytest.mark.parametrize("pred,ref", SPACED)
def test_exact_match_and_f1_equal_squad_on_spaced_ascii_text(pred, ref):
    rec = M.score_gen_record({"output": pred, "references": [ref]}, ("exact_match", "f1"))
    em, f1 = _squad(pred, ref)
    assert rec["exact_match"] == em
    assert rec["f1"] == pytest.approx(f1, abs=1e-6)  # torchmetrics computes F1 in float32


@pytest.mark.parametrize(
    "pred,ref,ours,squad",
    [  # (EM, F1) where we differ from SQuAD on purpose
        ("«Paris»", "Paris", (1.0, 1.0), (0.0, 0.0)),  # Unicode punctuation
        ("ＰＡＲＩＳ", "paris", (1.0, 1.0), (0.0, 0.0)),  # full-width forms (NFKC)
        ("北京。", "北京", (1.0, 1.0), (0.0, 0.0)),  # CJK full stop
        ("红雀队", "亚利桑那红雀队", (0.0, 0.6), (0.0, 0.0)),  # per-character F1 for unspaced scripts
    ],
)
def test_where_our_squad_metrics_differ_on_purpose(pred, ref, ours, squad):
    rec = M.score_gen_record({"output": pred, "references": [ref]}, ("exact_match", "f1"))
    assert (rec["exact_match"], rec["f1"]) == pytest.approx(ours)
    assert _squad(pred, ref) == pytest.approx(squad)
