"""The ``batchfed`` command line: a thin shell over the library.

Every command catches :class:`~batchfed_lab.errors.BatchfedError`, prints one
line to stderr and exits non-zero — never a traceback.
"""

from __future__ import annotations

import sys
from collections.abc import Sequence

import click

from ._version import __version__
from .errors import BatchfedError, ConfigError


class _Group(click.Group):
    """Turns our errors into one line and exit code 1 for every subcommand."""

    def invoke(self, ctx: click.Context):
        try:
            return super().invoke(ctx)
        except BatchfedError as exc:
            click.echo(f"error: {exc}", err=True)
            ctx.exit(1)


@click.group(cls=_Group, context_settings={"help_option_names": ["-h", "--help"]})
@click.version_option(__version__, "--version", prog_name="batchfed")
def main() -> None:
    """batchfed — federated batch computing across Batch pools, accounts and regions."""


@main.group(cls=_Group)
def config() -> None:
    """Check configuration files."""


@config.command("validate")
@click.argument("files", nargs=-1, required=True, type=click.Path(dir_okay=True))
def config_validate(files: Sequence[str]) -> None:
    """Validate federation.yaml, pool.yaml and jobs.yaml files.

    Prints ``ok`` for a valid file, or one line per problem naming the file,
    the YAML path, the value and why. Exits 1 if any file is invalid.
    """
    from .client import validate_file

    failed = False
    for f in files:
        try:
            validate_file(f)
        except ConfigError as exc:
            failed = True
            for line in exc.problems:
                click.echo(line, err=True)
        else:
            click.echo(f"{f}: ok")
    if failed:
        sys.exit(1)


# --- the verbs of the one table (commands/verbs.py): fed …, up, down, pool … --------------
# (imports are cheap: the commands import the client and its heavy modules when they run)
from .cli_fed import register as _register_fed  # noqa: E402  (it adds its verbs to main, defined above)

_register_fed(main)
