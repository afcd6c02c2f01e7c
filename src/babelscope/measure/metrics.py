"""Per-item records and their metrics; everything here works from records alone (``rescore``).

Multiple choice (lm-eval definitions): ``acc`` = argmax of the summed log-probs, ``acc_norm``
= argmax of log-prob per *character* of the choice, ``acc_bytes`` = per UTF-8 byte. Generation:
exact match, token F1, gold-in-continuation (the reference appears in the output), number match
(last number in the output), chrF and BLEU (sacrebleu, corpus level). Text: bits per character
and per byte. Standard errors are lm-eval's (sample standard deviation / sqrt(n)).

Exact match and F1 are SQuAD's, written here rather than called from a library on purpose: HF
`evaluate`'s `squad` metric is a script fetched from the Hub (not in the pip package), and the
official SQuAD code (also in torchmetrics) strips only ASCII punctuation and splits on spaces,
so "«Paris»" never matches "Paris" and a Chinese answer is one token. Ours adds NFKC, Unicode
punctuation and per-character F1 for unspaced scripts, and equals torchmetrics' SQuAD EM/F1 on
spaced text with ASCII punctuation (tests/test_metrics_libs.py).
"""

from __future__ import annotations

import math
import re
import string
import unicodedata
from collections import Counter

LN2 = math.log(2)
HEADLINE = {"mc": "acc", "bpc": "bits_per_byte"}  # per kind; generation tasks use their first metric
LOWER_IS_BETTER = {"bits_per_char", "bits_per_byte", "tokens_per_char"}
_NUMBER = re.compile(r"-?\d[\d,]*(?:\.\d+)?")


def stderr(values: list[float]) -> float | None:
    n = len(values)
    if n < 2:
        return None
    mean = sum(values) / n
    return math.sqrt(sum((v - mean) ** 2 for v in values) / (n - 1) / n)


def _argmax(values: list[float]) -> int:
    return max(range(len(values)), key=lambda i: values[i])


# ------------------------------------------------------------------ multiple choice
def mc_record(item, scores: list[tuple[float, bool]], n_tokens: list[int]) -> dict:
    """The sample line of one multiple-choice item (log-probs, lengths, predictions)."""
    logprobs = [float(lp) for lp, _ in scores]
    rec = {
        "item_id": item.item_id,
        "context": item.context,
        "choices": item.choices,
        "gold": item.gold,
        "logprobs": logprobs,
        "is_greedy": [bool(g) for _, g in scores],
        "n_chars": [len(c) for c in item.norm_texts or item.choices],
        "n_bytes": [len(c.encode("utf-8")) for c in item.norm_texts or item.choices],
        "n_tokens": list(n_tokens),
    }
    return score_mc_record(rec)


def score_mc_record(rec: dict) -> dict:
    """Add ``pred``/``pred_norm``/``pred_bytes`` and their correctness from the stored log-probs."""
    lps = rec["logprobs"]
    rec["pred"] = _argmax(lps)
    rec["pred_norm"] = _argmax([lp / max(n, 1) for lp, n in zip(lps, rec["n_chars"], strict=True)])
    rec["pred_bytes"] = _argmax([lp / max(n, 1) for lp, n in zip(lps, rec["n_bytes"], strict=True)])
    rec["acc"] = float(rec["pred"] == rec["gold"])
    rec["acc_norm"] = float(rec["pred_norm"] == rec["gold"])
    rec["acc_bytes"] = float(rec["pred_bytes"] == rec["gold"])
    return rec


def mc_metrics(records: list[dict]) -> dict:
    out = {"n": len(records)}
    for key in ("acc", "acc_norm", "acc_bytes"):
        values = [r[key] for r in records]
        out[key] = sum(values) / len(values) if values else None
        out[f"{key}_stderr"] = stderr(values)
    return out


# ------------------------------------------------------------------ bits per character / byte
def bpc_record(item, logprob: float, n_tokens: int) -> dict:
    return {
        "item_id": item.item_id,
        "text": item.text,
        "logprob": float(logprob),
        "n_tokens": int(n_tokens),
        "n_chars": len(item.text),
        "n_bytes": len(item.text.encode("utf-8")),
    }


def bpc_metrics(records: list[dict]) -> dict:
    nll = -sum(r["logprob"] for r in records)
    chars = sum(r["n_chars"] for r in records)
    nbytes = sum(r["n_bytes"] for r in records)
    tokens = sum(r["n_tokens"] for r in records)
    return {
        "n": len(records),
        "bits_per_char": nll / LN2 / chars if chars else None,
        "bits_per_byte": nll / LN2 / nbytes if nbytes else None,
        "tokens_per_char": tokens / chars if chars else None,
        "nll_per_token": nll / tokens if tokens else None,
    }


# ------------------------------------------------------------------ generation
def normalize_answer(text: str) -> str:
    """SQuAD's answer normalisation (lower case, punctuation removed, English articles dropped,
    single spaces), made multilingual: NFKC first (full-width forms) and every Unicode punctuation
    character removed, not only ASCII's, as MLQA's evaluation script does."""
    text = unicodedata.normalize("NFKC", text).lower()
    text = "".join(ch for ch in text if ch not in string.punctuation and not unicodedata.category(ch).startswith("P"))
    text = re.sub(r"\b(a|an|the)\b", " ", text)
    return " ".join(text.split())


_UNSPACED = re.compile(r"[\u0e00-\u0eff\u1000-\u109f\u1780-\u17ff\u3040-\u30ff\u3400-\u9fff\uf900-\ufaff]")


def _units(text: str, by_char: bool) -> list[str]:
    """Words, or characters for scripts written without spaces (CJK, Thai, Lao, Khmer, Myanmar)."""
    return list(text.replace(" ", "")) if by_char else text.split()


def f1_score(prediction: str, reference: str) -> float:
    """SQuAD token F1 (SQuAD 2.0's rule for empty answers: 1 when both are empty, else 0), over
    characters when either side is in a script written without spaces. On text in spaced scripts
    with ASCII punctuation it equals SQuAD's F1 (tests/test_metrics_libs.py pins it to torchmetrics')."""
    a, b = normalize_answer(prediction), normalize_answer(reference)
    by_char = bool(_UNSPACED.search(a) or _UNSPACED.search(b))
    pred, ref = _units(a, by_char), _units(b, by_char)
    if not pred or not ref:
        return float(pred == ref)
    same = sum((Counter(pred) & Counter(ref)).values())
    if same == 0:
        return 0.0
    precision, recall = same / len(pred), same / len(ref)
    return 2 * precision * recall / (precision + recall)


def extract_number(text: str) -> str | None:
    """The last number in ``text`` (commas dropped, trailing ``.0`` removed): MGSM's flexible extract."""
    found = _NUMBER.findall(text.replace("\u066b", ".").replace("\u066c", ","))
    if not found:
        return None
    number = found[-1].replace(",", "").rstrip(".")
    return number[:-2] if number.endswith(".0") else number


def gen_record(item, output: str, metrics: tuple) -> dict:
    rec = {"item_id": item.item_id, "context": item.context, "references": item.references, "output": output}
    return score_gen_record(rec, metrics)


def score_gen_record(rec: dict, metrics: tuple) -> dict:
    out, refs = rec["output"], rec["references"]
    norm_out = normalize_answer(out)
    if "exact_match" in metrics:
        rec["exact_match"] = float(any(normalize_answer(r) == norm_out for r in refs))
    if "f1" in metrics:
        rec["f1"] = max(f1_score(out, r) for r in refs)
    if "gold_in" in metrics:
        rec["gold_in"] = float(any(normalize_answer(r) and normalize_answer(r) in norm_out for r in refs))
    if "number_match" in metrics:
        rec["extracted"] = extract_number(out)
        rec["number_match"] = float(
            rec["extracted"] is not None and any(extract_number(r) == rec["extracted"] for r in refs)
        )
    return rec


def bleu_tokenizer(language: str | None) -> str:
    """sacrebleu's tokenizer for a language: ``zh`` for Chinese, ``char`` for other unspaced scripts."""
    script = (language or "").split("_")[-1]
    return (
        "zh" if script in ("Hans", "Hant") else "char" if script in ("Jpan", "Thai", "Khmr", "Laoo", "Mymr") else "13a"
    )


def gen_metrics(records: list[dict], metrics: tuple, language: str | None = None) -> dict:
    out = {"n": len(records)}
    for key in metrics:
        if key in ("chrf", "bleu"):
            continue
        values = [r[key] for r in records]
        out[key] = sum(values) / len(values) if values else None
        out[f"{key}_stderr"] = stderr(values)
    if records and ("chrf" in metrics or "bleu" in metrics):
        import sacrebleu

        hyps = [r["output"].strip() for r in records]
        refs = [[r["references"][0] for r in records]]
        if "chrf" in metrics:
            out["chrf"] = sacrebleu.corpus_chrf(hyps, refs).score
        if "bleu" in metrics:
            out["bleu"] = sacrebleu.corpus_bleu(hyps, refs, tokenize=bleu_tokenizer(language)).score
    return out


def headline_metric(kind: str, metrics: tuple = ()) -> str:
    return HEADLINE.get(kind) or (metrics[0] if metrics else "exact_match")
