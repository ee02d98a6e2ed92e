"""SCIM filter expressions (RFC 7644 §3.4.2.2) compiled into predicates over User resources.

Supported: attribute paths (``userName``, ``name.familyName``, ``meta.lastModified``, ``emails.value`` — a
multi-valued attribute matches when any value does, ``<schema URN>:<attr>`` for extensions), the operators
``eq ne co sw ew gt ge lt le pr``, ``and``, ``or``, ``not (…)`` and parentheses. String comparison ignores case
(caseExact is false for the core User attributes compared here); ``meta.*`` timestamps compare as instants.
Anything else raises ``FilterError`` (the server answers 400 ``invalidFilter``).
"""
from __future__ import annotations

import json
import re
from collections.abc import Callable
from datetime import UTC, datetime
from typing import Any

Predicate = Callable[[dict], bool]

_TOKEN = re.compile(r'\s*(?:(?P<lparen>\()|(?P<rparen>\))|(?P<string>"(?:[^"\\]|\\.)*")|'
                    r'(?P<word>[A-Za-z0-9_:.$\-]+))')
_COMPARE = frozenset({"eq", "ne", "co", "sw", "ew", "gt", "ge", "lt", "le"})
_TIMESTAMP_ATTRIBUTES = frozenset({"meta.created", "meta.lastmodified"})


class FilterError(ValueError):
    """The filter is not one this server understands (answered as 400 invalidFilter)."""


def _tokens(text: str) -> list[tuple[str, str]]:
    tokens, position = [], 0
    while position < len(text):
        if not text[position:].strip():
            break
        match = _TOKEN.match(text, position)
        if not match:
            raise FilterError(f"unexpected text at position {position}")
        kind = match.lastgroup or ""
        tokens.append((kind, match.group(kind)))
        position = match.end()
    return tokens


def _values(resource: Any, path: str) -> list[Any]:
    """Every value at ``path``; multi-valued attributes contribute each of their values."""
    if path.lower().startswith("urn:"):
        schema, _, path = path.rpartition(":")
        current: list[Any] = [resource.get(schema)] if isinstance(resource, dict) else []
    else:
        current = [resource]
    for part in path.split("."):
        found: list[Any] = []
        for value in current:
            for item in value if isinstance(value, list) else [value]:
                if isinstance(item, dict):
                    key = next((k for k in item if k.lower() == part.lower()), None)
                    if key is not None:
                        found.append(item[key])
        current = found
    flat: list[Any] = []
    for value in current:
        flat.extend(value if isinstance(value, list) else [value])
    return [v for v in flat if v is not None]


def _instant(value: Any) -> datetime | None:
    try:
        moment = datetime.fromisoformat(str(value))
    except ValueError:
        return None
    return moment if moment.tzinfo else moment.replace(tzinfo=UTC)


def _comparison(path: str, op: str, literal: Any) -> Predicate:
    timestamp = path.lower() in _TIMESTAMP_ATTRIBUTES
    if timestamp:
        wanted = _instant(literal)
        if wanted is None:
            raise FilterError(f"{path} is compared with something that is not a timestamp")
    else:
        wanted = literal.lower() if isinstance(literal, str) else literal

    def matches(value: Any) -> bool:
        if timestamp:
            value = _instant(value)
            if value is None:
                return False
        elif isinstance(value, str):
            value = value.lower()
        if op == "eq":
            return value == wanted
        if op == "ne":
            return value != wanted
        if op in ("co", "sw", "ew"):
            if not isinstance(value, str) or not isinstance(wanted, str):
                return False
            return {"co": wanted in value, "sw": value.startswith(wanted), "ew": value.endswith(wanted)}[op]
        try:
            return {"gt": value > wanted, "ge": value >= wanted, "lt": value < wanted, "le": value <= wanted}[op]
        except TypeError:
            return False

    if op == "ne":
        return lambda resource: all(matches(v) for v in _values(resource, path))
    return lambda resource: any(matches(v) for v in _values(resource, path))


def _either(a: Predicate, b: Predicate) -> Predicate:
    return lambda resource: a(resource) or b(resource)


def _both(a: Predicate, b: Predicate) -> Predicate:
    return lambda resource: a(resource) and b(resource)


class _Parser:
    def __init__(self, text: str) -> None:
        self.tokens = _tokens(text)
        self.position = 0

    def peek(self) -> tuple[str, str] | None:
        return self.tokens[self.position] if self.position < len(self.tokens) else None

    def take(self) -> tuple[str, str]:
        token = self.peek()
        if token is None:
            raise FilterError("the filter ends too early")
        self.position += 1
        return token

    def keyword(self, word: str) -> bool:
        token = self.peek()
        if token and token[0] == "word" and token[1].lower() == word:
            self.position += 1
            return True
        return False

    def parse(self) -> Predicate:
        predicate = self.disjunction()
        if self.peek() is not None:
            raise FilterError("unexpected text after the filter")
        return predicate

    def disjunction(self) -> Predicate:
        left = self.conjunction()
        while self.keyword("or"):
            left = _either(left, self.conjunction())
        return left

    def conjunction(self) -> Predicate:
        left = self.factor()
        while self.keyword("and"):
            left = _both(left, self.factor())
        return left

    def factor(self) -> Predicate:
        if self.keyword("not"):
            inner = self.group()
            return lambda r: not inner(r)
        token = self.peek()
        if token and token[0] == "lparen":
            return self.group()
        return self.comparison()

    def group(self) -> Predicate:
        if self.take()[0] != "lparen":
            raise FilterError("expected '('")
        inner = self.disjunction()
        if self.take()[0] != "rparen":
            raise FilterError("expected ')'")
        return inner

    def comparison(self) -> Predicate:
        kind, path = self.take()
        if kind != "word":
            raise FilterError("expected an attribute path")
        kind, op = self.take()
        op = op.lower()
        if op == "pr":
            return lambda r: bool(_values(r, path))
        if kind != "word" or op not in _COMPARE:
            raise FilterError(f"unknown operator {op!r}")
        kind, text = self.take()
        if kind == "string":
            try:
                literal: Any = json.loads(text)  # SCIM string literals are JSON strings
            except ValueError:
                raise FilterError("a string literal is not valid") from None
        elif text in ("true", "false"):
            literal = text == "true"
        elif text == "null":
            literal = None
        else:
            try:
                literal = float(text) if "." in text else int(text)
            except ValueError:
                raise FilterError(f"{text!r} is not a value") from None
        return _comparison(path, op, literal)


def compile_filter(text: str) -> Predicate:
    """A predicate for ``text``; raises ``FilterError`` for anything outside the supported grammar."""
    return _Parser(text).parse()
