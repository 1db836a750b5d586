"""The words of the verb table: :class:`Param` (one argument), :class:`Verb` (one command)
and the parameters several verbs share."""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass
from types import SimpleNamespace
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from ..client import Client
    from .shape import Result


@dataclass(frozen=True)
class Param:
    """One argument. ``flags`` empty → positional (optional unless ``required``).
    ``kind``: ``value`` (one value), ``multi`` (repeatable option), ``flag`` (switch),
    ``optional`` (an option whose value may be left out: alone it means ``const``)."""

    dest: str
    flags: tuple[str, ...] = ()
    help: str = ""
    kind: str = "value"
    type: type = str
    default: Any = None
    required: bool = False
    metavar: str | None = None
    choices: tuple[str, ...] | None = None
    #: a number below this is refused (every ``int`` / ``float`` parameter sets one); a float
    #: must also be finite: no nan, no inf
    minimum: float | None = None
    const: Any = None  # the value of an ``optional`` option given alone (``--wait`` = ``--wait placed``)

    @property
    def positional(self) -> bool:
        return not self.flags

    def refusal(self, number: float, text: str) -> str | None:
        """Why ``number`` (parsed from ``text``) is out of this parameter's range, or None.
        Each surface puts it after its own name for the option, as for a value that is no number."""
        shown = " ".join(text.split())[:40]
        if isinstance(number, float) and not math.isfinite(number):
            low = "" if self.minimum is None else f" of {self.minimum:g} or more"
            return f"{shown}: must be a finite number{low}"
        if self.minimum is not None and number < self.minimum:
            return f"{shown}: must be {self.minimum:g} or more"
        return None


@dataclass(frozen=True)
class Verb:
    """One command. ``aliases`` are other word paths for it (``submit`` for ``jobs add``);
    ``cell`` is the parameter a ``%%fed`` cell body fills; ``destructive`` is the
    confirmation prompt (formatted with the arguments); ``root`` puts it at the top of the
    CLI (``batchfed up``) instead of under ``batchfed fed``; ``dry_run`` names the flag that
    turns it into a dry run (``--what-if``), which needs no confirmation."""

    words: tuple[str, ...]
    summary: str
    params: tuple[Param, ...]
    run: Callable[[Client, SimpleNamespace], Result]
    aliases: tuple[tuple[str, ...], ...] = ()
    cell: str | None = None
    destructive: str | None = None
    root: bool = False
    details: str = ""
    dry_run: str | None = None  # a flag that makes it only show what it would do: no confirmation then

    def asks(self, args: dict[str, Any]) -> bool:
        """Must the user confirm before this runs with these arguments?"""
        return bool(self.destructive) and not (self.dry_run and args.get(self.dry_run))

    @property
    def name(self) -> str:
        return " ".join(self.words)

    def prompt(self, args: SimpleNamespace) -> str:
        return (self.destructive or "").format(**vars(args))


FED = Param("federation_id", metavar="ID", required=True, help="federation id")
YAML_FILE = Param("file", metavar="FILE", help="jobs.yaml (same as --jobs)")
JOBS = Param("jobs", ("--jobs",), metavar="FILE", help="jobs.yaml (in %%fed: the cell body instead)")
POOL_CONFIG = Param("pool_config", ("--pool-config",), metavar="FILE", help="pool.yaml: native/windows defaults for the jobs")
JOB_ID = Param("job_id", ("--job-id",), metavar="J", help="job id")
SCHEDULE_ID = Param("schedule_id", ("--jobschedule-id",), metavar="S", help="job schedule id")
RECURRENCE_JOB_ID = Param("job_id", ("--job-id",), metavar="J", help="job id; a job schedule's recurrence job is S:job-N")
RECURRENCES_OF = Param(
    "schedule_id", ("--jobschedule-id",), metavar="S", help="instead of --job-id: every recurrence job of job schedule S"
)
PROXY_ID = Param("proxy_id", ("--proxy-id",), metavar="ID", help="one proxy (see `fed proxy status`), here or elsewhere")


def ack_timeout(seconds: int) -> Param:
    return Param(
        "timeout",
        ("--timeout",),
        type=float,
        default=float(seconds),
        minimum=0,
        metavar="S",
        help=f"seconds to wait for the proxies to obey (default {seconds})",
    )


PROXY_CONFIG = Param("config", ("--config",), metavar="FILE", help="federation.yaml (proxy options)")
PROXY_CONFIG_REQUIRED = Param("config", ("--config",), required=True, metavar="FILE", help="federation.yaml (proxy options)")
STANDBYS = Param(
    "standby", ("--standby",), type=int, default=0, minimum=0, metavar="N", help="standby proxies besides the leader (HA)"
)
WHAT_IF = Param("what_if", ("--what-if",), kind="flag", help="show what would be deployed or removed; change nothing")
SERVICE_URL = Param(
    "batch_service_url",
    ("--batch-service-url",),
    metavar="URL",
    help="https://<account>.<region>.batch.azure.com, or a localbatch account URL",
)
ACCOUNT = Param(
    "account", ("--account",), metavar="NAME", help="localbatch account instead of --batch-service-url (default: local)"
)
POOL_YAML = Param("pool_config", ("--pool-config",), required=True, metavar="FILE", help="pool.yaml")
JOB_SELECTORS = (
    Param("job_ids", ("--job-id",), kind="multi", metavar="J", help="job id (repeatable)"),
    Param("schedule_ids", ("--jobschedule-id",), kind="multi", metavar="S", help="job schedule id (repeatable)"),
    Param("all_jobs", ("--all-jobs",), kind="flag", help="every job located in the federation"),
    Param("all_schedules", ("--all-jobschedules",), kind="flag", help="every job schedule located in the federation"),
    Param("force", ("--force",), kind="flag", help="enqueue even for ids without a location"),
)
