"""Read-only check for generated Cypher, done on the lexed statement (not a keyword grep).

LadybugDB's read-only mode blocks changes to the graph, but `LOAD FROM` still reads any file,
`COPY ... TO` / `EXPORT DATABASE` still write files, `INSTALL` reaches the network, and
`ATTACH` opens other databases. So a query is executed only when:

1. it lexes cleanly under the engine's own lexical rules (see below), so a keyword inside a string
   literal, a comment or a property name such as `n.set` is not a clause;
2. it is exactly one statement (at most one trailing `;`);
3. every clause at every nesting depth is a read clause (MATCH, OPTIONAL MATCH, WHERE, WITH,
   UNWIND, RETURN, ORDER BY, SKIP, LIMIT, UNION) or a `CALL` of a procedure on the read-only
   allowlist; any write / file / extension / transaction keyword used as a keyword rejects it;
4. the statement starts with a reading clause and ends in RETURN.

Execute exactly what was checked: `Verdict.statement` is not a slice of the input but the query
re-rendered from the checker's own tokens (comments dropped, every run of whitespace or comments
one space, strings re-quoted in one canonical form). Only that text is sent to LadybugDB, so a
comment or string that LadybugDB would read differently from this lexer cannot hide a clause.

The lexer is a single linear pass that follows LadybugDB's ANTLR grammar (`src/antlr4/Cypher.g4`,
Kùzu's with more string escapes):

- `/* ... */`: inside, a `*` followed by any character but `/` consumes both, so `**/` does not
  end the comment; an unterminated `/*` is rejected.
- `// ...` ends at LF, CR LF or the end of the text; a lone CR followed by more text is rejected.
- strings in `'` or `"`; a backslash must start one of LadybugDB's escapes (`\\\\ \\' \\" \\b \\f \\n \\r
  \\t` in either case, `\\u` + 4 hex digits, `\\U` + 8, `\\x` or `\\X` + 2); their values changed
  between Kùzu and LadybugDB (`'\\n'` was `n`, is a line feed; `\\x41` keeps its backslash), so
  escapes are kept verbatim in the canonical form and the engine decides what they mean.
- backtick names: one or more `` `...` `` segments, none of them empty.
- names are ASCII `[A-Za-z_][A-Za-z0-9_]*`, numbers ASCII; anything else outside strings and
  backtick names (other Unicode letters, spaces or dashes, unknown characters) is rejected.

Everything the lexer cannot classify with certainty is rejected and never reaches LadybugDB
(binding alone would read the file that a `LOAD FROM` names). See docs/security.md.
"""

from __future__ import annotations

from dataclasses import dataclass

MAX_QUERY_CHARS = 20_000  # longer input is rejected before it is lexed

READ_CLAUSES = {"MATCH", "OPTIONAL", "WHERE", "WITH", "UNWIND", "RETURN", "ORDER", "SKIP", "LIMIT", "UNION", "CALL"}
FIRST_CLAUSES = {"MATCH", "OPTIONAL", "UNWIND", "WITH", "RETURN", "CALL"}
FORBIDDEN = {  # keywords that write, touch files or the network, or change the session
    "CREATE", "MERGE", "SET", "DELETE", "DETACH", "REMOVE", "DROP", "ALTER", "COPY", "LOAD",
    "INSTALL", "UNINSTALL", "ATTACH", "USE", "EXPORT", "IMPORT", "BEGIN", "COMMIT", "ROLLBACK",
    "CHECKPOINT", "FOREACH", "EXPLAIN", "PROFILE", "TRANSACTION", "TRUNCATE", "RENAME",
}  # fmt: skip
# procedures that reveal only the graph's own schema or LadybugDB's version, nothing of the host
# (current_setting is not here: it returns e.g. the home folder)
READ_ONLY_PROCEDURES = {"show_tables", "table_info", "show_connection", "db_version"}

WHITESPACE = " \t\n\r\f\v"
OPERATORS_2 = {"<>", "<=", ">=", "=~", "<<", ">>", "..", "!="}  # LadybugDB's two-character tokens
OPERATORS_1 = set("()[]{}<>=+-*/%^&|!:;,.")
_LETTERS = frozenset("ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz_")
_DIGITS = frozenset("0123456789")
_NAME_CHARS = _LETTERS | _DIGITS
_NOT_AFTER_NUMBER = _NAME_CHARS | {"$"}  # LadybugDB would read these as part of a name or a longer token
_HEX = frozenset("0123456789abcdefABCDEF")
_SIMPLE_ESCAPES = frozenset("\\'\"bBfFnNrRtT")
_HEX_ESCAPES = {"u": 4, "U": 8, "x": 2, "X": 2}  # escape letter -> hex digits that must follow


@dataclass(frozen=True)
class Token:
    kind: str  # word | string | quoted | param | number | op
    text: str  # as written in the query
    pos: int
    space: bool = False  # whitespace or a comment came before it
    canonical: str = ""  # strings only: the text in the one canonical form

    @property
    def upper(self) -> str:
        return self.text.upper()

    @property
    def rendered(self) -> str:
        return self.canonical or self.text


@dataclass(frozen=True)
class Verdict:
    ok: bool
    reason: str = ""  # why it was rejected ("" when ok); "syntax: ..." when it is not a Cypher query at all
    statement: str = ""  # the statement to run, re-rendered from the tokens (no comments, no trailing ';')


class LexError(ValueError):
    pass


def _block_comment_end(q: str, i: int) -> int:
    """End of the `/* ... */` at i: a `*` and the character after it (if not `/`) go together."""
    j = i + 2
    while True:
        star = q.find("*", j)
        if star < 0 or star + 1 >= len(q):
            raise LexError(f"unterminated /* comment at character {i}")
        if q[star + 1] == "/":
            return star + 2
        j = star + 2


def _line_comment_end(q: str, i: int) -> int:
    """End of the `// ...` at i: after LF, CR LF, or the end of the text."""
    lf = q.find("\n", i + 2)
    stop = lf if lf >= 0 else len(q)
    cr = q.find("\r", i + 2, stop)
    if cr < 0:
        return stop + 1 if lf >= 0 else stop
    if cr + 1 == len(q) or q[cr + 1] == "\n":
        return cr + 2
    raise LexError(f"a // comment at character {i} ends in a lone carriage return")


def _string_end(q: str, i: int) -> tuple[int, str]:
    """(end, canonical text) of the string literal at i; escapes are kept verbatim."""
    quote, body, j = q[i], [], i + 1
    while j < len(q):
        c = q[j]
        if c == quote:
            return j + 1, "'" + "".join(body) + "'"
        if c == "\\":
            esc, j = _escape(q, j)
            body.append('"' if esc == '\\"' else esc)
            continue
        if c == "\0" or "\ud800" <= c <= "\udfff":
            raise LexError(f"a NUL or surrogate character in the string at character {i}")
        body.append("\\'" if c == "'" else c)
        j += 1
    raise LexError(f"unterminated string at character {i}")


def _escape(q: str, j: int) -> tuple[str, int]:
    """(escape text, end) for the backslash at j, as LadybugDB's EscapedChar rule allows."""
    e = q[j + 1 : j + 2]
    if e in _SIMPLE_ESCAPES:
        return q[j : j + 2], j + 2
    digits = _HEX_ESCAPES.get(e, 0)
    if digits and len(q) >= j + 2 + digits and all(h in _HEX for h in q[j + 2 : j + 2 + digits]):
        return q[j : j + 2 + digits], j + 2 + digits
    raise LexError(f"escape {q[j : j + 2]!r} at character {j} is not a LadybugDB escape")


def _quoted_end(q: str, i: int) -> int:
    """End of the backtick name at i: one or more non-empty `...` segments."""
    j = i
    while j < len(q) and q[j] == "`":
        close = q.find("`", j + 1)
        if close < 0:
            raise LexError(f"unterminated backtick name at character {i}")
        if close == j + 1 or "\0" in q[j:close]:
            raise LexError(f"an empty backtick name or a NUL at character {j}")
        j = close + 1
    return j


def _name_end(q: str, i: int) -> int:
    """End of the ASCII name at i; a `$` right after a name would be part of it for LadybugDB."""
    j = i + 1
    while j < len(q) and q[j] in _NAME_CHARS:
        j += 1
    if q[j : j + 1] == "$":
        raise LexError(f"'$' right after the name at character {i}")
    return j


def _digits_end(q: str, j: int) -> int:
    while j < len(q) and q[j] in _DIGITS:
        j += 1
    return j


def _integer_end(q: str, i: int) -> int:
    """End of the DecimalInteger at i (`$1` parameters)."""
    j = _digits_end(q, i)
    if (q[i] == "0" and j > i + 1) or q[j : j + 1] in _NOT_AFTER_NUMBER | {"."}:
        raise LexError(f"a parameter number must be a plain integer at character {i}")
    return j


def _number_end(q: str, i: int) -> int:
    """End of the number at i: DecimalInteger, RegularDecimalReal or ExponentDecimalReal."""
    j = _digits_end(q, i)
    is_real = False
    if q[j : j + 1] == "." and q[j + 1 : j + 2] in _DIGITS:
        j, is_real = _digits_end(q, j + 1), True
    if q[j : j + 1] in ("e", "E"):
        k = j + 2 if q[j + 1 : j + 2] == "-" else j + 1
        if q[k : k + 1] in _DIGITS:
            j, is_real = _digits_end(q, k), True
    if not is_real and q[i] == "0" and j > i + 1:
        raise LexError(f"a number with a leading zero at character {i}")
    if q[j : j + 1] in _NOT_AFTER_NUMBER:
        raise LexError(f"a name or number runs into the number at character {i}")
    return j


def _token_end(q: str, i: int) -> tuple[str, int, str]:
    """(kind, end, canonical) of the token that starts at i, which is not whitespace or a comment."""
    c = q[i]
    if c in "'\"":
        end, canonical = _string_end(q, i)
        return "string", end, canonical
    if c == "`":
        return "quoted", _quoted_end(q, i), ""
    if c in _LETTERS:
        return "word", _name_end(q, i), ""
    if c in _DIGITS or (c == "." and q[i + 1 : i + 2] in _DIGITS):
        return "number", _number_end(q, i), ""
    if c == "$" and q[i + 1 : i + 2] in _NAME_CHARS:
        end = _name_end(q, i + 1) if q[i + 1] in _LETTERS else _integer_end(q, i + 1)
        return "param", end, ""
    if q[i : i + 2] in OPERATORS_2:
        return "op", i + 2, ""
    if c in OPERATORS_1:
        return "op", i + 1, ""
    raise LexError(f"cannot read the query at character {i}: {q[i : i + 20]!r}")


def tokenize(query: str) -> list[Token]:
    """Split Cypher text into tokens in one linear pass; comments and whitespace are dropped and
    recorded as `Token.space` on the token after them. Raises LexError at the first problem."""
    tokens, pos, space = [], 0, False
    while pos < len(query):
        c = query[pos]
        if c in WHITESPACE:
            pos, space = pos + 1, True
        elif query.startswith("/*", pos):
            pos, space = _block_comment_end(query, pos), True
        elif query.startswith("//", pos):
            pos, space = _line_comment_end(query, pos), True
        else:
            kind, end, canonical = _token_end(query, pos)
            tokens.append(Token(kind, query[pos:end], pos, space, canonical))
            pos, space = end, False
    return tokens


def render(tokens: list[Token]) -> str:
    """The tokens as one line: one space where the query had whitespace or a comment, none where
    the tokens touched (LadybugDB allows no space in e.g. `list[1]` or before `,` in ORDER BY)."""
    return "".join((" " if tok.space and i else "") + tok.rendered for i, tok in enumerate(tokens))


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
    if prev is not None and prev.kind == "op" and prev.text in (".", ":"):
        return False
    if nxt is not None and nxt.kind == "op" and nxt.text == ":" and prev is not None and prev.text in ("{", ","):
        return False
    return True


def clauses(tokens: list[Token]) -> list[tuple[int, str]]:
    """(depth, keyword) for each clause keyword; depth counts (), [] and {} nesting."""
    out, depth = [], 0
    for i, tok in enumerate(tokens):
        if tok.kind == "op" and tok.text in ("(", "[", "{"):
            depth += 1
        elif tok.kind == "op" and tok.text in (")", "]", "}"):
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


def _check_statement(stmt: list[Token]) -> str:
    """Why the single statement may not run, or "" when it is a read-only query."""
    found = clauses(stmt)
    bad = sorted({kw for _, kw in found if kw in FORBIDDEN})
    if bad:
        return f"not read-only: {', '.join(bad)}"
    reason = _check_calls(stmt)
    if reason:
        return reason
    top = [kw for depth, kw in found if depth == 0]
    if not top or top[0] not in FIRST_CLAUSES or stmt[0].upper not in FIRST_CLAUSES:
        return "syntax: a query must start with MATCH, OPTIONAL MATCH, UNWIND, WITH, RETURN or CALL"
    if "RETURN" not in top:
        return "syntax: a read query must end in RETURN"
    return ""


def check_read_only(query: str) -> Verdict:
    """Decide whether `query` may run (see the module docstring); when it may, `statement` is the
    canonical re-rendering that is to be executed instead of `query`."""
    if len(query) > MAX_QUERY_CHARS:
        return Verdict(False, f"syntax: the query is longer than {MAX_QUERY_CHARS} characters")
    try:
        tokens = tokenize(query)
        statements = split_statements(tokens)
        if not statements:
            return Verdict(False, "syntax: empty query")
        if len(statements) > 1:
            return Verdict(False, f"{len(statements)} statements; only one is allowed")
        if len(statements[0]) < len(tokens) - (tokens[-1].text == ";"):  # LadybugDB refuses `; RETURN 1` and `;;`
            return Verdict(False, "syntax: ';' may only end the statement")
        reason = _check_statement(statements[0])
    except LexError as e:
        return Verdict(False, f"syntax: {e}")
    if reason:
        return Verdict(False, reason)
    return Verdict(True, "", render(statements[0]))
