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
    assert destructive == {"destroy", "pool remove", "jobs term", "jobs del", "jobs zap", "proxy destroy"}
    for v in commands.VERBS:
        assert any(p.dest == "yes" for p in commands.params_of(v, "cli")) is bool(v.destructive)


def test_root_groups_are_the_fed_groups() -> None:
    """`batchfed pool …` (the pools of a Batch account, and of a federation) is `batchfed fed pool …`."""
    roots = [name for name, spec in commands.GROUPS.items() if spec["root"]]
    assert roots == ["pool"]
    for name in roots:
        top, under_fed = main.commands[name], main.commands["fed"].commands[name]  # type: ignore[attr-defined]
        assert sorted(top.commands) == sorted(under_fed.commands)  # type: ignore[attr-defined]
        assert {"create", "delete", "resize", "list", "add", "remove"} <= set(top.commands)  # type: ignore[attr-defined]
