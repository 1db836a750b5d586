"""YAML loading and pydantic validation that fail with one readable line per problem.

Every message names the source (file name or ``<cell>``), the YAML path
(``job_specifications[0].tasks[1].command``), the offending value and why, and
suggests the nearest valid key for a typo. Never a traceback.
"""

from __future__ import annotations

import difflib
import os
import types
import typing
from pathlib import Path
from typing import Any, TypeVar

import yaml
from pydantic import BaseModel, ValidationError

from ..errors import ConfigError

M = TypeVar("M", bound=BaseModel)

MAX_CONFIG_BYTES = 16 * 1024 * 1024  # a config file larger than this is refused, not parsed


def format_path(loc: tuple[Any, ...] | list[Any]) -> str:
    """``('a', 0, 'b')`` → ``a[0].b``."""
    out = ""
    for part in loc:
        if isinstance(part, int):
            out += f"[{part}]"
        else:
            out += ("." if out else "") + str(part)
    return out or "(top level)"


def short_value(value: Any, limit: int = 60) -> str:
    text = repr(value)
    text = " ".join(text.split())
    return text if len(text) <= limit else text[: limit - 3] + "..."


def problem(source: str, loc: tuple[Any, ...] | list[Any], value: Any, why: str, *, show_value: bool = True) -> str:
    """One line: ``source: path = value: why``."""
    where = f"{source}: {format_path(loc)}"
    if show_value:
        where += f" = {short_value(value)}"
    return f"{where}: {why}"


def read_text(path: str | os.PathLike[str]) -> str:
    p = Path(path)
    name = p.name
    try:
        size = p.stat().st_size
    except FileNotFoundError:
        raise ConfigError(f"{p}: file not found") from None
    except OSError as exc:
        raise ConfigError(f"{p}: cannot read: {exc.strerror}") from None
    if p.is_dir():
        raise ConfigError(f"{p}: is a folder, not a YAML file")
    if size > MAX_CONFIG_BYTES:
        raise ConfigError(f"{name}: file is {size} bytes; the limit is {MAX_CONFIG_BYTES}")
    try:
        return p.read_text(encoding="utf-8")
    except UnicodeDecodeError as exc:
        raise ConfigError(f"{name}: not UTF-8 text (byte {exc.start})") from None
    except OSError as exc:
        raise ConfigError(f"{p}: cannot read: {exc.strerror}") from None


def parse_yaml(text: str, source: str) -> Any:
    """Parse YAML text safely (no object construction); errors name line and column."""
    if len(text.encode("utf-8", "surrogatepass")) > MAX_CONFIG_BYTES:
        raise ConfigError(f"{source}: text is larger than {MAX_CONFIG_BYTES} bytes")
    try:
        return yaml.safe_load(text)
    except yaml.MarkedYAMLError as exc:
        mark = exc.problem_mark
        where = f"line {mark.line + 1}, column {mark.column + 1}" if mark is not None else "somewhere"
        what = exc.problem or exc.context or "invalid YAML"
        raise ConfigError(f"{source}: {where}: invalid YAML: {what}") from None
    except yaml.YAMLError as exc:
        raise ConfigError(f"{source}: invalid YAML: {' '.join(str(exc).split())}") from None
    except RecursionError:
        raise ConfigError(f"{source}: invalid YAML: nested too deeply") from None


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
    return f"; valid keys: {', '.join(choices)}" if len(choices) <= 12 else ""


def _why(err: dict[str, Any]) -> str:
    msg = err.get("msg", "invalid value")
    # pydantic prefixes custom errors; our own messages are already sentences
    for prefix in ("Value error, ", "Assertion failed, "):
        if msg.startswith(prefix):
            msg = msg[len(prefix):]
    return " ".join(msg.split())


def validation_problems(exc: ValidationError, model: type[BaseModel], source: str, prefix: tuple[Any, ...] = ()) -> list[str]:
    problems: list[str] = []
    seen: set[str] = set()
    errors = exc.errors(include_url=False)
    deeper = [tuple(e.get("loc", ())) for e in errors]
    for err in errors:
        loc = tuple(err.get("loc", ()))
        if err.get("type") == "too_short" and any(len(d) > len(loc) and d[: len(loc)] == loc for d in deeper):
            continue  # a list emptied by its own failing items: the items' errors say it all
        # pydantic appends union member / function tags to loc: drop non-key parts
        clean = tuple(p for p in loc if isinstance(p, int) or not str(p).startswith(("function-", "tagged-union[")))
        etype = err.get("type", "")
        cause = (err.get("ctx") or {}).get("error")
        if cause is not None and hasattr(cause, "rel_loc"):
            # a model validator that knows the exact sub-path of the offending value
            line = problem(source, prefix + clean + tuple(cause.rel_loc), cause.value, cause.why)
        elif etype == "extra_forbidden":
            parent = _model_at(model, clean[:-1])
            line = problem(source, prefix + clean, err.get("input"), "unknown key" + suggest_key(parent, str(clean[-1]) if clean else ""))
        elif etype == "missing":
            line = problem(source, prefix + clean, None, "required key is missing", show_value=False)
        else:
            line = problem(source, prefix + clean, err.get("input"), _why(err))
        if line not in seen:
            seen.add(line)
            problems.append(line)
    return problems


def validate(model: type[M], data: Any, source: str, *, context: dict[str, Any] | None = None) -> M:
    """Validate ``data`` as ``model``; raise :class:`ConfigError` with one line per problem."""
    if data is None:
        raise ConfigError(f"{source}: the document is empty")
    if not isinstance(data, dict):
        raise ConfigError(f"{source}: (top level) = {short_value(data)}: expected a mapping of keys")
    try:
        return model.model_validate(data, context={"source": source, **(context or {})})
    except ValidationError as exc:
        raise ConfigError(validation_problems(exc, model, source)) from None
