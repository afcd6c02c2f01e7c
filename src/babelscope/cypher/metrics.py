"""Text2Cypher metrics: on the query text (normalised exact match, Google-BLEU, ROUGE-L) and on
its execution (execution accuracy, syntax-error rate), per language, and cross-lingual consistency.

- Tokens: the Cypher lexer of `safety.tokenize` (a string literal is one token); keywords and
  names are lower-cased, string literals keep their case; a trailing `;` is dropped.
- Google-BLEU is nltk's GLEU (`nltk.translate.gleu_score`, the code behind HF evaluate's
  `google_bleu`): over all 1- to 4-grams, min(precision, recall) = matches / max(hypothesis
  n-grams, reference n-grams). The corpus score sums matches and totals over the items, as
  `corpus_gleu` does; the per-item sums are kept in each sample record (`gleu_counts`) so a
  summary needs the records alone.
- ROUGE-L: `rouge-score`'s ROUGE-L F1 on the query tokens above, averaged over items (its own
  tokenizer keeps only [a-z0-9] runs, which would erase Cypher's punctuation and literals).
- Execution accuracy: the predicted result equals the gold result as a multiset of rows; as a
  list when the gold query has a top-level ORDER BY. Floats compare after rounding to 6 places.

The published Text2Cypher procedure (Ozsoy et al. 2024; Ozsoy & Tai 2025) is reported beside these:
- Raw exact match: the query strings themselves (whitespace runs collapsed), so the case of labels,
  property keys and keywords counts; `exact_match` above is the lenient, normalised form.
- Execution-based EM / Google-BLEU: both results become strings in one order and format
  (`result_string`) and the text metrics are applied to those strings, with Google-BLEU on
  13a tokens (`tokenize_13a`: sacrebleu's tokenizer, as HF evaluate's `google_bleu` applies it).

HF `evaluate` itself is not used: `evaluate.load` fetches each metric's script from the Hugging
Face Hub (the pip package ships none), so it fails offline; nltk, rouge-score and sacrebleu are
the PyPI libraries whose code those scripts call.
"""

from __future__ import annotations

import functools
import json
from collections import Counter

from babelscope.cypher.safety import LexError, clauses, tokenize

FLOAT_PLACES = 6  # floats are rounded to this many decimals before results are compared


def query_tokens(query: str) -> list[str]:
    try:
        toks = tokenize(query or "")
    except LexError:
        return (query or "").lower().split()
    out = [t.text if t.kind == "string" else t.text.lower() for t in toks]
    while out and out[-1] == ";":
        out.pop()
    return [t.replace('"', "'") if t.startswith('"') and t.endswith('"') else t for t in out]


def normalise_query(query: str) -> str:
    return " ".join(query_tokens(query))


def exact_match(pred: str, gold: str) -> float:
    return float(normalise_query(pred) == normalise_query(gold))


def raw_query(query: str) -> str:
    """The query text with whitespace runs collapsed and nothing else changed."""
    return " ".join((query or "").split())


def exact_match_raw(pred: str, gold: str) -> float:
    """Exact match of the raw strings (case-sensitive; only whitespace runs are collapsed)."""
    return float(raw_query(pred) == raw_query(gold))


@functools.cache
def _tokenizer_13a():
    from sacrebleu.tokenizers.tokenizer_13a import Tokenizer13a

    return Tokenizer13a()


def tokenize_13a(text: str) -> list[str]:
    """The WMT "13a" tokens (mteval-v13a) of sacrebleu, split on spaces as HF evaluate's `google_bleu` does."""
    return _tokenizer_13a()(text or "").split()


def gleu_counts(pred_tokens: list[str], gold_tokens: list[str], max_n: int = 4) -> tuple[int, int]:
    """(matching n-grams, max(hypothesis n-grams, reference n-grams)) for 1..max_n-grams: the two
    numbers nltk's `corpus_gleu` adds up per item (kept per record so a summary needs the records alone)."""
    from nltk.util import everygrams

    hyp, ref = Counter(everygrams(pred_tokens, 1, max_n)), Counter(everygrams(gold_tokens, 1, max_n))
    return sum((hyp & ref).values()), max(sum(hyp.values()), sum(ref.values()))


def google_bleu(pred: str, gold: str) -> float:
    """Sentence-level Google-BLEU (nltk's GLEU) of two queries on their query tokens."""
    from nltk.translate.gleu_score import sentence_gleu

    return sentence_gleu([query_tokens(gold)], query_tokens(pred))


def corpus_google_bleu(counts: list[tuple[int, int]]) -> float:
    """nltk's `corpus_gleu` from the per-item counts of `gleu_counts`: summed matches / summed totals."""
    total = sum(t for _, t in counts)
    return sum(m for m, _ in counts) / total if total else 0.0


class _QueryTokenizer:
    """The tokenizer interface of rouge-score (`tokenize(text) -> tokens`) over `query_tokens`."""

    def tokenize(self, text: str) -> list[str]:
        return query_tokens(text)


@functools.cache
def _rouge_l_scorer():
    from rouge_score.rouge_scorer import RougeScorer

    return RougeScorer(["rougeL"], tokenizer=_QueryTokenizer())


def rouge_l(pred: str, gold: str) -> float:
    """ROUGE-L F1 (rouge-score) on query tokens."""
    return _rouge_l_scorer().score(gold, pred)["rougeL"].fmeasure


def has_order_by(query: str) -> bool:
    """Whether the query's final projection is ordered (a top-level ORDER BY)."""
    try:
        top = [kw for depth, kw in clauses(tokenize(query)) if depth == 0]
    except LexError:
        return False
    last_return = max((i for i, kw in enumerate(top) if kw == "RETURN"), default=-1)
    return "ORDER" in top[last_return + 1 :]


def _canonical(value):
    if isinstance(value, float):
        return round(value, FLOAT_PLACES) + 0.0
    if isinstance(value, bool) or value is None or isinstance(value, (int, str)):
        return value
    if isinstance(value, dict):
        return {k: _canonical(v) for k, v in sorted(value.items())}
    if isinstance(value, (list, tuple)):
        return [_canonical(v) for v in value]
    return str(value)


def canonical_rows(rows: list) -> list[str]:
    """Each row as a canonical JSON string (ints and equal floats compare equal)."""
    out = []
    for row in rows:
        vals = [_canonical(v) for v in row]
        vals = [float(v) if isinstance(v, int) and not isinstance(v, bool) else v for v in vals]
        out.append(json.dumps(vals, sort_keys=True, ensure_ascii=False))
    return out


def results_equal(pred_rows: list, gold_rows: list, ordered: bool) -> bool:
    p, g = canonical_rows(pred_rows), canonical_rows(gold_rows)
    return p == g if ordered else Counter(p) == Counter(g)


def result_key(status: str, rows: list, ordered: bool = False) -> str | None:
    """A hashable form of an execution result (None for a failed execution)."""
    if status != "ok":
        return None
    rows_c = canonical_rows(rows)
    return json.dumps(rows_c if ordered else sorted(rows_c), ensure_ascii=False)


def result_string(rows: list | None) -> str | None:
    """An execution result as one string, for the execution-based text metrics (None: it failed).

    Every row becomes a JSON list of its values (floats rounded to FLOAT_PLACES, integral floats
    written as integers, map keys sorted); the rows are sorted, so both results have the same order
    and format whatever order the database returned them in; one row per line.
    """
    if rows is None:
        return None
    out = []
    for row in rows:
        vals = [_canonical(v) for v in row]
        vals = [int(v) if isinstance(v, float) and v.is_integer() else v for v in vals]
        out.append(json.dumps(vals, sort_keys=True, ensure_ascii=False))
    return "\n".join(sorted(out))


def execution_text_scores(pred_rows: list | None, gold_rows: list) -> dict:
    """Execution-based EM and Google-BLEU counts of two results (a failed prediction scores 0)."""
    gold = result_string(gold_rows)
    pred = result_string(pred_rows)
    if pred is None:
        return {"exec_exact_match": 0.0, "exec_gleu_counts": list(gleu_counts([], tokenize_13a(gold)))}
    hyp, ref = tokenize_13a(pred), tokenize_13a(gold)
    return {"exec_exact_match": float(pred == gold), "exec_gleu_counts": list(gleu_counts(hyp, ref))}


def is_syntax_error(status: str, error: str) -> bool:
    """The query is not valid Cypher: empty, unreadable by the lexer, not shaped as a query (no
    leading clause, no RETURN), or the database's parser refused it. Unsafe but valid queries are not."""
    if status == "rejected":
        return error.startswith("syntax:")
    return status == "error" and error.startswith("Parser exception")


def language_summary(records: list[dict]) -> dict:
    """Metrics for one language from its sample records (see `evaluate.score_record`)."""
    n = len(records)
    if not n:
        return {"n": 0}

    def mean(key):
        values = [r[key] for r in records if r.get(key) is not None]
        return sum(values) / len(values) if values else None

    return {
        "n": n,
        "exact_match": mean("exact_match"),
        "google_bleu": corpus_google_bleu([tuple(r["gleu_counts"]) for r in records]),
        "rouge_l": mean("rouge_l"),
        "execution_accuracy": mean("execution_match"),
        "exact_match_raw": mean("exact_match_raw"),
        "google_bleu_raw": _corpus(records, "gleu_counts_raw"),
        "execution_exact_match": mean("exec_exact_match"),
        "execution_google_bleu": _corpus(records, "exec_gleu_counts"),
        "syntax_error_rate": mean("syntax_error"),
        "rejected_rate": sum(r["status"] == "rejected" and not r["syntax_error"] for r in records) / n,
        "error_rate": sum(r["status"] not in ("ok", "not_executed") for r in records) / n,
    }


def _corpus(records: list[dict], key: str) -> float | None:
    """Corpus Google-BLEU from per-record counts (None when no record has them)."""
    counts = [tuple(r[key]) for r in records if r.get(key) is not None]
    return corpus_google_bleu(counts) if counts else None


def consistency(results_by_lang: dict[str, dict[str, str | None]]) -> dict:
    """Cross-lingual consistency from {lang: {item_id: result_key}}.

    `all_languages`: share of items (present in every language) whose predicted queries return
    the same, successful result in every language. `pairwise`: the same for each language pair;
    `matrix`: language x language (the diagonal is the share of items that execute successfully).
    """
    langs = sorted(results_by_lang)
    common = set.intersection(*(set(v) for v in results_by_lang.values())) if langs else set()
    out = {"items": len(common), "languages": langs}
    if not common:
        return {**out, "all_languages": None, "pairwise": {}, "matrix": {}}

    def agree(group, item):
        keys = [results_by_lang[lang][item] for lang in group]
        return keys[0] is not None and all(k == keys[0] for k in keys)

    out["all_languages"] = sum(agree(langs, i) for i in common) / len(common)
    out["matrix"] = {a: {b: sum(agree((a, b), i) for i in common) / len(common) for b in langs} for a in langs}
    out["pairwise"] = {
        f"{a}|{b}": sum(agree((a, b), i) for i in common) / len(common)
        for k, a in enumerate(langs)
        for b in langs[k + 1 :]
    }
    return out
