"""The Text2Cypher evaluation loop: prompt, generate, extract, execute safely, score.

`evaluate_cypher(generate, items, languages, executor, ...)` works on any question set whose
items have `item_id`, `kind`, `cypher` and `questions` {language: text}: the built-in one
(`questions.load_questions`) or a public one converted with `public_items`. Gold queries are
executed once per item; predictions once per (item, language), on the same database as the gold
(`aliases` {item_id: database_reference_alias} with a routing executor, `public.AliasExecutor`).
Items whose gold query does not execute are excluded from every metric and counted
(`gold_failures_excluded`), as the published procedure does.
"""

from __future__ import annotations

from tqdm.auto import tqdm

from babelscope.cypher import metrics
from babelscope.cypher.execute import ExecResult
from babelscope.cypher.prompts import MAX_GEN_TOKS, build_prompt, extract_query, fewshot_examples, labels, stop_strings
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


def public_aliases(records) -> dict[str, str]:
    """{item_id: database_reference_alias} of Text2CypherRecords that name their database."""
    return {rec.instance_id: str(rec.database_reference_alias) for rec in records if rec.database_reference_alias}


def score_record(record: dict, pred_res, gold_res, gold: str) -> dict:
    """Add the text and execution metrics to one sample record."""
    pred = record["prediction"]
    record["exact_match"] = metrics.exact_match(pred, gold)
    record["exact_match_raw"] = metrics.exact_match_raw(pred, gold)
    record["gleu_counts"] = list(metrics.gleu_counts(metrics.query_tokens(pred), metrics.query_tokens(gold)))
    record["gleu_counts_raw"] = list(metrics.gleu_counts(metrics.tokenize_13a(pred), metrics.tokenize_13a(gold)))
    record["google_bleu"] = metrics.google_bleu(pred, gold)
    record["rouge_l"] = metrics.rouge_l(pred, gold)
    record["gold_failed"] = gold_res is not None and not gold_res.ok
    if pred_res is None:  # no database to execute on (a public set without --database)
        record.update(status="not_executed", error="", syntax_error=None, execution_match=None, result_key=None)
        record.update(exec_exact_match=None, exec_gleu_counts=None)
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
        record.update(metrics.execution_text_scores(pred_res.rows if pred_res.ok else None, gold_res.rows))
    else:  # the gold failed: the item is excluded from every metric (see `summarise`)
        record.update(execution_match=None, result_key=None, exec_exact_match=None, exec_gleu_counts=None)
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
    aliases: dict[str, str] | None = None,
    format_prompt=None,
    max_gen_toks: int = MAX_GEN_TOKS,
    translate_prompt: bool = False,
) -> dict:
    """Evaluate; returns {"per_language": {lang: summary}, "records": {lang: [records]}, ...}.

    `generate`: lm-eval style `generate_until(requests)`. `schema`: one text, or one per item_id.
    `done`: finished records per language (a resumed run); `on_language(lang, records)` is
    called after each language, so a run folder can save its samples as it goes. `aliases`:
    {item_id: database alias}, passed to `executor.run(query, alias)` when the executor routes
    (has `routes = True`). `format_prompt(text)`: e.g. a chat template around each prompt.
    `max_gen_toks`: the generation budget per query. `translate_prompt`: the instruction and labels in
    the question's language (the paper's prompt-translation experiment).
    """
    done = done or {}
    aliases = aliases or {}
    routes = getattr(executor, "routes", False)

    def run(query, item_id):
        if executor is None:
            return None
        return executor.run(query, aliases.get(item_id)) if routes else executor.run(query)

    if translate_prompt:
        for lang in languages:
            labels(lang)  # a language without a translated instruction fails before anything runs
    gold_results = {}
    for item in tqdm(items, desc="gold queries", disable=len(items) < 20 or executor is None):
        gold_results[item.item_id] = run(item.cypher, item.item_id)
    records_by_lang = {}
    for lang in languages:
        if len(done.get(lang, [])) == len(items):
            records_by_lang[lang] = done[lang]
            continue
        requests, records = [], []
        prompt_language = lang if translate_prompt else None
        for item in items:
            schema_text = schema.get(item.item_id, "") if isinstance(schema, dict) else schema
            shots = fewshot_examples(items, item.item_id, lang, fewshot) if fewshot else []
            prompt = build_prompt(item.questions[lang], schema_text, shots, prompt_language)
            prompt = format_prompt(prompt) if format_prompt else prompt
            requests.append((prompt, {"until": stop_strings(prompt_language), "max_gen_toks": max_gen_toks}))
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
                pred_res = run(record["prediction"], record["item_id"]) if record["prediction"] else _empty()
            score_record(record, pred_res, gold, record["gold"])
        records_by_lang[lang] = records
        if on_language:
            on_language(lang, records)
    return summarise(records_by_lang, gold_results)


def _empty():
    return ExecResult("rejected", error="syntax: empty query")


METRICS = ("exact_match", "exact_match_raw", "google_bleu", "google_bleu_raw", "rouge_l", "execution_accuracy",
           "execution_exact_match", "execution_google_bleu", "syntax_error_rate")


def summarise(records_by_lang: dict[str, list[dict]], gold_results: dict | None = None) -> dict:
    """Per-language, per-kind and mean metrics over the items whose gold query executed."""
    failed = {r["item_id"] for recs in records_by_lang.values() for r in recs if r.get("gold_failed")}
    if gold_results is not None:
        failed |= {i for i, r in gold_results.items() if r is not None and not r.ok}
    scored = {lang: [r for r in recs if r["item_id"] not in failed] for lang, recs in records_by_lang.items()}
    out = _summaries(scored)
    out["records"] = records_by_lang
    out["gold_failures"] = sorted(failed)  # gold queries that did not execute
    out["gold_failures_excluded"] = len(failed)  # items left out of every metric
    return out


def _summaries(records_by_lang: dict[str, list[dict]]) -> dict:
    per_language = {lang: metrics.language_summary(recs) for lang, recs in records_by_lang.items()}
    per_kind = {}
    for lang, recs in records_by_lang.items():
        kinds = sorted({r["kind"] for r in recs})
        per_kind[lang] = {k: metrics.language_summary([r for r in recs if r["kind"] == k]) for k in kinds}
    keys = {lang: {r["item_id"]: r["result_key"] for r in recs} for lang, recs in records_by_lang.items()}
    names = METRICS
    filled = [s for s in per_language.values() if s.get("n")]
    macro, weighted = {}, {}
    for m in names:
        have = [s for s in filled if s[m] is not None]
        if have:
            macro[m] = sum(s[m] for s in have) / len(have)
            weighted[m] = sum(s[m] * s["n"] for s in have) / sum(s["n"] for s in have)
    return {
        "per_language": per_language,
        "per_kind": per_kind,
        "macro_mean": macro,
        "item_weighted_mean": weighted,
        "consistency": metrics.consistency(keys) if len(keys) > 1 else None,
    }


def markdown_table(per_language: dict) -> str:
    head = ("| language | n | exact match | EM raw | Google-BLEU | ROUGE-L | execution acc. | exec. EM | exec. "
            "Google-BLEU | syntax errors |")
    lines = [head, "|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|"]
    cols = ("exact_match", "exact_match_raw", "google_bleu", "rouge_l", "execution_accuracy", "execution_exact_match",
            "execution_google_bleu", "syntax_error_rate")
    for lang, s in per_language.items():
        if s.get("n"):
            lines.append(f"| {lang} | {s['n']} | " + " | ".join(_f(s.get(c)) for c in cols) + " |")
    return "\n".join(lines)


def _f(value) -> str:
    return "n/a" if value is None else f"{value:.3f}"
