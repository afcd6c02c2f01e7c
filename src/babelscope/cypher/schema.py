"""The graph schema as prompt text, in the format of `neo4j/text2cypher-2024v1`'s `schema` field.

That format (LangChain's Neo4jGraph schema string) lists node properties, relationship
properties, then the relationship patterns:

    Node properties:
    Country {code: STRING, alpha3: STRING, ...}
    Relationship properties:
    SPEAKS {population_percent: FLOAT, official_status: STRING}
    The relationships:
    (:Country)-[:SPEAKS]->(:Language)
"""

from __future__ import annotations

from babelscope.cypher.graph import NODE_TABLES, REL_TABLES

NEO4J_TYPE = {"STRING": "STRING", "INT64": "INTEGER", "DOUBLE": "FLOAT", "BOOL": "BOOLEAN", "DATE": "DATE"}


def render_schema(nodes: dict, rels: dict) -> str:
    """nodes: {label: [(prop, type)]}; rels: {type: (from, to, [(prop, type)])}."""
    lines = ["Node properties:"]
    for label, props in nodes.items():
        lines.append(f"{label} {{{', '.join(f'{p}: {NEO4J_TYPE.get(t, t)}' for p, t in props)}}}")
    lines.append("Relationship properties:")
    for rel, (_, _, props) in rels.items():
        if props:
            lines.append(f"{rel} {{{', '.join(f'{p}: {NEO4J_TYPE.get(t, t)}' for p, t in props)}}}")
    lines.append("The relationships:")
    for rel, (src, dst, _) in rels.items():
        lines.append(f"(:{src})-[:{rel}]->(:{dst})")
    return "\n".join(lines)


def builtin_schema_text() -> str:
    """Schema text of the built-in graph (no database needed: the build declares it)."""
    return render_schema(NODE_TABLES, REL_TABLES)
