"""Read-only check for generated Cypher, done on the parsed statement (not a keyword grep).

Kùzu's read-only mode blocks changes to the graph, but `LOAD FROM` still reads any file,
`COPY ... TO` / `EXPORT DATABASE` still write files, `INSTALL` reaches the network, and
`ATTACH` opens other databases. So a query is executed only when:

1. it lexes cleanly (strings, backtick names, comments and parameters are tokens of their own,
   so a keyword inside a string literal or a property name such as `n.set` is not a clause);
2. it is exactly one statement (at most one trailing `;`);
3. every clause at every nesting depth is a read clause (MATCH, OPTIONAL MATCH, WHERE, WITH,
   UNWIND, RETURN, ORDER BY, SKIP, LIMIT, UNION) or a `CALL` of a procedure on the read-only
   allowlist; any write / file / extension / transaction keyword used as a keyword rejects it;
4. the statement starts with a reading clause and ends in RETURN.

Everything else is rejected and never reaches Kùzu (binding alone would read the file that a
`LOAD FROM` names).
"""

from __future__ import annotations

import re
from dataclasses import dataclass

READ_CLAUSES = {"MATCH", "OPTIONAL", "WHERE", "WITH", "UNWIND", "RETURN", "ORDER", "SKIP", "LIMIT", "UNION", "CALL"}
FIRST_CLAUSES = {"MATCH", "OPTIONAL", "UNWIND", "WITH", "RETURN", "CALL"}
FORBIDDEN = {  # keywords that write, touch files or the network, or change the session
    "CREATE", "MERGE", "SET", "DELETE", "DETACH", "REMOVE", "DROP", "ALTER", "COPY", "LOAD",
    "INSTALL", "UNINSTALL", "ATTACH", "USE", "EXPORT", "IMPORT", "BEGIN", "COMMIT", "ROLLBACK",
    "CHECKPOINT", "FOREACH", "EXPLAIN", "PROFILE", "TRANSACTION", "TRUNCATE", "RENAME",
}  # fmt: skip
READ_ONLY_PROCEDURES = {"show_tables", "table_info", "show_connection", "db_version", "current_setting"}

_TOKEN = re.compile(
    r"""
    (?P<ws>\s+)
  | (?P<line_comment>//[^\n]*)
  | (?P<block_comment>/\*.*?\*/)
  | (?P<string>'(?:[^'\\]|\\.)*'|"(?:[^"\\]|\\.)*")
  | (?P<quoted>`(?:[^`]|``)*`)
  | (?P<param>\$[A-Za-z_][A-Za-z0-9_]*|\$[0-9]+)
  | (?P<number>\d+\.\d*(?:[eE][+-]?\d+)?|\.\d+(?:[eE][+-]?\d+)?|\d+(?:[eE][+-]?\d+)?)
  | (?P<word>[^\W\d]\w*)
  | (?P<op><>|<=|>=|=~|->|<-|\.\.|::|\+=|[-+*/%^=<>(){}\[\]:;,.|])
    """,
    re.VERBOSE | re.DOTALL,
)


@dataclass(frozen=True)
class Token:
    kind: str  # word | string | quoted | param | number | op
    text: str
    pos: int

    @property
    def upper(self) -> str:
        return self.text.upper()


@dataclass(frozen=True)
class Verdict:
    ok: bool
    reason: str = ""  # why it was rejected ("" when ok); "syntax: ..." when it is not a Cypher query at all
    statement: str = ""  # the single statement that may run (without the trailing ';')


class LexError(ValueError):
    pass


def tokenize(query: str) -> list[Token]:
    """Split Cypher text into tokens; comments and whitespace are dropped."""
    tokens, pos = [], 0
    while pos < len(query):
        m = _TOKEN.match(query, pos)
        if not m:
            raise LexError(f"cannot read the query at character {pos}: {query[pos : pos + 20]!r}")
        kind = m.lastgroup
        if kind not in ("ws", "line_comment", "block_comment"):
            tokens.append(Token(kind, m.group(), pos))
        pos = m.end()
    return tokens


def split_statements(tokens: list[Token]) -> list[list[Token]]:
    """Statements separated by ';' (a ';' inside a string is part of the string token)."""
    statements, current = [], []
    for tok in tokens:
        if tok.kind == "op" and tok.text == ";":
            statements.append(current)
            current = []
        else:
            current.append(tok)
    statements.append(current)
    return [s for s in statements if s]


def _is_keyword(tokens: list[Token], i: int) -> bool:
    """A bare word that is not a property key (`n.set`), label (`:Copy`) or map key (`{set: 1}`)."""
    tok = tokens[i]
    if tok.kind != "word":
        return False
    prev = tokens[i - 1] if i > 0 else None
    nxt = tokens[i + 1] if i + 1 < len(tokens) else None
    if prev is not None and prev.kind == "op" and prev.text in (".", ":", "::"):
        return False
    if nxt is not None and nxt.kind == "op" and nxt.text == ":" and prev is not None and prev.text in ("{", ","):
        return False
    return True


def clauses(tokens: list[Token]) -> list[tuple[int, str]]:
    """(depth, keyword) for each clause keyword; depth counts (), [] and {} nesting."""
    out, depth = [], 0
    for i, tok in enumerate(tokens):
        if tok.kind == "op" and tok.text in "([{":
            depth += 1
        elif tok.kind == "op" and tok.text in ")]}":
            depth -= 1
            if depth < 0:
                raise LexError(f"unbalanced {tok.text!r} at character {tok.pos}")
        elif _is_keyword(tokens, i) and (tok.upper in READ_CLAUSES or tok.upper in FORBIDDEN):
            out.append((depth, tok.upper))
    if depth != 0:
        raise LexError("unbalanced brackets")
    return out


def _check_calls(tokens: list[Token]) -> str:
    for i, tok in enumerate(tokens):
        if _is_keyword(tokens, i) and tok.upper == "CALL":
            name = tokens[i + 1] if i + 1 < len(tokens) else None
            paren = tokens[i + 2] if i + 2 < len(tokens) else None
            if name is None or name.kind != "word" or paren is None or paren.text != "(":
                return "CALL must name a read-only procedure, e.g. CALL show_tables() RETURN *"
            if name.text.lower() not in READ_ONLY_PROCEDURES:
                allowed = ", ".join(sorted(READ_ONLY_PROCEDURES))
                return f"procedure {name.text!r} is not on the read-only allowlist ({allowed})"
    return ""


def check_read_only(query: str) -> Verdict:
    """Decide whether `query` may run: one read-only statement, see the module docstring."""
    try:
        tokens = tokenize(query)
        statements = split_statements(tokens)
        if not statements:
            return Verdict(False, "syntax: empty query")
        if len(statements) > 1:
            return Verdict(False, f"{len(statements)} statements; only one is allowed")
        stmt = statements[0]
        found = clauses(stmt)
    except LexError as e:
        return Verdict(False, f"syntax: {e}")
    bad = sorted({kw for _, kw in found if kw in FORBIDDEN})
    if bad:
        return Verdict(False, f"not read-only: {', '.join(bad)}")
    reason = _check_calls(stmt)
    if reason:
        return Verdict(False, reason)
    top = [kw for depth, kw in found if depth == 0]
    if not top or top[0] not in FIRST_CLAUSES:
        return Verdict(False, "syntax: a query must start with MATCH, OPTIONAL MATCH, UNWIND, WITH, RETURN or CALL")
    if "RETURN" not in top:
        return Verdict(False, "syntax: a read query must end in RETURN")
    last = stmt[-1].pos + len(stmt[-1].text)
    return Verdict(True, "", query[stmt[0].pos : last])
