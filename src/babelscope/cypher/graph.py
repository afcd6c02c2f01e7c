"""The built-in property graph: countries, subdivisions, languages, scripts, currencies, time zones.

Everything comes from reference data that ships inside PyPI packages:
pycountry (ISO 3166-1/-2, 639-3, 4217, 15924) and Babel's CLDR tables
(`territory_languages` with population shares and official status, `territory_currencies`,
`likely_subtags` for each language's main script, `zone_territories`, `currency_fractions`).
The graph is built once into an embedded LadybugDB file (`embedded.py`) under the babelscope cache directory.
"""

from __future__ import annotations

from pathlib import Path

from babelscope.cypher import embedded
from babelscope.runs import build_cached, cache_dir

GRAPH_VERSION = 2  # bump when the schema, the build or the engine changes (2: LadybugDB, not Kùzu)

NODE_TABLES = {  # table -> [(property, Cypher type)]; the first property is the primary key
    "Country": [
        ("code", "STRING"),
        ("alpha3", "STRING"),
        ("name", "STRING"),
        ("official_name", "STRING"),
        ("numeric", "INT64"),
    ],
    "Subdivision": [("code", "STRING"), ("name", "STRING"), ("type", "STRING")],
    "Language": [("code", "STRING"), ("name", "STRING"), ("iso639_3", "STRING")],
    "Script": [("code", "STRING"), ("name", "STRING"), ("numeric", "INT64")],
    "Currency": [
        ("code", "STRING"),
        ("name", "STRING"),
        ("numeric", "INT64"),
        ("digits", "INT64"),
    ],
    "TimeZone": [("name", "STRING"), ("area", "STRING")],
}

REL_TABLES = {  # table -> (from, to, [(property, type)])
    "SPEAKS": ("Country", "Language", [("population_percent", "DOUBLE"), ("official_status", "STRING")]),
    "USES_CURRENCY": ("Country", "Currency", [("since", "INT64")]),
    "IN_COUNTRY": ("Subdivision", "Country", []),
    "PART_OF": ("Subdivision", "Subdivision", []),
    "WRITTEN_IN": ("Language", "Script", []),
    "HAS_TIMEZONE": ("Country", "TimeZone", []),
}


def default_graph_path() -> Path:
    return cache_dir() / "cypher" / f"countries-v{GRAPH_VERSION}{embedded.SUFFIX}"


def ensure_graph(path: str | Path | None = None, rebuild: bool = False) -> Path:
    """Return the path of the built graph: the cached default (built once, atomically, under a lock;
    a half-built entry is rebuilt) or ``path`` (built there when missing or when ``rebuild``)."""
    if path is None:
        return build_cached(default_graph_path(), _build_into, rebuild=rebuild)
    path = Path(path)
    if rebuild or not path.exists():
        build_graph(path)
    return path


def _collect():
    """Read pycountry and Babel into plain row dicts per table."""
    import pycountry
    from babel import Locale
    from babel.core import get_global

    en = Locale("en")
    countries = {}
    for c in pycountry.countries:
        countries[c.alpha_2] = {
            "code": c.alpha_2,
            "alpha3": c.alpha_3,
            "name": c.name,
            "official_name": getattr(c, "official_name", None),
            "numeric": int(c.numeric),
        }
    subdivisions, in_country, part_of = [], [], []
    for s in pycountry.subdivisions:
        subdivisions.append({"code": s.code, "name": s.name, "type": s.type})
        in_country.append((s.code, s.country_code))
        if s.parent_code:
            parent = s.parent_code if "-" in s.parent_code else f"{s.country_code}-{s.parent_code}"
            part_of.append((s.code, parent))

    speaks, lang_codes = [], set()
    for territory, langs in get_global("territory_languages").items():
        if territory not in countries:
            continue
        for code, info in langs.items():
            if "_" in code:  # script variants (sr_Latn, zh_Hant) fold into their base language
                continue
            lang_codes.add(code)
            speaks.append((territory, code, info["population_percent"], info["official_status"]))
    likely = get_global("likely_subtags")
    languages, written_in, script_codes = [], [], set()
    for code in sorted(lang_codes):
        rec = pycountry.languages.get(alpha_2=code) if len(code) == 2 else pycountry.languages.get(alpha_3=code)
        name = en.languages.get(code) or (rec.name if rec else code)
        languages.append({"code": code, "name": name, "iso639_3": rec.alpha_3 if rec else None})
        parts = likely.get(code, "").split("_")
        if len(parts) > 1 and len(parts[1]) == 4:
            written_in.append((code, parts[1]))
            script_codes.add(parts[1])
    scripts = []
    for code in sorted(script_codes):
        rec = pycountry.scripts.get(alpha_4=code)
        scripts.append({"code": code, "name": rec.name if rec else code, "numeric": int(rec.numeric) if rec else None})

    fractions = get_global("currency_fractions")
    uses_currency, currency_codes = [], set()
    for territory, entries in get_global("territory_currencies").items():
        if territory not in countries:
            continue
        for code, start, end, tender in entries:
            if end is None and tender:  # the currencies in legal use today
                uses_currency.append((territory, code, start[0] if start else None))
                currency_codes.add(code)
    currencies = []
    for code in sorted(currency_codes):
        rec = pycountry.currencies.get(alpha_3=code)
        digits = fractions.get(code, fractions["DEFAULT"])[0]
        currencies.append(
            {
                "code": code,
                "name": en.currencies.get(code, code),
                "numeric": int(rec.numeric) if rec else None,
                "digits": digits,
            }
        )
    zones, has_zone = [], []
    for zone, territory in sorted(get_global("zone_territories").items()):
        if territory in countries:
            zones.append({"name": zone, "area": zone.split("/")[0]})
            has_zone.append((territory, zone))
    nodes = {
        "Country": list(countries.values()),
        "Subdivision": subdivisions,
        "Language": languages,
        "Script": scripts,
        "Currency": currencies,
        "TimeZone": zones,
    }
    rels = {
        "SPEAKS": [{"a": a, "b": b, "population_percent": p, "official_status": s} for a, b, p, s in speaks],
        "USES_CURRENCY": [{"a": a, "b": b, "since": y} for a, b, y in uses_currency],
        "IN_COUNTRY": [{"a": a, "b": b} for a, b in in_country],
        "PART_OF": [{"a": a, "b": b} for a, b in part_of],
        "WRITTEN_IN": [{"a": a, "b": b} for a, b in written_in],
        "HAS_TIMEZONE": [{"a": a, "b": b} for a, b in has_zone],
    }
    return nodes, rels


def _key(table: str) -> str:
    return NODE_TABLES[table][0][0]


def build_graph(path: str | Path) -> Path:
    """Build the graph into `path` (a single database file), atomically replacing any old one."""
    return build_cached(Path(path), _build_into, rebuild=True)


def _build_into(tmp: Path) -> None:
    """Write the whole graph into the new database file ``tmp``."""
    db, con = embedded.connect(tmp, read_only=False)  # first: a missing engine fails before the slow part
    nodes, rels = _collect()
    for table, props in NODE_TABLES.items():
        cols = ", ".join(f"{p} {t}" for p, t in props)
        con.execute(f"CREATE NODE TABLE {table}({cols}, PRIMARY KEY({props[0][0]}))")
    for table, (src, dst, props) in REL_TABLES.items():
        cols = "".join(f", {p} {t}" for p, t in props)
        con.execute(f"CREATE REL TABLE {table}(FROM {src} TO {dst}{cols})")
    for table, rows in nodes.items():
        assign = ", ".join(f"{p}: r.{p}" for p, _ in NODE_TABLES[table])
        con.execute(f"UNWIND $rows AS r CREATE (:{table} {{{assign}}})", {"rows": rows})
    for table, rows in rels.items():
        src, dst, props = REL_TABLES[table]
        assign = ", ".join(f"{p}: r.{p}" for p, _ in props)
        con.execute(
            f"UNWIND $rows AS r MATCH (a:{src} {{{_key(src)}: r.a}}), (b:{dst} {{{_key(dst)}: r.b}}) "
            f"CREATE (a)-[:{table} {{{assign}}}]->(b)",
            {"rows": rows},
        )
    con.close()
    db.close()
    Path(str(tmp) + ".wal").unlink(missing_ok=True)  # the engine's write-ahead log of the new file, if one is left


def graph_counts(path: str | Path) -> dict[str, int]:
    """Row counts per node and relationship table (opened read-only)."""
    db, con = embedded.connect(path)
    out = {}
    for table in NODE_TABLES:
        out[table] = con.execute(f"MATCH (n:{table}) RETURN count(n)").get_next()[0]
    for table in REL_TABLES:
        out[table] = con.execute(f"MATCH ()-[r:{table}]->() RETURN count(r)").get_next()[0]
    con.close()
    db.close()
    return out
