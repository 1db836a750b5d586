"""``{name}`` in a ``%%fed`` cell body: the user variable ``name``, inserted as a YAML scalar.

Which braces are placeholders: ``{name}`` when ``name`` is a Python identifier naming a user
variable; ``{{name}}`` gives a literal ``{name}``; ``${HOME}``, sweep placeholders ``{0}`` /
``{1:03d}``, YAML flow mappings ``{a: b}`` and names that are not user variables stay as written.

How a value goes in: the cell is scanned as YAML with each placeholder held by a marker, so
the scalar around it (plain, quoted or block) is known. A value that reads the same there is
inserted as text, as it is written — ``run-{n}`` gives ``run-3``, ``n: {n}`` stays a number.
Any other value (a newline, ``: ``, `` #``, a quote, brackets, an empty string…) makes the
whole scalar a double-quoted YAML string holding exactly the text with the value in it, so a
value can never add a key, a list item or a job.
"""

from __future__ import annotations

import re
from collections.abc import Iterator, Mapping
from typing import Any

import yaml

__all__ = ["substitute"]

_NAME = r"[A-Za-z_][A-Za-z0-9_]*"
# group 1: an escaped {{name}}; group 2: {name} not preceded by $ (${HOME}) or { (half an escape)
_PLACEHOLDER = re.compile(r"\{\{(" + _NAME + r")\}\}|(?<![$\{])\{(" + _NAME + r")\}")

# Inserted as it is into a plain scalar: words of letters, digits and a few signs that mean
# nothing to YAML anywhere in a scalar, with single inner spaces. Not "- x" (a list item),
# not "---" / "..." (document markers), not "=" first (YAML 1.1's value key).
_WORD = r"[\w.$/+=^()-]+"
_PLAIN = re.compile(r"(?!-(\s|$))(?!(---|\.\.\.)(\s|$))[\w.$/(+-]" + r"[\w.$/+=^()-]*(?: " + _WORD + r")*")
_MARKS_DOCUMENT = re.compile(r"(---|\.\.\.)(\s|$)")
_BREAKS = re.compile("[\r\n\x85\u2028\u2029]")
_NAMED_ESCAPES = {
    "\\": "\\\\",
    '"': '\\"',
    "\n": "\\n",
    "\r": "\\r",
    "\t": "\\t",
    "\x85": "\\N",
    "\u2028": "\\L",
    "\u2029": "\\P",
}


def substitute(text: str, namespace: Mapping[str, Any]) -> str:
    """Replace each ``{name}`` of a user variable by ``str()`` of its value, as a YAML scalar
    (see the module docstring for the rule)."""
    opening, closing = _marker_characters(text)
    marker = re.compile(re.escape(opening) + r"(\d+)" + re.escape(closing))
    values: list[str] = []

    def mark(m: re.Match[str]) -> str:
        if m.group(1) is not None:
            return "{" + m.group(1) + "}"
        if m.group(2) not in namespace:
            return m.group(0)
        values.append(str(namespace[m.group(2)]))
        return f"{opening}{len(values) - 1}{closing}"

    marked = _PLACEHOLDER.sub(mark, text)
    if not values:
        return marked

    def loose(chunk: str) -> str:
        """Markers outside any scalar (a comment, or past a YAML error): one line, always."""
        return marker.sub(lambda m: _alone(values[int(m.group(1))]), chunk)

    out: list[str] = []
    pos = 0
    for token in _scalars(marked):
        start, end = token.start_mark.index, token.end_mark.index
        span = marked[start:end]
        if opening not in span:
            continue
        out += [loose(marked[pos:start]), _scalar(token, span, marker, values)]
        pos = end
    out.append(loose(marked[pos:]))
    return "".join(out)


def _marker_characters(text: str) -> tuple[str, str]:
    """Two private-use characters the cell does not contain: YAML reads them as plain text."""
    free = (chr(c) for c in range(0xE000, 0xF900) if chr(c) not in text)
    return next(free), next(free)


def _scalars(text: str) -> Iterator[yaml.ScalarToken]:
    """The scalar tokens of ``text``, up to a YAML error if there is one (the client reports it)."""
    tokens = yaml.scan(text, Loader=yaml.SafeLoader)
    while True:
        try:
            token = next(tokens)
        except (StopIteration, yaml.YAMLError):
            return
        if isinstance(token, yaml.ScalarToken):
            yield token


def _scalar(token: yaml.ScalarToken, span: str, marker: re.Pattern[str], values: list[str]) -> str:
    """The scalar ``span`` with its markers replaced: as text when every value fits the
    scalar's style, else the whole scalar as one double-quoted string."""
    inserted = [values[int(i)] for i in marker.findall(span)]
    if all(_fits(v, token.style) for v in inserted):
        return marker.sub(lambda m: values[int(m.group(1))], span)
    value = marker.sub(lambda m: values[int(m.group(1))], token.value)
    tail = span[len(span.rstrip()) :] if token.style in ("|", ">") else ""  # a block scalar's line breaks
    return _double_quoted(value) + tail


def _fits(value: str, style: str | None) -> bool:
    """Does ``value``, written as it is inside a scalar of this style, read back unchanged?"""
    if style is None:
        return _PLAIN.fullmatch(value) is not None
    if _BREAKS.search(value) or yaml.reader.Reader.NON_PRINTABLE.search(value):
        return False
    if style == '"':
        return '"' not in value and "\\" not in value
    if style == "'":
        return "'" not in value
    # a block scalar: a printable line that does not move the indentation the block is read
    # with (leading or trailing blanks), nor mark a document's start or end
    return value == value.strip() and not _MARKS_DOCUMENT.match(value)


def _alone(value: str) -> str:
    return value if _fits(value, None) else _double_quoted(value)


def _double_quoted(value: str) -> str:
    """``value`` as a one-line double-quoted YAML scalar."""
    out = []
    for ch in value:
        if ch in _NAMED_ESCAPES:
            out.append(_NAMED_ESCAPES[ch])
        elif yaml.reader.Reader.NON_PRINTABLE.match(ch):
            code = ord(ch)
            out.append(f"\\x{code:02X}" if code < 0x100 else f"\\u{code:04X}" if code < 0x10000 else f"\\U{code:08X}")
        else:
            out.append(ch)
    return '"' + "".join(out) + '"'
