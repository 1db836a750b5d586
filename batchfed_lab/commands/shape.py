"""What a verb hands back to the surfaces (:class:`Result`) and the helpers that shape
the client's answers into one: tables for the CLI, records for ``--raw``."""

from __future__ import annotations

import json
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    import pandas as pd


@dataclass(frozen=True)
class Result:
    """What a verb produced. ``value``: what ``%fed`` returns (a DataFrame, a handle, text)
    or stores with ``-o``; ``rich``: whether the magic should display ``value`` (else it
    prints ``text``); ``text``: what the CLI prints; ``data``: what ``--raw`` prints. Both
    may be given as functions, so each surface pays only for the output it shows."""

    value: Any
    render: str | Callable[[], str]
    raw: Any
    rich: bool = False
    warnings: tuple[str, ...] = ()
    #: more text that arrives after ``text`` (``proxy logs --follow``): the surfaces print
    #: each piece as it comes, until it ends or the user interrupts
    stream: Iterable[str] | None = None

    @property
    def text(self) -> str:
        return self.render() if callable(self.render) else self.render

    @property
    def data(self) -> Any:
        return self.raw() if callable(self.raw) else self.raw


def table(df: pd.DataFrame, columns: list[str], empty: str) -> str:
    if df.empty:
        return empty
    return df[columns].to_string(index=False)


def frame_result(df: pd.DataFrame, columns: list[str], empty: str, warnings: Iterable[str] = ()) -> Result:
    from ..frames import frame_records

    return Result(df, lambda: table(df, columns, empty), lambda: frame_records(df), rich=True, warnings=tuple(warnings))


def done(text: str, value: Any = None, data: Any = None, warnings: Iterable[str] = ()) -> Result:
    return Result(value, text, data if data is not None else {"message": text}, warnings=tuple(warnings))


def dumps(data: Any) -> str:
    """``--raw`` output: indented JSON; anything not JSON-native becomes text."""
    return json.dumps(data, indent=2, default=str)
