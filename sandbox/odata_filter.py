"""OData v2 `$filter` for the sandbox: a tokenizer, a recursive-descent parser and an evaluator (never eval)."""

from __future__ import annotations

import re
import uuid
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

__all__ = ["FilterError", "compile_filter"]

Predicate = Callable[[Mapping[str, Any]], bool]


class FilterError(ValueError):
    """The `$filter` expression cannot be parsed or names an unknown field."""


_TOKEN = re.compile(
    r"""\s*(?:
      (?P<guid>guid'(?P<guidv>[0-9a-fA-F-]{36})\s*')
    | (?P<dt>datetime'(?P<dtv>[^']*)')
    | (?P<str>'(?P<strv>(?:[^']|'')*)')
    | (?P<int64>-?\d+)L\b
    | (?P<num>-?\d+(?:\.\d+)?)(?:[mMdD])?
    | (?P<lp>\()
    | (?P<rp>\))
    | (?P<comma>,)
    | (?P<word>[A-Za-z_][A-Za-z0-9_/]*)
    )""",
    re.VERBOSE,
)


@dataclass(frozen=True)
class Tok:
    kind: str
    value: Any


def tokenize(text: str) -> list[Tok]:
    tokens: list[Tok] = []
    pos = 0
    while pos < len(text):
        if text[pos:].strip() == "":
            break
        m = _TOKEN.match(text, pos)
        if not m or m.end() == pos:
            raise FilterError(f"unexpected text at position {pos}: {text[pos : pos + 20]!r}")
        pos = m.end()
        if m.group("guid"):
            tokens.append(Tok("lit", uuid.UUID(m.group("guidv")).hex))
        elif m.group("dt") is not None and m.group("dt"):
            tokens.append(Tok("lit", parse_datetime(m.group("dtv"))))
        elif m.group("str") is not None and m.group("str"):
            tokens.append(Tok("lit", m.group("strv").replace("''", "'")))
        elif m.group("int64"):
            tokens.append(Tok("lit", int(m.group("int64"))))
        elif m.group("num"):
            raw = m.group("num")
            tokens.append(Tok("lit", float(raw) if "." in raw else int(raw)))
        elif m.group("lp"):
            tokens.append(Tok("(", None))
        elif m.group("rp"):
            tokens.append(Tok(")", None))
        elif m.group("comma"):
            tokens.append(Tok(",", None))
        else:
            word = m.group("word")
            lower = word.lower()
            if lower in ("and", "or", "not", "eq", "ne", "gt", "ge", "lt", "le"):
                tokens.append(Tok(lower, None))
            elif lower in ("true", "false"):
                tokens.append(Tok("lit", lower == "true"))
            elif lower == "null":
                tokens.append(Tok("lit", None))
            else:
                tokens.append(Tok("field", word))
    return tokens


def parse_datetime(text: str) -> datetime:
    try:
        value = datetime.fromisoformat(text.replace("Z", "+00:00"))
    except ValueError as exc:
        raise FilterError(f"bad datetime literal: {text!r}") from exc
    return value if value.tzinfo else value.replace(tzinfo=UTC)


class _Parser:
    """Grammar: or_expr := and_expr (or and_expr)*; and_expr := unary (and unary)*;
    unary := not unary | primary; primary := ( or_expr ) | operand cmp operand."""

    def __init__(self, tokens: list[Tok], fields: frozenset[str]) -> None:
        self.tokens = tokens
        self.pos = 0
        self.fields = fields

    def peek(self) -> Tok | None:
        return self.tokens[self.pos] if self.pos < len(self.tokens) else None

    def take(self, kind: str | None = None) -> Tok:
        tok = self.peek()
        if tok is None or (kind is not None and tok.kind != kind):
            raise FilterError(f"expected {kind or 'more'} at token {self.pos}")
        self.pos += 1
        return tok

    def parse(self) -> Predicate:
        pred = self.or_expr()
        if self.peek() is not None:
            raise FilterError(f"unexpected token {self.peek()!r}")
        return pred

    def or_expr(self) -> Predicate:
        parts = [self.and_expr()]
        while (tok := self.peek()) is not None and tok.kind == "or":
            self.take()
            parts.append(self.and_expr())
        return parts[0] if len(parts) == 1 else (lambda r: any(p(r) for p in parts))

    def and_expr(self) -> Predicate:
        parts = [self.unary()]
        while (tok := self.peek()) is not None and tok.kind == "and":
            self.take()
            parts.append(self.unary())
        return parts[0] if len(parts) == 1 else (lambda r: all(p(r) for p in parts))

    def unary(self) -> Predicate:
        tok = self.peek()
        if tok is not None and tok.kind == "not":
            self.take()
            inner = self.unary()
            return lambda r: not inner(r)
        if tok is not None and tok.kind == "(":
            self.take()
            inner = self.or_expr()
            self.take(")")
            return inner
        return self.comparison()

    def operand(self) -> Callable[[Mapping[str, Any]], Any]:
        tok = self.take()
        if tok.kind == "lit":
            value = tok.value
            return lambda _r: value
        if tok.kind == "field":
            name = tok.value
            if name not in self.fields:
                raise FilterError(f"unknown field in $filter: {name}")
            return lambda r: r.get(name)
        raise FilterError(f"expected a field or a literal, got {tok.kind}")

    def comparison(self) -> Predicate:
        left = self.operand()
        op = self.take()
        if op.kind not in _OPS:
            raise FilterError(f"expected a comparison operator, got {op.kind}")
        right = self.operand()
        compare = _OPS[op.kind]
        return lambda r: compare(_norm(left(r)), _norm(right(r)))


def _norm(value: Any) -> Any:
    if isinstance(value, str) and len(value) == 36 and value.count("-") == 4:
        try:
            return uuid.UUID(value).hex
        except ValueError:
            return value
    return value


def _ordered(fn: Callable[[Any, Any], bool]) -> Callable[[Any, Any], bool]:
    def compare(a: Any, b: Any) -> bool:
        if a is None or b is None:
            return False
        try:
            return fn(a, b)
        except TypeError:
            return False

    return compare


_OPS: dict[str, Callable[[Any, Any], bool]] = {
    "eq": lambda a, b: a == b,
    "ne": lambda a, b: a != b,
    "gt": _ordered(lambda a, b: a > b),
    "ge": _ordered(lambda a, b: a >= b),
    "lt": _ordered(lambda a, b: a < b),
    "le": _ordered(lambda a, b: a <= b),
}


def compile_filter(text: str, fields: frozenset[str]) -> Predicate:
    """A predicate over records for an OData `$filter`; raises `FilterError` for bad input."""
    tokens = tokenize(text)
    if not tokens:
        raise FilterError("empty $filter")
    return _Parser(tokens, fields).parse()
