"""The question set's source: templates over real graph entities, plus hand-written global questions.

`generate_items()` expands them into aligned items (one item_id, one gold query, one question per
language); `python -m babelscope.cypher.question_templates` rewrites `data/questions.jsonl`,
dropping any item whose gold query returns nothing on the built graph.
Placeholders name a form from `question_entities` (`{nom}`, `{in}`, `{gen}`, ...); `{g}` in the
Cypher is the graph's English name.
"""

from __future__ import annotations

from babelscope.cypher.question_entities import COUNTRIES, CURRENCIES, LANGUAGES, SCRIPTS, language_forms

LANGS = ("eng_Latn", "spa_Latn", "tur_Latn", "deu_Latn", "fra_Latn")

COUNTRY_TEMPLATES = [
    ("alpha3", "lookup", "MATCH (c:Country {{name: '{g}'}}) RETURN c.alpha3", {
        "eng_Latn": "What is the three-letter ISO code of {nom}?",
        "spa_Latn": "¿Cuál es el código ISO de tres letras {de}?",
        "tur_Latn": "{gen} üç harfli ISO kodu nedir?",
        "deu_Latn": "Wie lautet der dreibuchstabige ISO-Code {gen}?",
        "fra_Latn": "Quel est le code ISO à trois lettres {de} ?"}),
    ("currency", "lookup", "MATCH (c:Country {{name: '{g}'}})-[:USES_CURRENCY]->(cu:Currency) RETURN cu.name", {
        "eng_Latn": "Which currency is used {in}?",
        "spa_Latn": "¿Qué moneda se usa {en}?",
        "tur_Latn": "{loc} hangi para birimi kullanılıyor?",
        "deu_Latn": "Welche Währung wird {in} verwendet?",
        "fra_Latn": "Quelle monnaie est utilisée {en} ?"}),
    ("n_subdivisions", "aggregation",
     "MATCH (s:Subdivision)-[:IN_COUNTRY]->(c:Country {{name: '{g}'}}) RETURN count(s)", {
        "eng_Latn": "How many subdivisions does {nom} have?",
        "spa_Latn": "¿Cuántas subdivisiones tiene {nom}?",
        "tur_Latn": "{gen} kaç idari bölümü var?",
        "deu_Latn": "Wie viele Verwaltungseinheiten hat {nom}?",
        "fra_Latn": "Combien de subdivisions administratives compte {nom} ?"}),
    ("official_languages", "filter",
     "MATCH (c:Country {{name: '{g}'}})-[s:SPEAKS]->(l:Language) WHERE s.official_status = 'official' "
     "RETURN l.name", {
        "eng_Latn": "Which languages are official {in}?",
        "spa_Latn": "¿Qué idiomas son oficiales {en}?",
        "tur_Latn": "{gen} resmî dilleri nelerdir?",
        "deu_Latn": "Welche Sprachen sind {in} Amtssprachen?",
        "fra_Latn": "Quelles sont les langues officielles {de} ?"}),
    ("top_language", "ordering",
     "MATCH (c:Country {{name: '{g}'}})-[s:SPEAKS]->(l:Language) RETURN l.name "
     "ORDER BY s.population_percent DESC LIMIT 1", {
        "eng_Latn": "Which language is spoken by the largest share of the population {in}?",
        "spa_Latn": "¿Qué idioma habla la mayor proporción de la población {de}?",
        "tur_Latn": "{loc} nüfusun en büyük kısmı hangi dili konuşuyor?",
        "deu_Latn": "Welche Sprache wird {in} vom größten Teil der Bevölkerung gesprochen?",
        "fra_Latn": "Quelle langue est parlée par la plus grande part de la population {en} ?"}),
    ("n_languages", "aggregation", "MATCH (c:Country {{name: '{g}'}})-[:SPEAKS]->(l:Language) RETURN count(l)", {
        "eng_Latn": "How many languages are spoken {in}?",
        "spa_Latn": "¿Cuántos idiomas se hablan {en}?",
        "tur_Latn": "{loc} kaç dil konuşuluyor?",
        "deu_Latn": "Wie viele Sprachen werden {in} gesprochen?",
        "fra_Latn": "Combien de langues sont parlées {en} ?"}),
    ("scripts", "multi-hop",
     "MATCH (c:Country {{name: '{g}'}})-[:SPEAKS]->(:Language)-[:WRITTEN_IN]->(sc:Script) RETURN DISTINCT sc.name", {
        "eng_Latn": "In which scripts are the languages spoken {in} written?",
        "spa_Latn": "¿En qué sistemas de escritura se escriben los idiomas que se hablan {en}?",
        "tur_Latn": "{loc} konuşulan diller hangi yazı sistemleriyle yazılır?",
        "deu_Latn": "In welchen Schriften werden die Sprachen geschrieben, die {in} gesprochen werden?",
        "fra_Latn": "Dans quelles écritures s'écrivent les langues parlées {en} ?"}),
    ("over_10_percent", "filter",
     "MATCH (c:Country {{name: '{g}'}})-[s:SPEAKS]->(l:Language) WHERE s.population_percent > 10 RETURN l.name", {
        "eng_Latn": "Which languages are spoken by more than 10% of the population {in}?",
        "spa_Latn": "¿Qué idiomas habla más del 10 % de la población {de}?",
        "tur_Latn": "{loc} nüfusun %10'undan fazlası hangi dilleri konuşuyor?",
        "deu_Latn": "Welche Sprachen werden {in} von mehr als 10 % der Bevölkerung gesprochen?",
        "fra_Latn": "Quelles langues sont parlées par plus de 10 % de la population {de} ?"}),
    ("n_timezones", "aggregation", "MATCH (c:Country {{name: '{g}'}})-[:HAS_TIMEZONE]->(t:TimeZone) RETURN count(t)", {
        "eng_Latn": "How many time zones does {nom} have?",
        "spa_Latn": "¿Cuántas zonas horarias tiene {nom}?",
        "tur_Latn": "{gen} kaç saat dilimi var?",
        "deu_Latn": "Wie viele Zeitzonen hat {nom}?",
        "fra_Latn": "Combien de fuseaux horaires compte {nom} ?"}),
    ("same_currency", "multi-hop",
     "MATCH (c:Country {{name: '{g}'}})-[:USES_CURRENCY]->(:Currency)<-[:USES_CURRENCY]-(o:Country) "
     "WHERE o.name <> '{g}' RETURN DISTINCT o.name", {
        "eng_Latn": "Which other countries use the same currency as {nom}?",
        "spa_Latn": "¿Qué otros países usan la misma moneda que {nom}?",
        "tur_Latn": "{nom} ile aynı para birimini kullanan diğer ülkeler hangileridir?",
        "deu_Latn": "Welche anderen Länder verwenden dieselbe Währung wie {nom}?",
        "fra_Latn": "Quels autres pays utilisent la même monnaie que {nom} ?"}),
]  # fmt: skip

LANGUAGE_TEMPLATES = [
    ("n_official_countries", "aggregation",
     "MATCH (c:Country)-[s:SPEAKS]->(l:Language {{name: '{g}'}}) WHERE s.official_status = 'official' "
     "RETURN count(c)", {
        "eng_Latn": "In how many countries is {nom} an official language?",
        "spa_Latn": "¿En cuántos países es {art} lengua oficial?",
        "tur_Latn": "{nom} kaç ülkede resmî dildir?",
        "deu_Latn": "In wie vielen Ländern ist {nom} Amtssprache?",
        "fra_Latn": "Dans combien de pays {art} est-il langue officielle ?"}),
    ("official_countries_sorted", "ordering",
     "MATCH (c:Country)-[s:SPEAKS]->(l:Language {{name: '{g}'}}) WHERE s.official_status = 'official' "
     "RETURN c.name ORDER BY c.name", {
        "eng_Latn": "List the countries where {nom} is an official language, in alphabetical order.",
        "spa_Latn": "Enumera por orden alfabético los países donde {art} es lengua oficial.",
        "tur_Latn": "{gen} resmî dil olduğu ülkeleri alfabetik sırayla listele.",
        "deu_Latn": "Nenne in alphabetischer Reihenfolge die Länder, in denen {nom} Amtssprache ist.",
        "fra_Latn": "Liste par ordre alphabétique les pays où {art} est langue officielle."}),
    ("script", "lookup", "MATCH (l:Language {{name: '{g}'}})-[:WRITTEN_IN]->(s:Script) RETURN s.name", {
        "eng_Latn": "In which script is {nom} written?",
        "spa_Latn": "¿En qué sistema de escritura se escribe {art}?",
        "tur_Latn": "{nom} hangi yazı sistemiyle yazılır?",
        "deu_Latn": "In welcher Schrift wird {nom} geschrieben?",
        "fra_Latn": "Dans quelle écriture {art} s'écrit-il ?"}),
    ("official_currencies", "multi-hop",
     "MATCH (cu:Currency)<-[:USES_CURRENCY]-(c:Country)-[s:SPEAKS]->(l:Language {{name: '{g}'}}) "
     "WHERE s.official_status = 'official' RETURN DISTINCT cu.name", {
        "eng_Latn": "Which currencies are used in countries where {nom} is an official language?",
        "spa_Latn": "¿Qué monedas se usan en los países donde {art} es lengua oficial?",
        "tur_Latn": "{gen} resmî dil olduğu ülkelerde hangi para birimleri kullanılır?",
        "deu_Latn": "Welche Währungen werden in Ländern verwendet, in denen {nom} Amtssprache ist?",
        "fra_Latn": "Quelles monnaies sont utilisées dans les pays où {art} est langue officielle ?"}),
    ("majority_countries", "filter",
     "MATCH (c:Country)-[s:SPEAKS]->(l:Language {{name: '{g}'}}) WHERE s.population_percent > 50 RETURN c.name", {
        "eng_Latn": "In which countries do more than half of the people speak {nom}?",
        "spa_Latn": "¿En qué países habla {bare} más de la mitad de la población?",
        "tur_Latn": "Hangi ülkelerde nüfusun yarısından fazlası {nom} konuşuyor?",
        "deu_Latn": "In welchen Ländern spricht mehr als die Hälfte der Bevölkerung {nom}?",
        "fra_Latn": "Dans quels pays plus de la moitié de la population parle-t-elle {bare} ?"}),
    ("iso639_3", "lookup", "MATCH (l:Language {{name: '{g}'}}) RETURN l.iso639_3", {
        "eng_Latn": "What is the ISO 639-3 code of {nom}?",
        "spa_Latn": "¿Cuál es el código ISO 639-3 {del}?",
        "tur_Latn": "{gen} ISO 639-3 kodu nedir?",
        "deu_Latn": "Wie lautet der ISO-639-3-Code für {nom}?",
        "fra_Latn": "Quel est le code ISO 639-3 {de} ?"}),
]  # fmt: skip

CURRENCY_TEMPLATES = [
    ("n_countries", "aggregation",
     "MATCH (c:Country)-[:USES_CURRENCY]->(cu:Currency {{name: '{g}'}}) RETURN count(c)", {
        "eng_Latn": "How many countries use {acc}?",
        "spa_Latn": "¿Cuántos países usan {acc}?",
        "tur_Latn": "{acc} kaç ülke kullanıyor?",
        "deu_Latn": "Wie viele Länder verwenden {acc}?",
        "fra_Latn": "Combien de pays utilisent {acc} ?"}),
    ("code", "lookup", "MATCH (cu:Currency {{name: '{g}'}}) RETURN cu.code", {
        "eng_Latn": "What is the ISO 4217 code of {gen}?",
        "spa_Latn": "¿Cuál es el código ISO 4217 {gen}?",
        "tur_Latn": "{gen} ISO 4217 kodu nedir?",
        "deu_Latn": "Wie lautet der ISO-4217-Code {gen}?",
        "fra_Latn": "Quel est le code ISO 4217 {gen} ?"}),
]  # fmt: skip

SCRIPT_TEMPLATES = [
    ("n_languages", "aggregation",
     "MATCH (l:Language)-[:WRITTEN_IN]->(s:Script {{name: '{g}'}}) RETURN count(l)", {
        "eng_Latn": "How many languages are written {in}?",
        "spa_Latn": "¿Cuántos idiomas se escriben {in}?",
        "tur_Latn": "{in} kaç dil yazılır?",
        "deu_Latn": "Wie viele Sprachen werden {in} geschrieben?",
        "fra_Latn": "Combien de langues s'écrivent {in} ?"}),
    ("official_countries", "multi-hop",
     "MATCH (c:Country)-[s:SPEAKS]->(:Language)-[:WRITTEN_IN]->(:Script {{name: '{g}'}}) "
     "WHERE s.official_status = 'official' RETURN DISTINCT c.name", {
        "eng_Latn": "In which countries is an official language written {in}?",
        "spa_Latn": "¿En qué países hay una lengua oficial que se escribe {in}?",
        "tur_Latn": "Hangi ülkelerde {in} yazılan bir resmî dil var?",
        "deu_Latn": "In welchen Ländern gibt es eine Amtssprache, die {in} geschrieben wird?",
        "fra_Latn": "Dans quels pays une langue officielle s'écrit-elle {in} ?"}),
]  # fmt: skip

from babelscope.cypher.question_global import GLOBAL_ITEMS  # noqa: E402  (hand-written items)


def _capitalize(text: str, lang: str) -> str:
    first = text[0]
    upper = "İ" if (lang == "tur_Latn" and first == "i") else first.upper()
    return upper + text[1:]


def _expand(prefix: str, templates, entities) -> list[dict]:
    items = []
    for name, kind, cypher, texts in templates:
        for ent in entities:
            slug = ent["graph"].lower().replace(" ", "_").replace("ü", "u")
            questions = {lang: _capitalize(texts[lang].format(**ent[lang]), lang) for lang in LANGS}
            items.append(
                {
                    "item_id": f"{prefix}.{name}.{slug}",
                    "kind": kind,
                    "cypher": cypher.format(g=ent["graph"]),
                    "questions": questions,
                }
            )
    return items


def generate_items() -> list[dict]:
    """All candidate items (before the non-empty check), in a fixed order."""
    languages = [language_forms(row) for row in LANGUAGES]
    items = _expand("country", COUNTRY_TEMPLATES, COUNTRIES)
    items += _expand("language", LANGUAGE_TEMPLATES, languages)
    items += _expand("currency", CURRENCY_TEMPLATES, CURRENCIES)
    items += _expand("script", SCRIPT_TEMPLATES, SCRIPTS)
    items += [dict(item) for item in GLOBAL_ITEMS]
    return items


def write_question_file(path=None) -> int:
    """Keep the items whose gold query returns rows on the built graph; write them as JSONL."""
    import json

    from babelscope.cypher.execute import SafeExecutor
    from babelscope.cypher.graph import ensure_graph
    from babelscope.cypher.questions import DATA_FILE

    path = path or DATA_FILE
    kept = []
    with SafeExecutor(ensure_graph()) as ex:
        for item in generate_items():
            res = ex.run(item["cypher"])
            if res.ok and res.rows and res.rows != [[0]]:
                kept.append(item)
            else:
                print(f"dropped {item['item_id']}: {res.status} {res.error or res.rows}")
    with open(path, "w", encoding="utf-8") as f:
        for item in kept:
            f.write(json.dumps(item, ensure_ascii=False) + "\n")
    return len(kept)


if __name__ == "__main__":
    print(write_question_file(), "items written")
