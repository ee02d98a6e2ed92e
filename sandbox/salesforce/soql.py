"""A small SOQL subset: tokenizer, recursive-descent parser and a compiler to Python predicates.

Grammar (keywords and field names are case-insensitive)::

    query      := SELECT (COUNT '(' ')' | field (',' field)*) FROM ident
                  [WHERE or_expr] [ORDER BY order (',' order)*] [LIMIT int] [OFFSET int]
    or_expr    := and_expr (OR and_expr)*
    and_expr   := not_expr (AND not_expr)*
    not_expr   := NOT not_expr | '(' or_expr ')' | condition
    condition  := field (op literal | [NOT] IN '(' literal (',' literal)* ')' | LIKE string)
    order      := field [ASC | DESC] [NULLS (FIRST | LAST)]

Errors are :class:`SoqlError` carrying the Salesforce ``errorCode`` (``MALFORMED_QUERY``, ``INVALID_FIELD``,
``INVALID_TYPE``) so the HTTP layer can answer in the native error shape.
"""
from __future__ import annotations

import re
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field
from datetime import UTC, date, datetime
from typing import Any

KEYWORDS = {
    "SELECT", "FROM", "WHERE", "AND", "OR", "NOT", "IN", "LIKE", "ORDER", "BY", "ASC", "DESC", "NULLS",
    "FIRST", "LAST", "LIMIT", "OFFSET", "COUNT", "TRUE", "FALSE", "NULL",
}
COMPARISON_OPS = {"=", "!=", "<>", "<", "<=", ">", ">="}
STRING_ESCAPES = {"n": "\n", "r": "\r", "t": "\t", "b": "\b", "f": "\f", '"': '"', "'": "'", "\\": "\\"}


class SoqlError(ValueError):
    def __init__(self, error_code: str, message: str):
        super().__init__(message)
        self.error_code = error_code
        self.message = message


def malformed(message: str) -> SoqlError:
    return SoqlError("MALFORMED_QUERY", message)


# --------------------------------------------------------------------------------------------- tokens

@dataclass(frozen=True)
class Token:
    kind: str  # IDENT KEYWORD STRING NUMBER DATE DATETIME OP LPAREN RPAREN COMMA EOF
    value: Any
    pos: int
    # for STRING: the pattern as (is_wildcard, text) pieces, so LIKE can tell `\%` from `%`
    like_pieces: tuple[tuple[bool, str], ...] = ()


def tokenize(text: str) -> list[Token]:
    tokens: list[Token] = []
    i, n = 0, len(text)
    while i < n:
        ch = text[i]
        if ch.isspace():
            i += 1
        elif ch.isalpha() or ch == "_":
            start = i
            while i < n and (text[i].isalnum() or text[i] in "_."):
                i += 1
            word = text[start:i]
            if word.upper() in KEYWORDS:
                tokens.append(Token("KEYWORD", word.upper(), start))
            else:
                tokens.append(Token("IDENT", word, start))
        elif ch == "'":
            token, i = _scan_string(text, i)
            tokens.append(token)
        elif ch.isdigit() or (ch in "+-" and i + 1 < n and text[i + 1].isdigit()):
            token, i = _scan_number_or_date(text, i)
            tokens.append(token)
        elif ch in "=<>!":
            two = text[i:i + 2]
            if two in COMPARISON_OPS:
                tokens.append(Token("OP", two, i))
                i += 2
            elif ch in "=<>":
                tokens.append(Token("OP", ch, i))
                i += 1
            else:
                raise malformed(f"unexpected character '!' at position {i}")
        elif ch == "(":
            tokens.append(Token("LPAREN", ch, i))
            i += 1
        elif ch == ")":
            tokens.append(Token("RPAREN", ch, i))
            i += 1
        elif ch == ",":
            tokens.append(Token("COMMA", ch, i))
            i += 1
        else:
            raise malformed(f"unexpected character {ch!r} at position {i}")
    tokens.append(Token("EOF", None, n))
    return tokens


def _scan_string(text: str, start: int) -> tuple[Token, int]:
    chars: list[str] = []
    pieces: list[tuple[bool, str]] = []
    i = start + 1
    while i < len(text):
        ch = text[i]
        if ch == "\\":
            if i + 1 >= len(text):
                break
            nxt = text[i + 1]
            if nxt in STRING_ESCAPES:
                chars.append(STRING_ESCAPES[nxt])
                pieces.append((False, STRING_ESCAPES[nxt]))
            elif nxt in "%_":  # escaped LIKE wildcard: a literal character
                chars.append(nxt)
                pieces.append((False, nxt))
            elif nxt == "u" and re.fullmatch(r"[0-9a-fA-F]{4}", text[i + 2:i + 6] or ""):
                decoded = chr(int(text[i + 2:i + 6], 16))
                chars.append(decoded)
                pieces.append((False, decoded))
                i += 4
            else:
                raise malformed(f"invalid escape sequence '\\{nxt}' in string at position {i}")
            i += 2
        elif ch == "'":
            return Token("STRING", "".join(chars), start, tuple(pieces)), i + 1
        else:
            chars.append(ch)
            pieces.append((ch in "%_", ch))
            i += 1
    raise malformed(f"unterminated string starting at position {start}")


def _scan_number_or_date(text: str, start: int) -> tuple[Token, int]:
    i = start + 1
    while i < len(text) and (text[i].isalnum() or text[i] in ".:+-"):
        i += 1
    raw = text[start:i]
    if len(raw) >= 10 and raw[4:5] == "-" and raw[7:8] == "-" and raw[0] not in "+-":
        return _date_token(raw, start), i
    try:
        number: int | float = int(raw) if raw.lstrip("+-").isdigit() else float(raw)
    except ValueError:
        raise malformed(f"invalid number {raw!r} at position {start}") from None
    return Token("NUMBER", number, start), i


def _date_token(raw: str, pos: int) -> Token:
    if len(raw) == 10:
        try:
            return Token("DATE", date.fromisoformat(raw), pos)
        except ValueError:
            raise malformed(f"invalid date literal {raw!r}") from None
    # SOQL datetimes need an explicit zone: Z or +hh:mm / -hh:mm
    if not (raw.endswith("Z") or raw[-6:-5] in ("+", "-")) or "T" not in raw:
        raise malformed(f"invalid datetime literal {raw!r}: expected e.g. 2024-01-01T00:00:00Z")
    try:
        value = datetime.fromisoformat(raw)
    except ValueError:
        raise malformed(f"invalid datetime literal {raw!r}") from None
    return Token("DATETIME", value.astimezone(UTC), pos)


# --------------------------------------------------------------------------------------------- AST

@dataclass(frozen=True)
class Literal:
    kind: str  # string number boolean null date datetime
    value: Any
    like_pieces: tuple[tuple[bool, str], ...] = ()


@dataclass(frozen=True)
class Comparison:
    field: str
    op: str
    value: Literal


@dataclass(frozen=True)
class InList:
    field: str
    values: tuple[Literal, ...]
    negated: bool


@dataclass(frozen=True)
class Like:
    field: str
    pattern: Literal


@dataclass(frozen=True)
class BoolOp:
    op: str  # AND | OR
    items: tuple[Any, ...]


@dataclass(frozen=True)
class Not:
    item: Any


@dataclass(frozen=True)
class OrderItem:
    field: str
    descending: bool = False
    nulls_last: bool = False


@dataclass
class Query:
    fields: list[str]
    count_only: bool
    sobject: str
    where: Any = None
    order_by: list[OrderItem] = field(default_factory=list)
    limit: int | None = None
    offset: int = 0


# --------------------------------------------------------------------------------------------- parser

class _Parser:
    def __init__(self, text: str):
        self.tokens = tokenize(text)
        self.i = 0

    @property
    def tok(self) -> Token:
        return self.tokens[self.i]

    def at_keyword(self, *words: str) -> bool:
        return self.tok.kind == "KEYWORD" and self.tok.value in words

    def take(self) -> Token:
        token = self.tok
        self.i += 1
        return token

    def expect_keyword(self, word: str) -> None:
        if not self.at_keyword(word):
            raise self.unexpected(f"expecting {word}")
        self.i += 1

    def expect(self, kind: str, what: str) -> Token:
        if self.tok.kind != kind:
            raise self.unexpected(f"expecting {what}")
        return self.take()

    def unexpected(self, expecting: str) -> SoqlError:
        if self.tok.kind == "EOF":
            found = "end of query"
        elif self.tok.kind == "STRING":
            found = "a string literal"  # literals may hold personal data: never echo them
        else:
            found = repr(str(self.tok.value))
        return malformed(f"unexpected token {found} at position {self.tok.pos}, {expecting}")

    def identifier(self, what: str) -> str:
        return self.expect("IDENT", what).value

    def parse(self) -> Query:
        self.expect_keyword("SELECT")
        fields: list[str] = []
        count_only = False
        if self.at_keyword("COUNT"):
            self.take()
            self.expect("LPAREN", "'('")
            self.expect("RPAREN", "')' (only COUNT() is supported)")
            count_only = True
        else:
            fields.append(self.identifier("a field name"))
            while self.tok.kind == "COMMA":
                self.take()
                fields.append(self.identifier("a field name"))
        self.expect_keyword("FROM")
        query = Query(fields=fields, count_only=count_only, sobject=self.identifier("an object name"))
        if self.at_keyword("WHERE"):
            self.take()
            query.where = self.or_expr()
        if self.at_keyword("ORDER"):
            self.take()
            self.expect_keyword("BY")
            query.order_by.append(self.order_item())
            while self.tok.kind == "COMMA":
                self.take()
                query.order_by.append(self.order_item())
        if self.at_keyword("LIMIT"):
            self.take()
            query.limit = self.non_negative_int("LIMIT")
        if self.at_keyword("OFFSET"):
            self.take()
            query.offset = self.non_negative_int("OFFSET")
        if self.tok.kind != "EOF":
            raise self.unexpected("expecting end of query")
        return query

    def non_negative_int(self, clause: str) -> int:
        token = self.expect("NUMBER", f"an integer after {clause}")
        if not isinstance(token.value, int) or token.value < 0:
            raise malformed(f"{clause} must be a non-negative integer")
        return token.value

    def order_item(self) -> OrderItem:
        name = self.identifier("a field name in ORDER BY")
        descending = False
        if self.at_keyword("ASC", "DESC"):
            descending = self.take().value == "DESC"
        nulls_last = descending  # Salesforce default: ASC puts nulls first, DESC puts them last
        if self.at_keyword("NULLS"):
            self.take()
            if not self.at_keyword("FIRST", "LAST"):
                raise self.unexpected("expecting FIRST or LAST")
            nulls_last = self.take().value == "LAST"
        return OrderItem(name, descending, nulls_last)

    def or_expr(self) -> Any:
        items = [self.and_expr()]
        while self.at_keyword("OR"):
            self.take()
            items.append(self.and_expr())
        return items[0] if len(items) == 1 else BoolOp("OR", tuple(items))

    def and_expr(self) -> Any:
        items = [self.not_expr()]
        while self.at_keyword("AND"):
            self.take()
            items.append(self.not_expr())
        return items[0] if len(items) == 1 else BoolOp("AND", tuple(items))

    def not_expr(self) -> Any:
        if self.at_keyword("NOT"):
            self.take()
            return Not(self.not_expr())
        if self.tok.kind == "LPAREN":
            self.take()
            inner = self.or_expr()
            self.expect("RPAREN", "')'")
            return inner
        return self.condition()

    def condition(self) -> Any:
        name = self.identifier("a field name in WHERE")
        if self.tok.kind == "OP":
            op = self.take().value
            return Comparison(name, "!=" if op == "<>" else op, self.literal())
        negated = False
        if self.at_keyword("NOT"):
            self.take()
            negated = True
            if not self.at_keyword("IN"):
                raise self.unexpected("expecting IN after NOT")
        if self.at_keyword("IN"):
            self.take()
            self.expect("LPAREN", "'(' after IN")
            values = [self.literal()]
            while self.tok.kind == "COMMA":
                self.take()
                values.append(self.literal())
            self.expect("RPAREN", "')' closing the IN list")
            return InList(name, tuple(values), negated)
        if self.at_keyword("LIKE"):
            self.take()
            token = self.expect("STRING", "a quoted pattern after LIKE")
            return Like(name, Literal("string", token.value, token.like_pieces))
        raise self.unexpected("expecting an operator")

    def literal(self) -> Literal:
        token = self.tok
        if token.kind == "STRING":
            self.take()
            return Literal("string", token.value, token.like_pieces)
        if token.kind == "NUMBER":
            self.take()
            return Literal("number", token.value)
        if token.kind == "DATE":
            self.take()
            return Literal("date", token.value)
        if token.kind == "DATETIME":
            self.take()
            return Literal("datetime", token.value)
        if self.at_keyword("TRUE", "FALSE"):
            self.take()
            return Literal("boolean", token.value == "TRUE")
        if self.at_keyword("NULL"):
            self.take()
            return Literal("null", None)
        raise self.unexpected("expecting a value")


def parse(text: str) -> Query:
    """Parse a SOQL statement into a :class:`Query`; raises :class:`SoqlError` (MALFORMED_QUERY) on bad syntax."""
    if not text or not text.strip():
        raise malformed("empty query")
    return _Parser(text).parse()


# --------------------------------------------------------------------------------------------- compiler

STRING_TYPES = {"id", "reference", "string", "email", "phone", "textarea", "picklist", "url"}
NUMBER_TYPES = {"double", "int", "currency", "percent"}


def format_datetime(value: datetime) -> str:
    """The one storage/wire format for datetimes: ``2024-01-01T00:00:00.000+0000`` (UTC, milliseconds)."""
    value = value.astimezone(UTC)
    return value.strftime("%Y-%m-%dT%H:%M:%S.") + f"{value.microsecond // 1000:03d}+0000"


@dataclass(frozen=True)
class FieldSpec:
    name: str  # canonical API name
    type: str


@dataclass
class CompiledQuery:
    sobject: str
    fields: list[str]  # canonical names, in SELECT order
    count_only: bool
    predicate: Callable[[Mapping[str, Any]], bool] | None
    order_by: list[tuple[str, str, bool, bool]]  # (canonical name, type, descending, nulls_last)
    limit: int | None
    offset: int

    def select_ids(self, records: Iterable[Mapping[str, Any]], include: Callable[[Mapping], bool]) -> list[str]:
        """Filter, order and slice ``records`` once; the resulting ids are the query's cursor."""
        predicate = self.predicate
        if predicate is None:
            rows = [r for r in records if include(r)]
        else:
            rows = [r for r in records if include(r) and predicate(r)]
        # stable sorts from the last key to the first give a multi-key order with mixed directions
        for name, type_, descending, nulls_last in reversed(self.order_by):
            key = _sort_key(type_)
            present = [r for r in rows if r.get(name) is not None]
            missing = [r for r in rows if r.get(name) is None]
            present.sort(key=lambda r, n=name: key(r[n]), reverse=descending)
            rows = present + missing if nulls_last else missing + present
        ids = [r["Id"] for r in rows]
        end = None if self.limit is None else self.offset + self.limit
        return ids[self.offset:end] if (self.offset or end is not None) else ids


def _sort_key(type_: str) -> Callable[[Any], Any]:
    if type_ in STRING_TYPES:
        return str.casefold
    return lambda v: v


def compile_query(query: Query, sobject: str, schema: Mapping[str, FieldSpec]) -> CompiledQuery:
    """Resolve field names against ``schema`` (keyed by lower-case name) and build the row predicate."""
    if query.sobject.lower() != sobject.lower():
        raise SoqlError("INVALID_TYPE", f"sObject type '{query.sobject}' is not supported.")

    def resolve(name: str) -> FieldSpec:
        spec = schema.get(name.lower())
        if spec is None:
            raise SoqlError("INVALID_FIELD", f"No such column '{name}' on entity '{sobject}'.")
        return spec

    fields: list[str] = []
    for name in query.fields:
        canonical = resolve(name).name
        if canonical in fields:
            raise malformed(f"duplicate field selected: {canonical}")
        fields.append(canonical)
    order_by = []
    for item in query.order_by:
        spec = resolve(item.field)
        order_by.append((spec.name, spec.type, item.descending, item.nulls_last))
    predicate = _compile_node(query.where, resolve) if query.where is not None else None
    return CompiledQuery(sobject, fields, query.count_only, predicate, order_by, query.limit, query.offset)


def _compile_node(node: Any, resolve: Callable[[str], FieldSpec]) -> Callable[[Mapping[str, Any]], bool]:
    if isinstance(node, BoolOp):
        parts = [_compile_node(item, resolve) for item in node.items]
        if node.op == "AND":
            return lambda r: all(p(r) for p in parts)
        return lambda r: any(p(r) for p in parts)
    if isinstance(node, Not):
        inner = _compile_node(node.item, resolve)
        return lambda r: not inner(r)
    if isinstance(node, Comparison):
        return _compile_comparison(resolve(node.field), node.op, node.value)
    if isinstance(node, InList):
        spec = resolve(node.field)
        values = {_coerce(spec, lit, "IN") for lit in node.values}
        name = spec.name
        fold = spec.type in STRING_TYPES
        if node.negated:
            return lambda r: (v := r.get(name)) is not None and (v.casefold() if fold else v) not in values
        return lambda r: (v := r.get(name)) is not None and (v.casefold() if fold else v) in values
    if isinstance(node, Like):
        spec = resolve(node.field)
        if spec.type not in STRING_TYPES:
            raise malformed(f"invalid operator on field {spec.name}: LIKE works on text fields only")
        regex = re.compile(
            "".join(
                (".*" if text == "%" else ".") if wild else re.escape(text) for wild, text in node.pattern.like_pieces
            ),
            re.IGNORECASE | re.DOTALL,
        )
        name = spec.name
        return lambda r: (v := r.get(name)) is not None and regex.fullmatch(v) is not None
    raise malformed(f"unsupported condition {node!r}")


def _compile_comparison(spec: FieldSpec, op: str, literal: Literal) -> Callable[[Mapping[str, Any]], bool]:
    name = spec.name
    if literal.kind == "null":
        if op == "=":
            return lambda r: r.get(name) is None
        if op == "!=":
            return lambda r: r.get(name) is not None
        raise malformed(f"null can only be compared with = or != (field {name})")
    value = _coerce(spec, literal, op)
    fold = spec.type in STRING_TYPES
    compare = {
        "=": lambda a, b: a == b,
        "!=": lambda a, b: a != b,
        "<": lambda a, b: a < b,
        "<=": lambda a, b: a <= b,
        ">": lambda a, b: a > b,
        ">=": lambda a, b: a >= b,
    }[op]
    if op == "!=":  # a null field differs from every non-null value
        if fold:
            return lambda r: (v := r.get(name)) is None or v.casefold() != value
        return lambda r: (v := r.get(name)) is None or v != value
    if fold:
        return lambda r: (v := r.get(name)) is not None and compare(v.casefold(), value)
    return lambda r: (v := r.get(name)) is not None and compare(v, value)


def _coerce(spec: FieldSpec, literal: Literal, op: str) -> Any:
    """Turn a literal into the stored representation of the field's type (strings casefolded)."""
    kind, type_ = literal.kind, spec.type
    if type_ in STRING_TYPES and kind == "string":
        return literal.value.casefold()
    if type_ == "boolean" and kind == "boolean":
        if op not in ("=", "!=", "IN"):
            raise malformed(f"invalid operator {op} on boolean field {spec.name}")
        return literal.value
    if type_ in NUMBER_TYPES and kind == "number":
        return literal.value
    if type_ == "datetime" and kind == "datetime":
        return format_datetime(literal.value)  # stored datetimes share this fixed-width UTC format
    if type_ == "date" and kind == "date":
        return literal.value.isoformat()
    if kind == "null":
        raise malformed(f"null is not allowed in an IN list (field {spec.name})")
    expected = {"datetime": "dateTime", "date": "date", "boolean": "boolean"}.get(
        type_, "number" if type_ in NUMBER_TYPES else "string and should be enclosed in quotes"
    )
    raise malformed(f"value of filter criterion for field '{spec.name}' must be of type {expected}")
