"""Hand-written questions about the whole graph (no template slot), in all five languages."""

GLOBAL_ITEMS = [
    {
        "item_id": "global.most_subdivisions",
        "kind": "ordering",
        "cypher": "MATCH (s:Subdivision)-[:IN_COUNTRY]->(c:Country) WITH c, count(s) AS n "
        "RETURN c.name ORDER BY n DESC LIMIT 1",
        "questions": {
            "eng_Latn": "Which country has the most subdivisions?",
            "spa_Latn": "¿Qué país tiene más subdivisiones?",
            "tur_Latn": "En çok idari bölüme sahip ülke hangisidir?",
            "deu_Latn": "Welches Land hat die meisten Verwaltungseinheiten?",
            "fra_Latn": "Quel pays compte le plus de subdivisions administratives ?",
        },
    },
    {
        "item_id": "global.n_countries",
        "kind": "aggregation",
        "cypher": "MATCH (c:Country) RETURN count(c)",
        "questions": {
            "eng_Latn": "How many countries are in the database?",
            "spa_Latn": "¿Cuántos países hay en la base de datos?",
            "tur_Latn": "Veritabanında kaç ülke var?",
            "deu_Latn": "Wie viele Länder enthält die Datenbank?",
            "fra_Latn": "Combien de pays la base de données contient-elle ?",
        },
    },
    {
        "item_id": "global.most_used_currency",
        "kind": "ordering",
        "cypher": "MATCH (c:Country)-[:USES_CURRENCY]->(cu:Currency) WITH cu, count(c) AS n "
        "RETURN cu.name ORDER BY n DESC LIMIT 1",
        "questions": {
            "eng_Latn": "Which currency is used by the most countries?",
            "spa_Latn": "¿Qué moneda usan más países?",
            "tur_Latn": "En çok ülkenin kullandığı para birimi hangisidir?",
            "deu_Latn": "Welche Währung wird von den meisten Ländern verwendet?",
            "fra_Latn": "Quelle monnaie est utilisée par le plus grand nombre de pays ?",
        },
    },
    {
        "item_id": "global.no_minor_unit",
        "kind": "filter",
        "cypher": "MATCH (cu:Currency) WHERE cu.digits = 0 RETURN cu.name",
        "questions": {
            "eng_Latn": "Which currencies have no decimal places?",
            "spa_Latn": "¿Qué monedas no tienen decimales?",
            "tur_Latn": "Hangi para birimlerinin ondalık basamağı yoktur?",
            "deu_Latn": "Welche Währungen haben keine Nachkommastellen?",
            "fra_Latn": "Quelles monnaies n'ont pas de décimales ?",
        },
    },
    {
        "item_id": "global.most_timezones",
        "kind": "ordering",
        "cypher": "MATCH (c:Country)-[:HAS_TIMEZONE]->(t:TimeZone) WITH c, count(t) AS n "
        "RETURN c.name ORDER BY n DESC LIMIT 1",
        "questions": {
            "eng_Latn": "Which country has the most time zones?",
            "spa_Latn": "¿Qué país tiene más zonas horarias?",
            "tur_Latn": "En çok saat dilimine sahip ülke hangisidir?",
            "deu_Latn": "Welches Land hat die meisten Zeitzonen?",
            "fra_Latn": "Quel pays compte le plus de fuseaux horaires ?",
        },
    },
    {
        "item_id": "global.n_languages",
        "kind": "aggregation",
        "cypher": "MATCH (l:Language) RETURN count(l)",
        "questions": {
            "eng_Latn": "How many languages does the database contain?",
            "spa_Latn": "¿Cuántos idiomas contiene la base de datos?",
            "tur_Latn": "Veritabanında kaç dil bulunuyor?",
            "deu_Latn": "Wie viele Sprachen enthält die Datenbank?",
            "fra_Latn": "Combien de langues la base de données contient-elle ?",
        },
    },
    {
        "item_id": "global.most_official_language",
        "kind": "ordering",
        "cypher": "MATCH (c:Country)-[s:SPEAKS]->(l:Language) WHERE s.official_status = 'official' "
        "WITH l, count(c) AS n RETURN l.name ORDER BY n DESC LIMIT 1",
        "questions": {
            "eng_Latn": "Which language is an official language in the most countries?",
            "spa_Latn": "¿Qué idioma es lengua oficial en más países?",
            "tur_Latn": "En çok ülkede resmî dil olan dil hangisidir?",
            "deu_Latn": "Welche Sprache ist in den meisten Ländern Amtssprache?",
            "fra_Latn": "Quelle langue est langue officielle dans le plus grand nombre de pays ?",
        },
    },
    {
        "item_id": "global.euro_and_french",
        "kind": "multi-hop",
        "cypher": "MATCH (cu:Currency {name: 'Euro'})<-[:USES_CURRENCY]-(c:Country)-[s:SPEAKS]->"
        "(l:Language {name: 'French'}) WHERE s.official_status = 'official' RETURN c.name",
        "questions": {
            "eng_Latn": "Which countries use the euro and have French as an official language?",
            "spa_Latn": "¿Qué países usan el euro y tienen el francés como lengua oficial?",
            "tur_Latn": "Hangi ülkeler avro kullanıyor ve Fransızcayı resmî dil olarak kabul ediyor?",
            "deu_Latn": "Welche Länder verwenden den Euro und haben Französisch als Amtssprache?",
            "fra_Latn": "Quels pays utilisent l'euro et ont le français comme langue officielle ?",
        },
    },
    {
        "item_id": "global.antarctica_timezones",
        "kind": "filter",
        "cypher": "MATCH (t:TimeZone) WHERE t.area = 'Antarctica' RETURN t.name",
        "questions": {
            "eng_Latn": "Which time zones belong to the Antarctica area?",
            "spa_Latn": "¿Qué zonas horarias pertenecen al área de la Antártida?",
            "tur_Latn": "Antarktika bölgesine ait saat dilimleri hangileridir?",
            "deu_Latn": "Welche Zeitzonen gehören zum Gebiet Antarktis?",
            "fra_Latn": "Quels fuseaux horaires appartiennent à la zone Antarctique ?",
        },
    },
    {
        "item_id": "global.n_subdivisions",
        "kind": "aggregation",
        "cypher": "MATCH (s:Subdivision) RETURN count(s)",
        "questions": {
            "eng_Latn": "How many subdivisions are there in total?",
            "spa_Latn": "¿Cuántas subdivisiones hay en total?",
            "tur_Latn": "Toplam kaç idari bölüm var?",
            "deu_Latn": "Wie viele Verwaltungseinheiten gibt es insgesamt?",
            "fra_Latn": "Combien de subdivisions administratives y a-t-il au total ?",
        },
    },
    {
        "item_id": "global.oldest_currency",
        "kind": "ordering",
        "cypher": "MATCH (c:Country)-[u:USES_CURRENCY]->(cu:Currency) RETURN c.name, cu.name ORDER BY u.since LIMIT 1",
        "questions": {
            "eng_Latn": "Which country has used its current currency for the longest time, and what is that currency?",
            "spa_Latn": "¿Qué país usa su moneda actual desde hace más tiempo y cuál es esa moneda?",
            "tur_Latn": "Hangi ülke şu anki para birimini en uzun süredir kullanıyor ve bu para birimi hangisi?",
            "deu_Latn": "Welches Land verwendet seine heutige Währung am längsten, und welche Währung ist das?",
            "fra_Latn": "Quel pays utilise sa monnaie actuelle depuis le plus longtemps, "
            "et de quelle monnaie s'agit-il ?",
        },
    },
    {
        "item_id": "global.subdivisions_with_parts",
        "kind": "multi-hop",
        "cypher": "MATCH (p:Subdivision)<-[:PART_OF]-(s:Subdivision)-[:IN_COUNTRY]->(c:Country {name: 'Spain'}) "
        "WITH p, count(s) AS n RETURN p.name ORDER BY n DESC LIMIT 1",
        "questions": {
            "eng_Latn": "Which Spanish region contains the most provinces?",
            "spa_Latn": "¿Qué comunidad autónoma española tiene más provincias?",
            "tur_Latn": "İspanya'da en çok ili kapsayan özerk bölge hangisidir?",
            "deu_Latn": "Welche spanische autonome Gemeinschaft umfasst die meisten Provinzen?",
            "fra_Latn": "Quelle communauté autonome espagnole compte le plus de provinces ?",
        },
    },
]
