"""The ``filter`` expression language of Identity Cloud's ``entity.find`` (the subset the simulator needs).

Grammar, lowest precedence first (as Identity Cloud documents it)::

    expr       := and_expr ("or" and_expr)*
    and_expr   := not_expr ("and" not_expr)*
    not_expr   := ("not" | "!") not_expr | primary
    primary    := "(" expr ")" | path ("is" ["not"] "null" | op literal)
    op         := "=" | "!=" | ">" | ">=" | "<" | "<="
    literal    := 'single-quoted string' ('' escapes a quote) | integer | true | false | null

``path`` is a dotted attribute path (``primaryAddress.city``). Timestamps compare as instants when both
sides parse as dates (Identity Cloud's ``2024-01-02 03:04:05.678901 +0000`` or ISO 8601).
"""
from __future__ import annotations

import re
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

Predicate = Callable[[dict], bool]


class FilterError(ValueError):
    """The filter is not valid; the message says why (shown as ``error_description``)."""


_TOKEN = re.compile(r"""
    \s*(?:
      (?P<string>'(?:[^']|'')*')
    | (?P<number>-?\d+(?:\.\d+)?)
    | (?P<op>!=|>=|<=|=|>|<|!|\(|\))
    | (?P<word>[A-Za-z_][A-Za-z0-9_.]*)
    )""", re.VERBOSE)

_KEYWORDS = {"and", "or", "not", "is", "null", "true", "false"}


@dataclass(frozen=True)
class _Tok:
    kind: str
    text: str


def _tokenize(text: str) -> list[_Tok]:
    tokens: list[_Tok] = []
    pos = 0
    text = text.rstrip()
    while pos < len(text):
        match = _TOKEN.match(text, pos)
        if not match or match.end() == pos:
            raise FilterError(f"unexpected character at position {pos}")
        kind = match.lastgroup or ""
        value = match.group(kind)
        if kind == "word" and value.lower() in _KEYWORDS:
            kind, value = "kw", value.lower()
        tokens.append(_Tok(kind, value))
        pos = match.end()
    return tokens


def parse_timestamp(value: Any) -> datetime | None:
    """A timestamp in Identity Cloud's format or ISO 8601, as an aware datetime; None if it is not one."""
    if not isinstance(value, str) or len(value) < 10 or not value[:4].isdigit():
        return None
    for fmt in ("%Y-%m-%d %H:%M:%S.%f %z", "%Y-%m-%d %H:%M:%S %z"):
        try:
            return datetime.strptime(value, fmt)
        except ValueError:
            pass
    try:
        parsed = datetime.fromisoformat(value)
    except ValueError:
        return None
    return parsed if parsed.tzinfo else parsed.replace(tzinfo=UTC)


def attribute_value(entity: dict, path: str) -> Any:
    value: Any = entity
    for part in path.split("."):
        if not isinstance(value, dict):
            return None
        value = value.get(part)
    return value


_COMPARE = {
    "=": lambda a, b: a == b,
    "!=": lambda a, b: a != b,
    ">": lambda a, b: a > b,
    ">=": lambda a, b: a >= b,
    "<": lambda a, b: a < b,
    "<=": lambda a, b: a <= b,
}


def _coerce(left: Any, right: Any) -> tuple[Any, Any] | None:
    """Bring both sides to one comparable type, or None when they cannot be compared."""
    if isinstance(left, bool) or isinstance(right, bool):
        return (left, right) if isinstance(left, bool) and isinstance(right, bool) else None
    if isinstance(left, (int, float)):
        if isinstance(right, str):  # integers may be quoted
            try:
                right = float(right)
            except ValueError:
                return None
        return (left, right) if isinstance(right, (int, float)) else None
    if isinstance(left, str) and isinstance(right, str):
        lt, rt = parse_timestamp(left), parse_timestamp(right)
        if lt is not None and rt is not None:
            return lt, rt
        return left, right
    return None


class _Parser:
    def __init__(self, tokens: list[_Tok]) -> None:
        self.tokens = tokens
        self.i = 0

    def peek(self) -> _Tok | None:
        return self.tokens[self.i] if self.i < len(self.tokens) else None

    def take(self) -> _Tok:
        tok = self.peek()
        if tok is None:
            raise FilterError("unexpected end of filter")
        self.i += 1
        return tok

    def accept(self, kind: str, text: str) -> bool:
        tok = self.peek()
        if tok is not None and tok.kind == kind and tok.text == text:
            self.i += 1
            return True
        return False

    def expr(self) -> Predicate:
        parts = [self.and_expr()]
        while self.accept("kw", "or"):
            parts.append(self.and_expr())
        return parts[0] if len(parts) == 1 else (lambda e, ps=tuple(parts): any(p(e) for p in ps))

    def and_expr(self) -> Predicate:
        parts = [self.not_expr()]
        while self.accept("kw", "and"):
            parts.append(self.not_expr())
        return parts[0] if len(parts) == 1 else (lambda e, ps=tuple(parts): all(p(e) for p in ps))

    def not_expr(self) -> Predicate:
        if self.accept("kw", "not") or self.accept("op", "!"):
            inner = self.not_expr()
            return lambda e: not inner(e)
        return self.primary()

    def primary(self) -> Predicate:
        if self.accept("op", "("):
            inner = self.expr()
            if not self.accept("op", ")"):
                raise FilterError("missing closing parenthesis")
            return inner
        tok = self.take()
        if tok.kind != "word":
            raise FilterError(f"expected an attribute name, found {tok.text!r}")
        path = tok.text
        if self.accept("kw", "is"):
            negate = self.accept("kw", "not")
            if not self.accept("kw", "null"):
                raise FilterError("expected null after is")
            return (lambda e: attribute_value(e, path) is not None) if negate \
                else (lambda e: attribute_value(e, path) is None)
        op = self.take()
        if op.kind != "op" or op.text not in _COMPARE:
            raise FilterError(f"expected a comparison operator after {path}")
        literal = self.literal()
        compare = _COMPARE[op.text]

        def predicate(entity: dict) -> bool:
            value = attribute_value(entity, path)
            if value is None or literal is None:
                return compare(value, literal) if op.text in ("=", "!=") else False
            pair = _coerce(value, literal)
            if pair is None:
                return op.text == "!="
            return bool(compare(*pair))

        return predicate

    def literal(self) -> Any:
        tok = self.take()
        if tok.kind == "string":
            return tok.text[1:-1].replace("''", "'")
        if tok.kind == "number":
            return float(tok.text) if "." in tok.text else int(tok.text)
        if tok.kind == "kw" and tok.text in ("true", "false"):
            return tok.text == "true"
        if tok.kind == "kw" and tok.text == "null":
            return None
        raise FilterError(f"expected a value, found {tok.text!r}")


def compile_filter(text: str | None) -> Predicate:
    """A predicate over entities for ``text``; an empty filter matches everything."""
    if text is None or not text.strip():
        return lambda entity: True
    parser = _Parser(_tokenize(text))
    predicate = parser.expr()
    if parser.peek() is not None:
        raise FilterError(f"unexpected {parser.peek().text!r} after a complete expression")
    return predicate


def lower_id_bound(text: str | None) -> int | None:
    """The N of a top-level ``id > N`` / ``id >= N`` conjunct, so keyset pages can start by bisection.

    Conservative: any ``or``/``not`` in the filter, or a malformed one, gives None (scan from the start).
    """
    if not text:
        return None
    try:
        tokens = _tokenize(text)
    except FilterError:
        return None
    if any(t.kind == "kw" and t.text in ("or", "not") or t.kind == "op" and t.text == "!" for t in tokens):
        return None
    depth, bound = 0, None
    for i, tok in enumerate(tokens):
        if tok.kind == "op" and tok.text in "()":
            depth += 1 if tok.text == "(" else -1
        elif depth == 0 and tok.kind == "word" and tok.text == "id" and i + 2 < len(tokens):
            op, value = tokens[i + 1], tokens[i + 2]
            if op.kind == "op" and op.text in (">", ">=") and value.kind in ("number", "string"):
                try:
                    n = int(value.text.strip("'"))
                except ValueError:
                    continue
                n = n if op.text == ">" else n - 1
                bound = n if bound is None else max(bound, n)
    return bound
