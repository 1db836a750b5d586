"""The OData ``$filter`` / ``$select`` subset of the Batch list calls.

``$filter``: ``path op literal`` comparisons (``eq ne gt ge lt le``) joined by ``and`` / ``or`` /
``not`` and parentheses, plus ``startswith(path, 'text')``. ``path`` is a property of the returned
JSON, nested with ``/`` (``state``, ``id``, ``executionInfo/result``, ``executionInfo/exitCode``,
``poolInfo/poolId``). Literals: ``'text'`` (``''`` escapes a quote), numbers, ``true``,
``false``, ``null``, ``datetime'2025-01-01T00:00:00Z'``. Anything else is 400
``InvalidQueryParameterValue``.

``$select``: a comma-separated list of top-level property names; the response keeps only those.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Iterator

from ._util import ApiError, iso, parse_iso

_TOKEN_RE = re.compile(
    r"\s*(?:(?P<str>'(?:[^']|'')*')|(?P<dt>datetime'[^']*')|(?P<num>-?\d+(?:\.\d+)?)"
    r"|(?P<name>[A-Za-z_][A-Za-z0-9_]*(?:/[A-Za-z_][A-Za-z0-9_]*)*)|(?P<op>[(),]))"
)
_COMPARE = {
    "eq": lambda a, b: a == b,
    "ne": lambda a, b: a != b,
    "gt": lambda a, b: a is not None and b is not None and a > b,
    "ge": lambda a, b: a is not None and b is not None and a >= b,
    "lt": lambda a, b: a is not None and b is not None and a < b,
    "le": lambda a, b: a is not None and b is not None and a <= b,
}

Predicate = Callable[[dict], bool]
MAX_NESTING = 32  # parentheses and nots, one inside the other: deeper is refused, not recursed into


def bad_query(name: str, value: str, reason: str) -> ApiError:
    return ApiError(
        400,
        "InvalidQueryParameterValue",
        "Value for one of the query parameters specified in the request URI is invalid.",
        {"QueryParameterName": name, "QueryParameterValue": value[:200], "Reason": reason},
    )


def _lookup(doc: dict, path: str) -> object:
    value: object = doc
    for part in path.split("/"):
        if not isinstance(value, dict):
            return None
        value = value.get(part)
    return value


def parse_filter(text: str | None) -> Predicate | None:
    """Compile a ``$filter`` into a predicate over response documents (None = keep all)."""
    if text is None or not text.strip():
        return None
    tokens: list[tuple[str, str]] = []
    pos = 0
    src = text.rstrip()
    while pos < len(src):
        m = _TOKEN_RE.match(src, pos)
        if not m or m.end() == pos:
            raise bad_query("$filter", text, f"cannot read the filter at offset {pos}")
        kind = m.lastgroup or ""
        tokens.append((kind, m.group(kind)))
        pos = m.end()
    tokens.append(("end", ""))
    parser = _FilterParser(tokens, text)
    pred = parser.or_expr()
    if tokens[parser.i][0] != "end":
        raise bad_query("$filter", text, f"unexpected {tokens[parser.i][1]!r}")
    return pred


class _FilterParser:
    def __init__(self, tokens: list[tuple[str, str]], text: str):
        self.t = tokens
        self.i = 0
        self.text = text
        self.depth = 0

    def fail(self, reason: str) -> ApiError:
        return bad_query("$filter", self.text, reason)

    def word(self, *words: str) -> bool:
        kind, value = self.t[self.i]
        return kind == "name" and value.lower() in words

    def or_expr(self) -> Predicate:
        return self._joined("or", self.and_expr, any)

    def and_expr(self) -> Predicate:
        return self._joined("and", self.not_expr, all)

    def _joined(self, word: str, operand: Callable[[], Predicate], combine: Callable[[Iterator[bool]], bool]) -> Predicate:
        parts = [operand()]
        while self.word(word):
            self.i += 1
            parts.append(operand())
        if len(parts) == 1:
            return parts[0]
        ps = tuple(parts)
        return lambda d: combine(p(d) for p in ps)

    def _deeper(self) -> None:
        self.depth += 1
        if self.depth > MAX_NESTING:
            raise self.fail(f"nested more than {MAX_NESTING} deep")

    def not_expr(self) -> Predicate:
        if self.word("not"):
            self.i += 1
            self._deeper()
            inner = self.atom()
            self.depth -= 1
            return lambda d: not inner(d)
        return self.atom()

    def atom(self) -> Predicate:
        kind, value = self.t[self.i]
        if kind == "op" and value == "(":
            self.i += 1
            self._deeper()
            inner = self.or_expr()
            self.expect(")")
            self.depth -= 1
            return inner
        if kind != "name":
            raise self.fail(f"expected a property name, found {value or 'end'!r}")
        self.i += 1
        if value.lower() == "startswith":
            self.expect("(")
            path = self.path()
            self.expect(",")
            prefix = self.literal()
            self.expect(")")
            if not isinstance(prefix, str):
                raise self.fail("startswith needs a 'text' literal")
            return lambda d: isinstance(_lookup(d, path), str) and str(_lookup(d, path)).startswith(prefix)
        path = value
        kind, op = self.t[self.i]
        if kind != "name" or op.lower() not in _COMPARE:
            raise self.fail(f"expected one of {', '.join(_COMPARE)} after {path!r}")
        self.i += 1
        literal = self.literal()
        compare = _COMPARE[op.lower()]
        return lambda d: compare(_normalise(_lookup(d, path), literal), literal)

    def path(self) -> str:
        kind, value = self.t[self.i]
        if kind != "name":
            raise self.fail("expected a property name")
        self.i += 1
        return value

    def expect(self, value: str) -> None:
        if self.t[self.i] != ("op", value):
            raise self.fail(f"expected {value!r}")
        self.i += 1

    def literal(self) -> object:
        kind, value = self.t[self.i]
        self.i += 1
        if kind == "str":
            return value[1:-1].replace("''", "'")
        if kind == "num":
            return float(value) if "." in value else int(value)
        if kind == "dt":
            try:
                return iso(parse_iso(value[len("datetime'") : -1]))
            except ValueError:
                raise self.fail(f"bad datetime literal {value}") from None
        if kind == "name" and value.lower() in ("true", "false", "null"):
            return {"true": True, "false": False, "null": None}[value.lower()]
        raise self.fail(f"expected a literal, found {value or 'end'!r}")


def _normalise(value: object, literal: object) -> object:
    # stored timestamps are in one ISO form already; numbers compare as numbers
    if isinstance(literal, (int, float)) and isinstance(value, str):
        try:
            return float(value)
        except ValueError:
            return value
    return value


def parse_select(text: str | None) -> tuple[str, ...] | None:
    if text is None or not text.strip():
        return None
    names = tuple(n.strip() for n in text.split(",") if n.strip())
    for n in names:
        if not re.fullmatch(r"[A-Za-z][A-Za-z0-9]*", n):
            raise bad_query("$select", text, f"{n!r} is not a property name")
    return names


def project(doc: dict, select: tuple[str, ...] | None) -> dict:
    if select is None:
        return doc
    return {k: doc[k] for k in select if k in doc}
