"""The CLI and ``%fed`` come from one table: same verbs, same options, same help."""

from __future__ import annotations

import click
import pytest

from batchfed_lab import commands
from batchfed_lab.cli import main
from batchfed_lab.magics.fed import build_parser

PATHS = [path for path, _ in commands.all_paths()]


def _cli_command(path: tuple[str, ...]) -> click.Command:
    cmd: click.Command = main
    for word in path if path in {("up",), ("down",)} else ("fed", *path):
        cmd = cmd.commands[word]  # type: ignore[attr-defined]
    return cmd


@pytest.mark.parametrize("path", PATHS, ids=" ".join)
def test_same_options_in_both_surfaces(path: tuple[str, ...]) -> None:
    cli = _cli_command(path)
    cli_opts = {o for p in cli.params if isinstance(p, click.Option) for o in p.opts} - {"--raw"}
    cli_args = [p.name for p in cli.params if isinstance(p, click.Argument)]
    _, parsers = build_parser()
    magic = parsers[path]
    magic_opts = {o for a in magic._actions for o in a.option_strings} - {"-o", "--out"}
    magic_args = [a.dest for a in magic._actions if not a.option_strings]
    assert cli_opts == magic_opts and cli_args == magic_args


def test_every_verb_of_spec_section_2_is_there() -> None:
    spec = [
        "proxy start",
        "proxy status",
        "proxy suspend",
        "proxy resume",
        "proxy stop",
        "proxy logs",
        "create",
        "destroy",
        "list",
        "pool add",
        "pool remove",
        "jobs add",
        "jobs list",
        "jobs term",
        "jobs del",
        "jobs zap",
        "explain",
    ]
    names = {" ".join(p) for p in PATHS}
    assert set(spec) <= names and {"submit", "pools", "tasks", "up", "down"} <= names


def test_destructive_verbs_take_yes() -> None:
    destructive = {v.name for v in commands.VERBS if v.destructive}
    assert destructive == {"destroy", "pool remove", "jobs term", "jobs del", "jobs zap", "proxy destroy", "data delete"}
    for v in commands.VERBS:
        assert any(p.dest == "yes" for p in commands.params_of(v, "cli")) is bool(v.destructive)


def test_root_groups_are_the_fed_groups() -> None:
    """`batchfed pool …` (the pools of a Batch account, and of a federation) is `batchfed fed pool …`;
    `batchfed data …` is `batchfed fed data …`."""
    roots = [name for name, spec in commands.GROUPS.items() if spec["root"]]
    assert roots == ["pool", "data"]
    for name in roots:
        top, under_fed = main.commands[name], main.commands["fed"].commands[name]  # type: ignore[attr-defined]
        assert sorted(top.commands) == sorted(under_fed.commands)  # type: ignore[attr-defined]
    assert {"create", "delete", "resize", "list", "add", "remove"} <= set(main.commands["pool"].commands)  # type: ignore[attr-defined]
    assert {"upload", "download", "list", "delete"} == set(main.commands["data"].commands)  # type: ignore[attr-defined]


def _numbers() -> list[tuple[tuple[str, ...], commands.Param]]:
    return [(path, p) for path, verb in commands.all_paths() for p in verb.params if p.type in (int, float) and not p.choices]


def test_every_number_of_the_table_has_bounds() -> None:
    """A numeric option says which values make sense, so neither surface takes -1 or nan."""
    unbounded = [f"{' '.join(path)} {p.flags[0]}" for path, p in _numbers() if p.minimum is None]
    assert _numbers() and not unbounded, unbounded


def _argv(path: tuple[str, ...], p: commands.Param, value: str) -> list[str]:
    """The verb's required arguments (any word parses) and ``p`` set to ``value`` (``--opt=-inf``:
    argparse would take a lone ``-inf`` for an option)."""
    verb = dict(commands.all_paths())[path]
    argv = []
    for q in verb.params:
        if q.required:
            argv += ["x"] if q.positional else [q.flags[0], "x"]
    return [*argv, f"{p.flags[-1]}={value}"]


def _refusals(path: tuple[str, ...], argv: list[str]) -> tuple[str | None, str | None]:
    """What the CLI and the magic say when parsing ``argv`` (None: accepted)."""
    from IPython.core.error import UsageError

    said: list[str | None] = []
    try:
        _cli_command(path).make_context(path[-1], list(argv))
        said.append(None)
    except click.UsageError as exc:
        said.append(exc.format_message())
    try:
        build_parser()[1][path].parse_args(list(argv))
        said.append(None)
    except UsageError as exc:
        said.append(str(exc))
    return said[0], said[1]


@pytest.mark.parametrize("bad", ["-1", "nan", "inf", "-inf", "1e999"])
def test_out_of_range_numbers_are_refused_by_both_surfaces(bad: str) -> None:
    """One line naming the option and the value, in the CLI and in %fed alike."""
    for path, p in _numbers():
        if p.type is int and bad != "-1":
            continue  # not an integer at all: the integer parsing refuses it already
        cli, magic = _refusals(path, _argv(path, p, bad))
        where = f"{' '.join(path)} {p.flags[-1]}={bad}"
        for said in (cli, magic):
            assert said is not None, f"{where}: accepted"
            assert bad in said and p.flags[-1] in said and "\n" not in said, f"{where}: {said!r}"


def test_numbers_in_range_are_accepted_by_both_surfaces() -> None:
    for path, p in _numbers():
        assert _refusals(path, _argv(path, p, "0")) == (None, None), f"{' '.join(path)} {p.flags[-1]}=0"
