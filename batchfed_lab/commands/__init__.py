"""The one verb/flag table behind ``batchfed fed …`` and ``%fed …``.

Each :class:`Verb` names its words (``("jobs", "add")``), its parameters and a ``run``
function that calls the :class:`~batchfed_lab.client.Client` and shapes what came back
into a :class:`Result`: the value ``%fed`` returns, the text the CLI prints and the
JSON ``--raw`` prints. The CLI (:mod:`batchfed_lab.cli_fed`) and the magics
(:mod:`batchfed_lab.magics`) are built from this table, so they accept the same verbs
and options by construction. No business logic here: that lives in the client.

Added by the surfaces, not listed per verb: ``--raw`` (CLI, every verb), ``-o NAME``
(magic, every verb) and ``-y/--yes`` (both, every :attr:`Verb.destructive` verb).

The table is :data:`VERBS` in :mod:`.verbs`; the handlers live by verb group
(:mod:`.federations`, :mod:`.pools`, :mod:`.jobs`, :mod:`.proxy`, :mod:`.stack`), the
shared parameters in :mod:`.params` and the result shaping in :mod:`.shape`.
"""

from __future__ import annotations

from collections.abc import Iterator
from types import SimpleNamespace
from typing import TYPE_CHECKING, Any

from .params import Param, Verb
from .shape import Result, dumps
from .verbs import GROUPS, VERBS

if TYPE_CHECKING:
    from ..client import Client


__all__ = [
    "GROUPS",
    "VERBS",
    "Param",
    "Result",
    "Verb",
    "all_paths",
    "dumps",
    "params_of",
    "run",
    "usage_text",
    "with_default_verb",
]


def all_paths() -> Iterator[tuple[tuple[str, ...], Verb]]:
    """Every word path (names and aliases) with its verb."""
    for v in VERBS:
        yield v.words, v
        for alias in v.aliases:
            yield alias, v


def with_default_verb(argv: list[str]) -> list[str]:
    """``jobs FED …`` → ``jobs list FED …`` (a group's default verb when none is named)."""
    if argv and argv[0] in GROUPS and GROUPS[argv[0]]["default"]:
        subs = {v.words[1] for v in VERBS if len(v.words) == 2 and v.words[0] == argv[0]}
        if len(argv) == 1 or (argv[1] not in subs and argv[1] not in ("-h", "--help")):
            return [argv[0], GROUPS[argv[0]]["default"], *argv[1:]]
    return argv


def params_of(verb: Verb, surface: str) -> tuple[Param, ...]:
    """The verb's parameters plus those a surface adds (``-y`` everywhere it is destructive,
    ``--raw`` in the CLI, ``-o`` in the magic)."""
    extra: list[Param] = []
    if verb.destructive:
        extra.append(Param("yes", ("-y", "--yes"), kind="flag", help="do not ask for confirmation"))
    if surface == "cli":
        extra.append(Param("raw", ("--raw",), kind="flag", help="print JSON"))
    else:
        extra.append(Param("out", ("-o", "--out"), metavar="NAME", help="store the result in the user namespace as NAME"))
    return (*verb.params, *extra)


def run(verb: Verb, client: Client, args: dict[str, Any]) -> Result:
    """Run a verb with parsed arguments (surface-only keys are ignored)."""
    known = {p.dest for p in verb.params}
    ns = SimpleNamespace(**{k: v for k, v in args.items() if k in known or k == "cell"})
    return verb.run(client, ns)


def usage_text() -> str:
    """Every verb with its options, one block each: the help of ``%fed`` and docs/cli.md."""
    lines = ["%fed VERB [ARGS] — the same verbs and options as `batchfed fed …`.", ""]
    for v in VERBS:
        names = " | ".join(" ".join(p) for p in (v.words, *v.aliases))
        lines.append(f"  {names}  {_synopsis(v)}")
        lines.append(
            f"      {v.summary}"
            + (" (confirm with -y/--yes)" if v.destructive else "")
            + (" (cell body: jobs YAML)" if v.cell else "")
        )
    lines += [
        "",
        "`jobs ID …` is short for `jobs list ID …`. Every verb also takes -o NAME (store the result",
        "in the user namespace). Failures raise one-line errors (papermill fails the run).",
        "`%fed VERB -h` shows a verb's options. `%%fed submit FED [--wait] [-o NAME]`: the cell is jobs YAML;",
        "{name} in it is replaced by the user variable `name`, as a YAML value ({{name}} for a literal {name}).",
    ]
    return "\n".join(lines)


def _synopsis(v: Verb) -> str:
    parts = []
    for p in v.params:
        if p.positional:
            parts.append("[FILE]" if p.dest == "file" else (p.metavar or p.dest.upper()))
        elif p.kind == "flag":
            parts.append(f"[{p.flags[0]}]")
        else:
            dots = " …" if p.kind == "multi" else ""
            meta = p.metavar or ("{" + ",".join(p.choices) + "}" if p.choices else "VALUE")
            item = f"{p.flags[0]} {meta}{dots}"
            parts.append(item if p.required else f"[{item}]")
    return " ".join(parts)
