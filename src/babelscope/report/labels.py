"""Human words for the keys that results.json uses, declared once: every heading, column and axis
label of the report goes through ``label`` (a key not listed here is shown with its underscores as
spaces, never as a raw path)."""

from __future__ import annotations

LABELS = {
    # metrics
    "acc": "accuracy",
    "acc_norm": "accuracy (length-normalised)",
    "acc_bytes": "accuracy (per-byte normalised)",
    "exact_match": "exact match",
    "f1": "F1",
    "chrf": "chrF",
    "bleu": "BLEU",
    "google_bleu": "Google-BLEU",
    "rouge_l": "ROUGE-L",
    "execution_accuracy": "execution accuracy",
    "syntax_error_rate": "syntax-error rate",
    "bits_per_char": "bits per character",
    "bits_per_byte": "bits per byte",
    "nll_per_token": "loss per token (nats)",
    "tokens_per_char": "tokens per character",
    "fertility_per_word": "tokens per word",
    "fertility_per_char": "tokens per character (no-space scripts)",
    "bytes_per_token": "bytes per token",
    "parity": "parity with English (tokens, English = 1)",
    "off_target": "off-target rate",
    "off_target_rate": "off-target rate",
    "consistency": "consistency",
    "relative": "consistency relative to accuracy",
    "both_correct": "both correct",
    "kappa": "Cohen's kappa",
    "n": "items",
    "jaccard": "Jaccard overlap",
    # results.json places
    "tasks": "",
    "results": "",
    "per_language": "per language",
    "per_kind": "per question kind",
    "vs_reference": "against the reference language",
    "matrix": "agreement",
    "relative_matrix": "agreement relative to accuracy",
    "both_correct_matrix": "both correct",
    "kappa_matrix": "Cohen's kappa",
    "neurons_per_language": "neurons per language",
    "tokens_per_language": "tokens per language",
    # neuron and head classes, layer evidence
    "specific": "language-specific",
    "related": "language-related",
    "general": "language-general",
    "multi-language": "multi-language",
    "score": "language-specificity score",
    "language_neuron_share": "share of language neurons",
    "specific_share": "share of language-specific neurons",
    "activation_difference": "activation difference against English",
    "target_share": "logit lens: target-language share of top-1 guesses",
    "change": "relative parameter change",
}


def label(key) -> str:
    """The human words for a results.json key (underscores as spaces when the key is not listed)."""
    key = str(key)
    return LABELS[key] if key in LABELS else key.replace("_", " ")


def path_label(path) -> str:
    """A results.json place (a tuple of keys) in words, e.g. ("consistency", "continuation") ->
    "consistency · continuation"; keys that name no place of their own ("tasks") are left out."""
    return " · ".join(w for w in (label(k) for k in path) if w)
