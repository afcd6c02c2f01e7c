"""The Text2Cypher evaluation loop: prompt, generate, extract, execute safely, score.

`evaluate_cypher(generate, items, languages, executor, ...)` works on any question set whose
items have `item_id`, `kind`, `cypher` and `questions` {language: text}: the built-in one
(`questions.load_questions`) or a public one converted with `public_items`. Gold queries are
executed once per item; predictions once per (item, language).
"""

from __future__ import annotations

from tqdm.auto import tqdm

from babelscope.cypher import metrics
from babelscope.cypher.execute import ExecResult
from babelscope.cypher.prompts import MAX_GEN_TOKS, STOP, build_prompt, extract_query, fewshot_examples
from babelscope.cypher.questions import CypherItem
from babelscope.languages import REFERENCE

ROWS_KEPT = 20  # result rows stored per sample record (the full comparison uses all rows)


def public_items(records, language: str = REFERENCE) -> tuple[list[CypherItem], dict[str, str]]:
    """Text2CypherRecords as items (one language) plus their per-item schema texts."""
    items, schemas = [], {}
    for rec in records:
        items.append(CypherItem(rec.instance_id, rec.data_source or "public", rec.cypher, {language: rec.question}))
        schemas[rec.instance_id] = rec.schema
    return items, schemas


def score_record(record: dict, pred_res, gold_res, gold: str) -> dict:
    """Add the text and execution metrics to one sample record."""
    pred = record["prediction"]
    record["exact_match"] = metrics.exact_match(pred, gold)
    record["gleu_counts"] = list(metrics.gleu_counts(metrics.query_tokens(pred), metrics.query_tokens(gold)))
    record["google_bleu"] = metrics.google_bleu(pred, gold)
    record["rouge_l"] = metrics.rouge_l(pred, gold)
    if pred_res is None:  # no database to execute on (a public set without --database)
        record.update(status="not_executed", error="", syntax_error=None, execution_match=None, result_key=None)
        record["rows"] = []
        return record
    record["status"] = pred_res.status
    record["error"] = pred_res.error
    record["syntax_error"] = float(metrics.is_syntax_error(pred_res.status, pred_res.error))
    if gold_res is not None and gold_res.ok:
        ordered = metrics.has_order_by(gold)
        match = pred_res.ok and metrics.results_equal(pred_res.rows, gold_res.rows, ordered)
        record["execution_match"] = float(match)
        record["result_key"] = metrics.result_key(pred_res.status, pred_res.rows, ordered)
    else:
        record["execution_match"] = 0.0
        record["result_key"] = None
    record["rows"] = pred_res.rows[:ROWS_KEPT] if pred_res.ok else []
    return record


def evaluate_cypher(
    generate,
    items: list[CypherItem],
    languages: list[str],
    executor,
    schema: str | dict[str, str] = "",
    fewshot: int = 0,
    done: dict[str, list[dict]] | None = None,
    on_language=None,
) -> dict:
    """Evaluate; returns {"per_language": {lang: summary}, "records": {lang: [records]}, ...}.

    `generate`: lm-eval style `generate_until(requests)`. `schema`: one text, or one per item_id.
    `done`: finished records per language (a resumed run); `on_language(lang, records)` is
    called after each language, so a run folder can save its samples as it goes.
    """
    done = done or {}

    def run(query):
        return executor.run(query) if executor is not None else None

    gold_results = {}
    for item in tqdm(items, desc="gold queries", disable=len(items) < 20 or executor is None):
        gold_results[item.item_id] = run(item.cypher)
    records_by_lang = {}
    for lang in languages:
        if len(done.get(lang, [])) == len(items):
            records_by_lang[lang] = done[lang]
            continue
        requests, records = [], []
        for item in items:
            schema_text = schema.get(item.item_id, "") if isinstance(schema, dict) else schema
            shots = fewshot_examples(items, item.item_id, lang, fewshot) if fewshot else []
            prompt = build_prompt(item.questions[lang], schema_text, shots)
            requests.append((prompt, {"until": list(STOP), "max_gen_toks": MAX_GEN_TOKS}))
            records.append({"item_id": item.item_id, "language": lang, "kind": item.kind,
                            "question": item.questions[lang], "gold": item.cypher})  # fmt: skip
        outputs = generate(requests)
        for record, output in zip(records, outputs):
            record["output"] = output
            record["prediction"] = extract_query(output)
            gold = gold_results[record["item_id"]]
            if executor is None:
                pred_res = None
            else:
                pred_res = run(record["prediction"]) if record["prediction"] else _empty()
            score_record(record, pred_res, gold, record["gold"])
        records_by_lang[lang] = records
        if on_language:
            on_language(lang, records)
    return summarise(records_by_lang, gold_results)


def _empty():
    return ExecResult("rejected", error="syntax: empty query")


def summarise(records_by_lang: dict[str, list[dict]], gold_results: dict | None = None) -> dict:
    per_language = {lang: metrics.language_summary(recs) for lang, recs in records_by_lang.items()}
    per_kind = {}
    for lang, recs in records_by_lang.items():
        kinds = sorted({r["kind"] for r in recs})
        per_kind[lang] = {k: metrics.language_summary([r for r in recs if r["kind"] == k]) for k in kinds}
    keys = {lang: {r["item_id"]: r["result_key"] for r in recs} for lang, recs in records_by_lang.items()}
    names = ("exact_match", "google_bleu", "rouge_l", "execution_accuracy", "syntax_error_rate")
    filled = [s for s in per_language.values() if s.get("n")]
    macro, weighted = {}, {}
    for m in names:
        have = [s for s in filled if s[m] is not None]
        if have:
            macro[m] = sum(s[m] for s in have) / len(have)
            weighted[m] = sum(s[m] * s["n"] for s in have) / sum(s["n"] for s in have)
    out = {
        "per_language": per_language,
        "per_kind": per_kind,
        "macro_mean": macro,
        "item_weighted_mean": weighted,
        "consistency": metrics.consistency(keys) if len(keys) > 1 else None,
        "records": records_by_lang,
    }
    if gold_results is not None:
        failed = sorted(i for i, r in gold_results.items() if r is not None and not r.ok)
        out["gold_failures"] = failed  # gold queries that did not execute (execution metrics count them as 0)
    return out


def markdown_table(per_language: dict) -> str:
    head = "| language | n | exact match | Google-BLEU | ROUGE-L | execution acc. | syntax errors |"
    lines = [head, "|---|---:|---:|---:|---:|---:|---:|"]
    for lang, s in per_language.items():
        if s.get("n"):
            lines.append(
                f"| {lang} | {s['n']} | {_f(s['exact_match'])} | {_f(s['google_bleu'])} | {_f(s['rouge_l'])} "
                f"| {_f(s['execution_accuracy'])} | {_f(s['syntax_error_rate'])} |"
            )
    return "\n".join(lines)


def _f(value) -> str:
    return "n/a" if value is None else f"{value:.3f}"
