"""YAML loading and pydantic validation that fail with one readable line per problem.

Every message names the source (file name or ``<cell>``), the YAML path
(``job_specifications[0].tasks[1].command``), the offending value and why, and
suggests the nearest valid key for a typo. Never a traceback.
"""

from __future__ import annotations

import difflib
import gc
import os
import re
import stat
import types
import typing
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any, TypeVar

import yaml
from pydantic import BaseModel, ValidationError

from ..errors import ConfigError
from .yaml_loader import Loader as _Loader
from .yaml_loader import SafeLoader as _SafeLoader  # noqa: F401  (the pure-Python parser; tests check both)

M = TypeVar("M", bound=BaseModel)

# A config file larger than this is refused, not parsed. PyYAML makes a Python object (with
# two position marks) for every node before the values exist, so the costliest shape — many
# tiny jobs — takes ~1.2 s of CPU and ~100 MB per MiB on a 2-core VM; 3 MiB validates in ≤ 5 s
# (bench/config_load.py) and still holds 100,000 short explicit tasks. Larger sweeps belong
# in a task_factory.
MAX_CONFIG_BYTES = 3 * 1024 * 1024
_TOO_LARGE = "split it into several files, or generate tasks with a task_factory"


# keys whose values are never echoed back in a message
SECRET_KEY_RE = re.compile(r"(connection_?string|account_?key|sas|secret|password|token)$", re.I)


class PathError(ValueError):
    """A validation error that knows the YAML path (relative to the validated field or
    model) and the offending value, so the message can point at it exactly."""

    def __init__(self, rel_loc: tuple[Any, ...], value: Any, why: str):
        super().__init__(why)
        self.rel_loc = rel_loc
        self.value = value
        self.why = why


def _key_text(part: Any) -> str:
    text = str(part)
    # a key with spaces, line breaks or control characters is quoted so the path stays one line
    if not text or any(c.isspace() or not c.isprintable() for c in text):
        return repr(text)
    return text


def format_path(loc: tuple[Any, ...] | list[Any]) -> str:
    """``('a', 0, 'b')`` → ``a[0].b``."""
    out = ""
    for part in loc:
        if isinstance(part, int) and not isinstance(part, bool):
            out += f"[{part}]"
        else:
            out += ("." if out else "") + _key_text(part)
    return out or "(top level)"


def short_value(value: Any, limit: int = 60) -> str:
    text = repr(value)  # quotes strings and escapes line breaks: '   ' stays visibly three spaces
    text = " ".join(text.splitlines())
    return text if len(text) <= limit else text[: limit - 3] + "..."


def problem(source: str, loc: tuple[Any, ...] | list[Any], value: Any, why: str, *, show_value: bool = True) -> str:
    """One line: ``source: path = value: why``."""
    where = f"{source}: {format_path(loc)}"
    if show_value:
        secret = any(isinstance(p, str) and SECRET_KEY_RE.search(p) for p in loc)
        where += " = <hidden>" if secret else f" = {short_value(value)}"
    return " ".join(f"{where}: {why}".splitlines())


def read_text(path: str | os.PathLike[str]) -> str:
    """The file's text, refusing anything but a regular file of at most MAX_CONFIG_BYTES.

    The file is opened without blocking and checked on the open descriptor, so a named pipe
    or a device (``/dev/zero``) is refused at once, and no more than the limit plus one byte
    is ever read, whatever size the file claims."""
    p = Path(path)
    try:
        fd = os.open(p, os.O_RDONLY | os.O_NONBLOCK | getattr(os, "O_CLOEXEC", 0))
    except FileNotFoundError:
        raise ConfigError(f"{p}: file not found") from None
    except IsADirectoryError:
        raise ConfigError(f"{p}: is a folder, not a YAML file") from None
    except OSError as exc:
        raise ConfigError(f"{short_value(str(p), 120)}: cannot read: {exc.strerror}") from None
    except ValueError:  # e.g. a NUL character: no file can have that name
        raise ConfigError(f"{short_value(str(p), 120)}: not a usable file name") from None
    mode = os.fstat(fd).st_mode
    if not stat.S_ISREG(mode):
        os.close(fd)
        if stat.S_ISDIR(mode):
            raise ConfigError(f"{p}: is a folder, not a YAML file")
        raise ConfigError(f"{p}: is not a regular file (a device, pipe or socket); give a YAML file")
    with os.fdopen(fd, "rb") as f:
        try:
            data = f.read(MAX_CONFIG_BYTES + 1)
        except OSError as exc:
            raise ConfigError(f"{p}: cannot read: {exc.strerror}") from None
    if len(data) > MAX_CONFIG_BYTES:
        raise ConfigError(f"{p.name}: file is larger than {MAX_CONFIG_BYTES} bytes, the limit; {_TOO_LARGE}")
    try:
        return data.decode("utf-8")
    except UnicodeDecodeError as exc:
        raise ConfigError(f"{p.name}: not UTF-8 text (byte {exc.start})") from None


@contextmanager
def no_cyclic_gc() -> Iterator[None]:
    """Pause CPython's cyclic garbage collector while a large tree of new objects is built.

    Every 700 new containers it walks the young ones, and ever more often the old ones too,
    all of them still alive: on a few MiB of YAML that made loading several times slower and
    super-linear. Reference counting still frees everything; a cycle made meanwhile (a
    self-referring YAML alias) is collected once the collector runs again."""
    was_enabled = gc.isenabled()
    gc.disable()
    try:
        yield
    finally:
        if was_enabled:
            gc.enable()


def parse_yaml(text: str, source: str) -> Any:
    """Parse YAML text safely (no object construction); errors name line and column."""
    if len(text.encode("utf-8", "surrogatepass")) > MAX_CONFIG_BYTES:
        raise ConfigError(f"{source}: text is larger than {MAX_CONFIG_BYTES} bytes, the limit; {_TOO_LARGE}")
    try:
        with no_cyclic_gc():
            data = yaml.load(text, Loader=_Loader)
    except yaml.MarkedYAMLError as exc:
        mark = exc.problem_mark
        where = f"line {mark.line + 1}, column {mark.column + 1}" if mark is not None else "somewhere"
        what = " ".join(str(exc.problem or exc.context or "invalid YAML").split())
        raise ConfigError(f"{source}: {where}: invalid YAML: {what}") from None
    except yaml.YAMLError as exc:
        raise ConfigError(f"{source}: invalid YAML: {' '.join(str(exc).split())}") from None
    except RecursionError:
        raise ConfigError(f"{source}: invalid YAML: nested too deeply") from None
    except (ValueError, OverflowError) as exc:  # e.g. an escape beyond Unicode ("\U00110000")
        raise ConfigError(f"{source}: invalid YAML: {' '.join(str(exc).split())}") from None
    check_shape(data, source)
    return data


MAX_DEPTH = 64  # nesting levels of mappings and lists; real configs use fewer than 10
MAX_NODES = 2_000_000  # values once YAML aliases are expanded (a "billion laughs" stops here)


def check_shape(data: Any, source: str) -> None:
    """Refuse what YAML aliases (``&a`` … ``*a``) or a caller can build but no configuration
    needs, before anything walks it recursively: a value that contains itself, nesting deeper
    than :data:`MAX_DEPTH`, or more than :data:`MAX_NODES` values once aliases are expanded."""
    nodes = 0
    stack: list[tuple[Any, int, frozenset[int]]] = [(data, 0, frozenset())]
    while stack:
        value, depth, parents = stack.pop()
        nodes += 1
        if nodes > MAX_NODES:
            raise ConfigError(f"{source}: more than {MAX_NODES:,} values once YAML aliases are expanded")
        if isinstance(value, (dict, list)):
            if id(value) in parents:
                raise ConfigError(f"{source}: a value contains itself (a YAML alias refers to its own anchor)")
            if depth >= MAX_DEPTH:
                raise ConfigError(f"{source}: nested more than {MAX_DEPTH} levels deep")
            inner = parents | {id(value)}
            items = value.values() if isinstance(value, dict) else value
            stack.extend((v, depth + 1, inner) for v in items)


def load_yaml_file(path: str | os.PathLike[str]) -> tuple[Any, str]:
    """Return ``(data, source_name)`` for a YAML file."""
    text = read_text(path)
    source = Path(path).name
    return parse_yaml(text, source), source


# --- pydantic errors → one line each -------------------------------------------------


def _unwrap(annotation: Any) -> list[Any]:
    """Model classes reachable from a field annotation (through Optional, list, dict, Annotated)."""
    origin = typing.get_origin(annotation)
    if origin is typing.Annotated:
        return _unwrap(typing.get_args(annotation)[0])
    if origin in (typing.Union, types.UnionType):
        found: list[Any] = []
        for arg in typing.get_args(annotation):
            found.extend(_unwrap(arg))
        return found
    if origin in (list, tuple, set, frozenset):
        args = typing.get_args(annotation)
        return _unwrap(args[0]) if args else []
    if origin is dict:
        args = typing.get_args(annotation)
        return _unwrap(args[1]) if len(args) == 2 else []
    if isinstance(annotation, type) and issubclass(annotation, BaseModel):
        return [annotation]
    return []


def _field_keys(model: type[BaseModel]) -> dict[str, str]:
    """YAML key (alias or name) → field name, aliases included."""
    keys: dict[str, str] = {}
    for name, info in model.model_fields.items():
        keys[name] = name
        if info.alias:
            keys[info.alias] = name
        va = info.validation_alias
        if isinstance(va, str):
            keys[va] = name
        elif va is not None and hasattr(va, "choices"):
            for choice in va.choices:
                if isinstance(choice, str):
                    keys[choice] = name
    return keys


def _model_at(root: type[BaseModel], loc: tuple[Any, ...]) -> type[BaseModel] | None:
    """The model class that owns the mapping at ``loc`` (list indexes and dict keys skipped)."""
    model: type[BaseModel] | None = root
    for part in loc:
        if model is None:
            return None
        if isinstance(part, int):
            continue
        keys = _field_keys(model)
        if part not in keys:
            # a dict key (e.g. environment variable name) or a union tag: stay put
            continue
        candidates = _unwrap(model.model_fields[keys[part]].annotation)
        model = candidates[0] if candidates else None
    return model


def suggest_key(model: type[BaseModel] | None, key: str) -> str:
    if model is None:
        return ""
    choices = sorted(k for k in _field_keys(model) if not k.startswith("_"))
    close = difflib.get_close_matches(str(key), choices, n=1, cutoff=0.6)
    if close:
        return f"; did you mean '{close[0]}'?"
    return f"; valid keys: {', '.join(choices)}" if len(choices) <= 16 else ""


# pydantic's wording names Python types; a YAML author thinks in lists and mappings
_TYPE_WHY = {
    "int_type": "expected a whole number",
    "int_parsing": "expected a whole number",
    "int_from_float": "expected a whole number",
    "float_type": "expected a number",
    "float_parsing": "expected a number",
    "bool_type": "expected true or false",
    "bool_parsing": "expected true or false",
    "string_type": "expected text",
    "list_type": "expected a list",
    "tuple_type": "expected a list",
    "set_type": "expected a list",
    "dict_type": "expected a mapping (key: value)",
    "model_type": "expected a mapping (key: value)",
    "model_attributes_type": "expected a mapping (key: value)",
}
_BOUND_WHY = {
    "greater_than_equal": ("ge", "must be at least {}"),
    "greater_than": ("gt", "must be greater than {}"),
    "less_than_equal": ("le", "must be at most {}"),
    "less_than": ("lt", "must be less than {}"),
}
# errors that only say "this value has the wrong shape for this union member"
_SHAPE_ERRORS = set(_TYPE_WHY) | {"literal_error", "enum", "is_instance_of"}


def _why(err: dict[str, Any]) -> str:
    etype = err.get("type", "")
    ctx = err.get("ctx") or {}
    if etype in _TYPE_WHY:
        return _TYPE_WHY[etype]
    if etype in _BOUND_WHY and _BOUND_WHY[etype][0] in ctx:
        key, text = _BOUND_WHY[etype]
        bound = ctx[key]
        return text.format(f"{bound:g}" if isinstance(bound, float) else bound)
    if etype in ("too_short", "string_too_short") and ctx.get("min_length") == 1:
        return "must not be empty"
    msg = err.get("msg", "invalid value")
    # pydantic prefixes custom errors; our own messages are already sentences
    for prefix in ("Value error, ", "Assertion failed, "):
        if msg.startswith(prefix):
            msg = msg[len(prefix) :]
    if msg.startswith("Input should be "):
        msg = "expected " + msg[len("Input should be ") :]
    return " ".join(msg.split())


def _is_tag(part: Any) -> bool:
    return isinstance(part, str) and part.startswith(("function-", "tagged-union["))


def _clean_loc(loc: tuple[Any, ...], data: Any, etype: str) -> tuple[tuple[Any, ...], int | None]:
    """Drop the parts pydantic adds to ``loc`` that are not in the YAML (validator and union
    member tags such as ``int`` or ``tuple[...]``) by walking the input alongside.

    Returns the YAML path and, for an error inside a union member, the length of the
    path of the value the union was validating (``None`` otherwise).
    """
    clean: list[Any] = []
    union_at: int | None = None
    node = data
    for i, part in enumerate(loc):
        if (isinstance(node, dict) and part in node and not _is_tag(part)) or (
            isinstance(node, (list, tuple)) and isinstance(part, int) and 0 <= part < len(node)
        ):
            clean.append(part)
            node = node[part]
        elif i == len(loc) - 1 and etype == "missing":
            clean.append(part)  # the key that is not there
        elif union_at is None:
            # not in the input: the name of a union member (``int``, ``tuple[...]``,
            # ``function-after[...]``) that pydantic puts in the path of its errors
            union_at = len(clean)
    return tuple(clean), union_at


_Entry = tuple[tuple[Any, ...], int | None, dict[str, Any]]  # clean path, union depth, pydantic error


def validation_problems(
    exc: ValidationError,
    model: type[BaseModel],
    source: str,
    prefix: tuple[Any, ...] = (),
    data: Any = None,
) -> list[str]:
    """One line per problem of ``exc``; ``data`` (the validated input) lets the paths be
    told apart from pydantic's union member tags."""
    entries = _entries(exc.errors(include_url=False), data)
    drop, merged = _union_noise(entries)
    problems: list[str] = []
    seen: set[str] = set()
    for n in _fix_first_order(entries):
        if n in drop:
            continue
        line = _problem_line(entries[n], model, source, prefix, merged.get(n))
        if line not in seen:
            seen.add(line)
            problems.append(line)
    return problems


def _entries(errors: list[Any], data: Any) -> list[_Entry]:
    """The errors worth a line, each with its path cleaned of union member tags."""
    deeper = [tuple(e.get("loc", ())) for e in errors]
    entries: list[_Entry] = []
    for err in errors:
        loc = tuple(err.get("loc", ()))
        if err.get("type") == "too_short" and any(len(d) > len(loc) and d[: len(loc)] == loc for d in deeper):
            continue  # a list emptied by its own failing items: the items' errors say it all
        if data is None:
            clean, union_at = tuple(p for p in loc if not _is_tag(p)), None
        else:
            clean, union_at = _clean_loc(loc, data, err.get("type", ""))
        entries.append((clean, union_at, err))
    return entries


def _union_noise(entries: list[_Entry]) -> tuple[set[int], dict[int, str]]:
    """Entries to drop and merged reasons, for values that fail every member of a union.

    When one member's errors go deeper (the value had that member's shape) or say more than
    "wrong type", the other members' "wrong type" errors are noise; when all say "wrong
    type", say it once."""
    groups: dict[tuple[Any, ...], list[int]] = {}
    for n, (clean, union_at, _err) in enumerate(entries):
        if union_at is not None:
            groups.setdefault(clean[:union_at], []).append(n)
    drop: set[int] = set()
    merged: dict[int, str] = {}
    for at, members in groups.items():
        shape = [n for n in members if entries[n][0] == at and entries[n][2].get("type") in _SHAPE_ERRORS]
        if len(shape) < len(members):
            drop.update(shape)
        elif shape:
            whys = list(dict.fromkeys(_why(entries[n][2]) for n in shape))
            if all(w.startswith("expected ") for w in whys):
                why = "expected " + ", or ".join(w[len("expected ") :] for w in whys)
            else:
                why = "; or ".join(whys)
            merged[shape[0]] = why
            drop.update(shape[1:])
    return drop, merged


def _fix_first_order(entries: list[_Entry]) -> list[int]:
    """Entry indexes in report order. A typo of a required key gives "missing" and "unknown
    key" for one mapping: the unknown key (with its suggestion) comes first, it is the one
    to fix."""
    last_extra: dict[tuple[Any, ...], int] = {}
    for n, (clean, _u, err) in enumerate(entries):
        if err.get("type") == "extra_forbidden":
            last_extra[clean[:-1]] = n

    def rank(n: int) -> tuple[int, int]:
        clean, _u, err = entries[n]
        if err.get("type") == "missing" and clean[:-1] in last_extra:
            return (max(n, last_extra[clean[:-1]]), 1)
        return (n, 0)

    return sorted(range(len(entries)), key=rank)


def _problem_line(entry: _Entry, model: type[BaseModel], source: str, prefix: tuple[Any, ...], merged: str | None) -> str:
    clean, _union_at, err = entry
    etype = err.get("type", "")
    cause = (err.get("ctx") or {}).get("error")
    if cause is not None and hasattr(cause, "rel_loc"):
        # a validator that knows the exact sub-path of the offending value
        return problem(source, prefix + clean + tuple(cause.rel_loc), cause.value, cause.why)
    if etype == "extra_forbidden":
        return problem(source, prefix + clean, err.get("input"), _extra_key_why(model, clean))
    if etype == "missing":
        return problem(source, prefix + clean, None, "required key is missing", show_value=False)
    return problem(source, prefix + clean, err.get("input"), merged or _why(err))


def _extra_key_why(model: type[BaseModel], clean: tuple[Any, ...]) -> str:
    parent = _model_at(model, clean[:-1])
    key = str(clean[-1]) if clean else ""
    keys = _field_keys(parent) if parent is not None else {}
    if key in keys:
        # an alias of a field whose other name is given too
        names = sorted(k for k, f in keys.items() if f == keys[key])
        return f"the same setting is given twice ({' and '.join(names)} are one key); keep one"
    return "unknown key" + suggest_key(parent, key)


def drop_blank_keys(data: Any) -> Any:
    """A key left blank (``allow:`` as in the original's commented templates) means
    "use the default", as it did in the original — not an error."""
    if isinstance(data, dict):
        # an environment variable left blank is an empty string, not "unset"
        return {k: (v if k == "environment_variables" else drop_blank_keys(v)) for k, v in data.items() if v is not None}
    if isinstance(data, list):
        return [drop_blank_keys(v) for v in data]
    return data


def validate(model: type[M], data: Any, source: str, *, context: dict[str, Any] | None = None) -> M:
    """Validate ``data`` as ``model``; raise :class:`ConfigError` with one line per problem."""
    if data is None:
        raise ConfigError(f"{source}: the document is empty")
    if not isinstance(data, dict):
        raise ConfigError(f"{source}: (top level) = {short_value(data)}: expected a mapping of keys")
    data = drop_blank_keys(data)
    try:
        with no_cyclic_gc():
            return model.model_validate(data, context={"source": source, **(context or {})})
    except ValidationError as exc:
        raise ConfigError(validation_problems(exc, model, source, data=data)) from None
