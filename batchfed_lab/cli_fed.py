"""``batchfed fed …``, ``batchfed up`` / ``batchfed down`` and ``batchfed pool …`` (the same
group as ``batchfed fed pool …``), built from :mod:`.commands`.

Every command: ``--raw`` prints JSON; warnings go to stderr as ``warning: …``; a failure
prints ``error: <one line>`` and exits 1. Destructive commands ask for confirmation on a
terminal, take ``-y/--yes``, and without a terminal and without ``--yes`` refuse (exit 1)
instead of waiting for input that never comes.
"""

from __future__ import annotations

import sys
from typing import Any

import click

from . import commands
from .commands import Param, Verb
from .errors import BatchfedError, ConfirmationRequired

__all__ = ["fed_group", "register"]


class _OneLineUsage(click.UsageError):
    """A usage error in one line (click prints usage, a hint and the error on three)."""

    def show(self, file: Any = None) -> None:
        where = f" (see '{self.ctx.command_path} --help')" if self.ctx is not None else ""
        click.echo(f"error: {self.format_message()}{where}", err=True)


# every command carries its help names itself: click builds a command's help option once, from
# the first context made for it, and a context made on a subcommand alone (a test, completion)
# would otherwise fix it at --help only for the rest of the process
HELP: dict[str, Any] = {"help_option_names": ["-h", "--help"]}


def _one_line(fn: Any, ctx: click.Context, *args: Any) -> Any:
    try:
        return fn(ctx, *args)
    except (_OneLineUsage, click.exceptions.NoArgsIsHelpError):
        raise
    except click.UsageError as exc:
        raise _OneLineUsage(exc.format_message(), exc.ctx or ctx) from None


class _FedCommand(click.Command):
    def parse_args(self, ctx: click.Context, args: list[str]) -> list[str]:
        return _one_line(super().parse_args, ctx, args)


class _Bounded(click.ParamType):
    """A number within the parameter's range: click's own parsing first (so text that is no
    number is refused as usual), then :meth:`Param.refusal`."""

    def __init__(self, p: Param):
        self.param = p
        self.number: click.ParamType = click.INT if p.type is int else click.FLOAT
        self.name = self.number.name

    def convert(self, value: Any, param: click.Parameter | None, ctx: click.Context | None) -> Any:
        number = self.number.convert(value, param, ctx)
        problem = self.param.refusal(number, str(value))
        if problem:
            self.fail(problem, param, ctx)
        return number


def _click_param(p: Param) -> click.Parameter:
    ptype: Any = click.Choice(p.choices) if p.choices else (_Bounded(p) if p.minimum is not None else p.type)
    if p.positional:
        metavar = p.metavar if p.required else f"[{p.metavar}]"
        return click.Argument([p.dest], required=p.required, type=ptype, metavar=metavar)
    names = [*p.flags, p.dest]
    if p.kind == "flag":
        return click.Option(names, is_flag=True, default=False, help=p.help)
    if p.kind == "multi":
        return click.Option(names, multiple=True, type=ptype, metavar=p.metavar, help=p.help)
    if p.kind == "optional":
        return click.Option(names, is_flag=False, flag_value=p.const, type=ptype, metavar=p.metavar, help=p.help)
    # click 8.3 treats an explicit default=None as a given value: a required option would pass
    extra = {} if p.default is None else {"default": p.default}
    return click.Option(names, type=ptype, required=p.required, metavar=p.metavar, help=p.help, **extra)


def _confirm(verb: Verb, prompt: str) -> None:
    if sys.stdin is None or not sys.stdin.isatty():  # click's runner swaps sys.stdin too
        raise ConfirmationRequired(f"'{verb.name}' needs confirmation and stdin is not a terminal: add -y/--yes")
    click.confirm(prompt, abort=True)


def _print_stream(stream: Any, ctx: click.Context) -> None:
    """Print text as it arrives (``--follow``) until it ends; Ctrl-C ends it quietly."""
    try:
        for piece in stream:
            click.echo(piece, nl=False)
            sys.stdout.flush()
    except KeyboardInterrupt:
        pass
    except BatchfedError as exc:
        click.echo(f"error: {exc}", err=True)
        ctx.exit(1)
    finally:
        getattr(stream, "close", lambda: None)()


def _command(verb: Verb, name: str, help_suffix: str = "") -> click.Command:
    def callback(**kwargs: Any) -> None:
        from types import SimpleNamespace

        from .client import connect

        ctx = click.get_current_context()
        raw, yes = kwargs.pop("raw", False), kwargs.pop("yes", False)
        try:
            if verb.asks(kwargs) and not yes:
                _confirm(verb, verb.prompt(SimpleNamespace(**kwargs)))
            with connect() as client:
                result = commands.run(verb, client, kwargs)
        except BatchfedError as exc:
            click.echo(f"error: {exc}", err=True)
            ctx.exit(1)
        for w in result.warnings:
            click.echo(f"warning: {w}", err=True)
        if result.stream is not None:
            _print_stream(result.stream, ctx)
            return
        click.echo(commands.dumps(result.data) if raw else result.text)

    text = verb.summary[:1].upper() + verb.summary[1:] + "." + (f"\n\n{verb.details}" if verb.details else "") + help_suffix
    return _FedCommand(
        name,
        callback=callback,
        params=[_click_param(p) for p in commands.params_of(verb, "cli")],
        help=text,
        short_help=verb.summary,
        context_settings=HELP,
    )


class _FedGroup(click.Group):
    """A group that runs its default verb when none is named (``jobs FED`` = ``jobs list FED``)."""

    def __init__(self, *args: Any, default: str | None = None, **kwargs: Any):
        super().__init__(*args, **kwargs)
        self.default = default

    def parse_args(self, ctx: click.Context, args: list[str]) -> list[str]:
        if self.default and args:
            args = commands.with_default_verb([self.name or "", *args])[1:]
        return _one_line(super().parse_args, ctx, args)

    def resolve_command(self, ctx: click.Context, args: list[str]) -> Any:
        return _one_line(super().resolve_command, ctx, args)


def _groups() -> dict[str, click.Group]:
    """One click group per word group of the table, holding its verbs and their aliases."""
    groups: dict[str, click.Group] = {
        name: _FedGroup(name, help=spec["help"], default=spec["default"], context_settings=HELP)
        for name, spec in commands.GROUPS.items()
    }
    for path, verb in commands.all_paths():
        if len(path) == 2:
            alias = path != verb.words
            groups[path[0]].add_command(_command(verb, path[1], f"\n\nSame as `fed {verb.name}`." if alias else ""))
    return groups


def fed_group(groups: dict[str, click.Group] | None = None) -> click.Group:
    """The ``fed`` group: every non-root verb of the table, aliases included."""
    fed = _FedGroup(
        "fed",
        help="Federations: proxy, pools, jobs (the verbs of `%fed` in a notebook).",
        context_settings=HELP,
    )
    for group in (groups or _groups()).values():
        fed.add_command(group)
    for path, verb in commands.all_paths():
        if len(path) == 1 and not verb.root:
            alias = path != verb.words
            fed.add_command(_command(verb, path[0], f"\n\nSame as `fed {verb.name}`." if alias else ""))
    return fed


def register(main: click.Group) -> None:
    """Add ``fed``, the root verbs (``up``, ``down``) and the root groups (``pool``) to ``batchfed``."""
    groups = _groups()
    main.add_command(fed_group(groups))
    for verb in commands.VERBS:
        if verb.root:
            main.add_command(_command(verb, verb.words[0]))
    for name, spec in commands.GROUPS.items():
        if spec["root"]:
            main.add_command(groups[name])
