# ruff: noqa: E501  (a table of names: one row per language reads best)
"""Graph entities the question templates talk about, with their names written in each language.

The Cypher always uses the graph's English name (`graph`); each question language gets the
grammatical forms its templates need (a preposition or article glued to the name, Turkish
case suffixes, German genitive), written out by hand so every question reads naturally.
Keys: eng_Latn, spa_Latn, tur_Latn, deu_Latn, fra_Latn.
"""

# Countries. en: nom, in | es: nom, en, de | tr: nom, loc, gen | de: nom, in, gen | fr: nom, en, de
COUNTRIES = [
    {
        "graph": "Spain",
        "eng_Latn": {"nom": "Spain", "in": "in Spain"},
        "spa_Latn": {"nom": "España", "en": "en España", "de": "de España"},
        "tur_Latn": {"nom": "İspanya", "loc": "İspanya'da", "gen": "İspanya'nın"},
        "deu_Latn": {"nom": "Spanien", "in": "in Spanien", "gen": "Spaniens"},
        "fra_Latn": {"nom": "l'Espagne", "en": "en Espagne", "de": "de l'Espagne"},
    },
    {
        "graph": "Türkiye",
        "eng_Latn": {"nom": "Türkiye", "in": "in Türkiye"},
        "spa_Latn": {"nom": "Turquía", "en": "en Turquía", "de": "de Turquía"},
        "tur_Latn": {"nom": "Türkiye", "loc": "Türkiye'de", "gen": "Türkiye'nin"},
        "deu_Latn": {"nom": "die Türkei", "in": "in der Türkei", "gen": "der Türkei"},
        "fra_Latn": {"nom": "la Turquie", "en": "en Turquie", "de": "de la Turquie"},
    },
    {
        "graph": "Germany",
        "eng_Latn": {"nom": "Germany", "in": "in Germany"},
        "spa_Latn": {"nom": "Alemania", "en": "en Alemania", "de": "de Alemania"},
        "tur_Latn": {"nom": "Almanya", "loc": "Almanya'da", "gen": "Almanya'nın"},
        "deu_Latn": {"nom": "Deutschland", "in": "in Deutschland", "gen": "Deutschlands"},
        "fra_Latn": {"nom": "l'Allemagne", "en": "en Allemagne", "de": "de l'Allemagne"},
    },
    {
        "graph": "France",
        "eng_Latn": {"nom": "France", "in": "in France"},
        "spa_Latn": {"nom": "Francia", "en": "en Francia", "de": "de Francia"},
        "tur_Latn": {"nom": "Fransa", "loc": "Fransa'da", "gen": "Fransa'nın"},
        "deu_Latn": {"nom": "Frankreich", "in": "in Frankreich", "gen": "Frankreichs"},
        "fra_Latn": {"nom": "la France", "en": "en France", "de": "de la France"},
    },
    {
        "graph": "Japan",
        "eng_Latn": {"nom": "Japan", "in": "in Japan"},
        "spa_Latn": {"nom": "Japón", "en": "en Japón", "de": "de Japón"},
        "tur_Latn": {"nom": "Japonya", "loc": "Japonya'da", "gen": "Japonya'nın"},
        "deu_Latn": {"nom": "Japan", "in": "in Japan", "gen": "Japans"},
        "fra_Latn": {"nom": "le Japon", "en": "au Japon", "de": "du Japon"},
    },
    {
        "graph": "India",
        "eng_Latn": {"nom": "India", "in": "in India"},
        "spa_Latn": {"nom": "la India", "en": "en la India", "de": "de la India"},
        "tur_Latn": {"nom": "Hindistan", "loc": "Hindistan'da", "gen": "Hindistan'ın"},
        "deu_Latn": {"nom": "Indien", "in": "in Indien", "gen": "Indiens"},
        "fra_Latn": {"nom": "l'Inde", "en": "en Inde", "de": "de l'Inde"},
    },
    {
        "graph": "Canada",
        "eng_Latn": {"nom": "Canada", "in": "in Canada"},
        "spa_Latn": {"nom": "Canadá", "en": "en Canadá", "de": "de Canadá"},
        "tur_Latn": {"nom": "Kanada", "loc": "Kanada'da", "gen": "Kanada'nın"},
        "deu_Latn": {"nom": "Kanada", "in": "in Kanada", "gen": "Kanadas"},
        "fra_Latn": {"nom": "le Canada", "en": "au Canada", "de": "du Canada"},
    },
    {
        "graph": "Switzerland",
        "eng_Latn": {"nom": "Switzerland", "in": "in Switzerland"},
        "spa_Latn": {"nom": "Suiza", "en": "en Suiza", "de": "de Suiza"},
        "tur_Latn": {"nom": "İsviçre", "loc": "İsviçre'de", "gen": "İsviçre'nin"},
        "deu_Latn": {"nom": "die Schweiz", "in": "in der Schweiz", "gen": "der Schweiz"},
        "fra_Latn": {"nom": "la Suisse", "en": "en Suisse", "de": "de la Suisse"},
    },
    {
        "graph": "Belgium",
        "eng_Latn": {"nom": "Belgium", "in": "in Belgium"},
        "spa_Latn": {"nom": "Bélgica", "en": "en Bélgica", "de": "de Bélgica"},
        "tur_Latn": {"nom": "Belçika", "loc": "Belçika'da", "gen": "Belçika'nın"},
        "deu_Latn": {"nom": "Belgien", "in": "in Belgien", "gen": "Belgiens"},
        "fra_Latn": {"nom": "la Belgique", "en": "en Belgique", "de": "de la Belgique"},
    },
    {
        "graph": "Mexico",
        "eng_Latn": {"nom": "Mexico", "in": "in Mexico"},
        "spa_Latn": {"nom": "México", "en": "en México", "de": "de México"},
        "tur_Latn": {"nom": "Meksika", "loc": "Meksika'da", "gen": "Meksika'nın"},
        "deu_Latn": {"nom": "Mexiko", "in": "in Mexiko", "gen": "Mexikos"},
        "fra_Latn": {"nom": "le Mexique", "en": "au Mexique", "de": "du Mexique"},
    },
]

# fmt: off
# Languages. es: art (with article), bare, del | tr: nom, gen | de: nom | fr: art, bare, de
LANGUAGES = [
    ("Spanish", "el español", "español", "del español", "İspanyolca", "İspanyolcanın", "Spanisch", "l'espagnol", "espagnol", "de l'espagnol"),
    ("English", "el inglés", "inglés", "del inglés", "İngilizce", "İngilizcenin", "Englisch", "l'anglais", "anglais", "de l'anglais"),
    ("French", "el francés", "francés", "del francés", "Fransızca", "Fransızcanın", "Französisch", "le français", "français", "du français"),
    ("German", "el alemán", "alemán", "del alemán", "Almanca", "Almancanın", "Deutsch", "l'allemand", "allemand", "de l'allemand"),
    ("Arabic", "el árabe", "árabe", "del árabe", "Arapça", "Arapçanın", "Arabisch", "l'arabe", "arabe", "de l'arabe"),
    ("Portuguese", "el portugués", "portugués", "del portugués", "Portekizce", "Portekizcenin", "Portugiesisch", "le portugais", "portugais", "du portugais"),
    ("Russian", "el ruso", "ruso", "del ruso", "Rusça", "Rusçanın", "Russisch", "le russe", "russe", "du russe"),
    ("Chinese", "el chino", "chino", "del chino", "Çince", "Çincenin", "Chinesisch", "le chinois", "chinois", "du chinois"),
]
# fmt: on


def language_forms(row):
    graph, es_art, es_bare, es_del, tr_nom, tr_gen, de_nom, fr_art, fr_bare, fr_de = row
    return {
        "graph": graph,
        "eng_Latn": {"nom": graph},
        "spa_Latn": {"art": es_art, "bare": es_bare, "del": es_del},
        "tur_Latn": {"nom": tr_nom, "gen": tr_gen},
        "deu_Latn": {"nom": de_nom},
        "fra_Latn": {"art": fr_art, "bare": fr_bare, "de": fr_de},
    }


# Currencies. acc: the form used as an object, gen: "of the ..." form
CURRENCIES = [
    {
        "graph": "Euro",
        "eng_Latn": {"acc": "the euro", "gen": "the euro"},
        "spa_Latn": {"acc": "el euro", "gen": "del euro"},
        "tur_Latn": {"acc": "avroyu", "gen": "avronun"},
        "deu_Latn": {"acc": "den Euro", "gen": "des Euro"},
        "fra_Latn": {"acc": "l'euro", "gen": "de l'euro"},
    },
    {
        "graph": "US Dollar",
        "eng_Latn": {"acc": "the US dollar", "gen": "the US dollar"},
        "spa_Latn": {"acc": "el dólar estadounidense", "gen": "del dólar estadounidense"},
        "tur_Latn": {"acc": "ABD dolarını", "gen": "ABD dolarının"},
        "deu_Latn": {"acc": "den US-Dollar", "gen": "des US-Dollars"},
        "fra_Latn": {"acc": "le dollar américain", "gen": "du dollar américain"},
    },
    {
        "graph": "Swiss Franc",
        "eng_Latn": {"acc": "the Swiss franc", "gen": "the Swiss franc"},
        "spa_Latn": {"acc": "el franco suizo", "gen": "del franco suizo"},
        "tur_Latn": {"acc": "İsviçre frangını", "gen": "İsviçre frangının"},
        "deu_Latn": {"acc": "den Schweizer Franken", "gen": "des Schweizer Frankens"},
        "fra_Latn": {"acc": "le franc suisse", "gen": "du franc suisse"},
    },
    {
        "graph": "Indian Rupee",
        "eng_Latn": {"acc": "the Indian rupee", "gen": "the Indian rupee"},
        "spa_Latn": {"acc": "la rupia india", "gen": "de la rupia india"},
        "tur_Latn": {"acc": "Hindistan rupisini", "gen": "Hindistan rupisinin"},
        "deu_Latn": {"acc": "die Indische Rupie", "gen": "der Indischen Rupie"},
        "fra_Latn": {"acc": "la roupie indienne", "gen": "de la roupie indienne"},
    },
]

# Scripts. in: "written in ..." phrase (Turkish: instrumental "...alfabesiyle")
SCRIPTS = [
    {
        "graph": "Latin",
        "eng_Latn": {"in": "in the Latin script"},
        "spa_Latn": {"in": "con el alfabeto latino"},
        "tur_Latn": {"in": "Latin alfabesiyle"},
        "deu_Latn": {"in": "in lateinischer Schrift"},
        "fra_Latn": {"in": "avec l'alphabet latin"},
    },
    {
        "graph": "Cyrillic",
        "eng_Latn": {"in": "in the Cyrillic script"},
        "spa_Latn": {"in": "con el alfabeto cirílico"},
        "tur_Latn": {"in": "Kiril alfabesiyle"},
        "deu_Latn": {"in": "in kyrillischer Schrift"},
        "fra_Latn": {"in": "avec l'alphabet cyrillique"},
    },
    {
        "graph": "Arabic",
        "eng_Latn": {"in": "in the Arabic script"},
        "spa_Latn": {"in": "con el alfabeto árabe"},
        "tur_Latn": {"in": "Arap alfabesiyle"},
        "deu_Latn": {"in": "in arabischer Schrift"},
        "fra_Latn": {"in": "avec l'alphabet arabe"},
    },
    {
        "graph": "Greek",
        "eng_Latn": {"in": "in the Greek script"},
        "spa_Latn": {"in": "con el alfabeto griego"},
        "tur_Latn": {"in": "Yunan alfabesiyle"},
        "deu_Latn": {"in": "in griechischer Schrift"},
        "fra_Latn": {"in": "avec l'alphabet grec"},
    },
]
