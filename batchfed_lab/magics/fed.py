"""``%fed`` / ``%%fed``: the verbs of :mod:`batchfed_lab.commands` in a notebook.

The parser is built from the same table as ``batchfed fed …`` with
``IPython.core.magic_arguments.MagicArgumentParser`` (argparse whose errors raise
``UsageError``). Listings return DataFrames, ``submit`` a
:class:`~batchfed_lab.results.Submission`; other verbs print one line. ``-o NAME`` stores
the result in the user namespace. Every failure raises — a ``UsageError`` for bad
arguments, our own exception (shown as one line, no traceback) otherwise — so a papermill
run fails instead of reporting success.

Cell bodies (``%%fed submit FED``, ``%%fed explain FED``) are jobs YAML. ``{name}``
is replaced by the user variable ``name`` when ``name`` is a Python identifier that names
one, inserted as a YAML scalar (:mod:`.substitute`); ``{{name}}`` gives a literal ``{name}``;
everything else is left alone: ``${HOME}``, sweep placeholders ``{0}`` / ``{1:03d}``, YAML
flow mappings ``{a: b}`` and names that are not user variables.
"""

from __future__ import annotations

import os
import shlex
import sys
from argparse import ArgumentTypeError
from pathlib import Path
from typing import Any

from IPython.core.error import UsageError
from IPython.core.magic import Magics, line_cell_magic, magics_class
from IPython.core.magic_arguments import MagicArgumentParser
from IPython.utils.text import dedent

from .. import commands
from ..client import Client, connect, default_home
from ..commands import Param, Verb
from ..errors import BatchfedError
from ..results import TextOutput
from .substitute import substitute

__all__ = ["FedMagics", "build_parser", "substitute"]


def _type(p: Param) -> Any:
    """argparse's ``type`` for ``p``: a number is also checked against :meth:`Param.refusal`."""
    if p.minimum is None:
        return p.type

    def bounded(text: str) -> Any:
        number = p.type(text)  # not a number: argparse says "invalid int value: 'x'" as usual
        problem = p.refusal(number, text)
        if problem:
            raise ArgumentTypeError(problem)
        return number

    bounded.__name__ = p.type.__name__  # argparse names the type by it ("invalid int value")
    return bounded


def _add(parser: MagicArgumentParser, p: Param) -> None:
    if p.positional:
        parser.add_argument(
            p.dest, nargs=None if p.required else "?", type=_type(p), choices=p.choices, metavar=p.metavar, help=p.help
        )
    elif p.kind == "flag":
        parser.add_argument(*p.flags, dest=p.dest, action="store_true", help=p.help)
    elif p.kind == "optional":
        parser.add_argument(
            *p.flags, dest=p.dest, nargs="?", const=p.const, default=p.default, choices=p.choices, metavar=p.metavar, help=p.help
        )
    elif p.kind == "multi":
        # default None, not []: argparse would share one list between parses
        parser.add_argument(*p.flags, dest=p.dest, action="append", type=_type(p), metavar=p.metavar, help=p.help)
    else:
        parser.add_argument(
            *p.flags,
            dest=p.dest,
            type=_type(p),
            default=p.default,
            required=p.required,
            choices=p.choices,
            metavar=p.metavar,
            help=p.help,
        )


def build_parser() -> tuple[MagicArgumentParser, dict[tuple[str, ...], MagicArgumentParser]]:
    """The ``%fed`` parser and, per word path, the parser of that verb or group."""
    top = MagicArgumentParser(prog="fed", description="Federations from a notebook.")  # the formatter adds the %
    top.allow_abbrev = False  # as click: an option is spelled out in full
    words = top.add_subparsers(dest="_word0", metavar="VERB")
    by_path: dict[tuple[str, ...], MagicArgumentParser] = {(): top}
    nested: dict[str, Any] = {}
    for path, verb in commands.all_paths():
        if len(path) == 2:
            if path[0] not in nested:
                group = words.add_parser(path[0], help=commands.GROUPS[path[0]]["help"])
                group.allow_abbrev = False
                by_path[(path[0],)] = group
                nested[path[0]] = group.add_subparsers(dest="_word1", metavar="VERB")
            parser = nested[path[0]].add_parser(path[1], help=verb.summary, description=verb.summary)
        else:
            parser = words.add_parser(path[0], help=verb.summary, description=verb.summary)
        parser.allow_abbrev = False
        parser.set_defaults(_verb=verb)
        for p in commands.params_of(verb, "magic"):
            _add(parser, p)
        by_path[path] = parser
    return top, by_path


def _raise_one_line(exc: BatchfedError) -> None:
    """Re-raise ``exc`` so IPython shows ``Type: message`` instead of a traceback; it is
    still an error output, so papermill fails the run."""
    line = f"{type(exc).__name__}: {exc}"
    exc._render_traceback_ = lambda: [line]  # type: ignore[attr-defined]  # IPython's hook for a one-line error
    raise exc


@magics_class
class FedMagics(Magics):
    """``%fed`` and ``%%fed``. The client is connected lazily to ``$BATCHFED_HOME`` (again
    when it changes), or is the one given."""

    def __init__(self, shell: Any = None, client: Client | None = None):
        super().__init__(shell)
        self._client = client
        self._own_client = client is None
        self._parsers: tuple[MagicArgumentParser, dict[tuple[str, ...], MagicArgumentParser]] | None = None

    # -- plumbing --------------------------------------------------------------------
    @property
    def client(self) -> Client:
        if self._own_client:
            home = default_home().expanduser().absolute()
            if self._client is None or self._client.workspace.path != home:
                if self._client is not None:
                    self._client.close()
                self._client = connect(home)
        assert self._client is not None
        return self._client

    def _parser(self) -> tuple[MagicArgumentParser, dict[tuple[str, ...], MagicArgumentParser]]:
        if self._parsers is None:
            self._parsers = build_parser()
        return self._parsers

    def _help(self, argv: list[str]) -> TextOutput:
        _, by_path = self._parser()
        words = tuple(a for a in argv if not a.startswith("-"))
        for n in (2, 1):
            if len(words) >= n and words[:n] in by_path:
                return TextOutput(by_path[words[:n]].format_help())
        return TextOutput(commands.usage_text() + USE_HELP)

    # -- the magic -------------------------------------------------------------------
    @line_cell_magic
    def fed(self, line: str, cell: str | None = None) -> Any:
        try:
            # shell-like words; a trailing "# comment" is dropped, as in a terminal
            argv = commands.with_default_verb(shlex.split(line, comments=True))
        except ValueError as exc:  # unbalanced quotes
            raise UsageError(f"%fed: cannot split the arguments: {exc}") from None
        if argv[:1] == ["use"]:
            return self._use(argv[1:])
        if not argv or "-h" in argv or "--help" in argv or argv[0] == "help":
            return self._help(argv[1:] if argv and argv[0] == "help" else argv)
        top, _ = self._parser()
        ns = vars(top.parse_args(argv))
        verb: Verb | None = ns.pop("_verb", None)
        if verb is None:
            raise UsageError(f"%fed {' '.join(argv)}: name a verb; `%fed?` lists them")
        args: dict[str, Any] = {
            k: (() if v is None and self._is_multi(verb, k) else v) for k, v in ns.items() if not k.startswith("_")
        }
        out = args.pop("out", None)
        if out is not None and not out.isidentifier():
            raise UsageError(f"-o {out!r}: not a Python identifier")
        if cell is not None:
            if verb.cell is None:
                raise UsageError(f"%%fed {verb.name} takes no cell body; use %fed {verb.name} …")
            args[verb.cell] = substitute(cell, self.shell.user_ns if self.shell is not None else {})
        if verb.asks(args) and not args.pop("yes", False):
            raise UsageError(f"%fed {verb.name} is destructive and a notebook cannot ask: add -y/--yes")
        try:
            result = commands.run(verb, self.client, args)
        except BatchfedError as exc:
            _raise_one_line(exc)
        for w in result.warnings:
            print(f"warning: {w}", file=sys.stderr)
        if out is not None and self.shell is not None:
            self.shell.user_ns[out] = result.value
        if result.stream is not None:
            self._print_stream(result.stream)
            return None
        if result.rich:
            return result.value
        print(result.text)
        return None

    # -- %fed use: the notebook's workspace ----------------------------------------------
    def _use(self, argv: list[str]) -> None:
        """Set ``$BATCHFED_HOME`` of this kernel, so ``%fed``, ``connect()`` and ``!batchfed``
        all use the workspace; a relative path starts at the kernel's folder."""
        if len(argv) > 1 or any(a.startswith("-") for a in argv):
            raise UsageError(f"%fed use {' '.join(argv)}: give one workspace folder (or none to show it)")
        if argv:
            if not self._own_client:
                raise UsageError("%fed use: this %fed was given its client; connect another one instead")
            os.environ["BATCHFED_HOME"] = str(Path(argv[0]).expanduser().absolute())
        print(f"workspace: {default_home().expanduser().absolute()}")

    @staticmethod
    def _print_stream(stream: Any) -> None:
        """Print text as it arrives (``--follow``) until it ends; interrupting the kernel ends it."""
        try:
            for piece in stream:
                print(piece, end="", flush=True)
        except KeyboardInterrupt:
            pass
        except BatchfedError as exc:
            _raise_one_line(exc)
        finally:
            getattr(stream, "close", lambda: None)()

    @staticmethod
    def _is_multi(verb: Verb, dest: str) -> bool:
        return any(p.dest == dest and p.kind == "multi" for p in verb.params)


USE_HELP = """

`%fed use [PATH]` chooses this kernel's workspace (it sets $BATCHFED_HOME, so %fed,
batchfed_lab.connect() and !batchfed all use it; a relative PATH starts at the notebook's
folder); without PATH it shows the workspace in use."""

FedMagics.fed.__doc__ = dedent(commands.usage_text() + USE_HELP)
