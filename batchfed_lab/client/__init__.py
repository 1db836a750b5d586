"""The one Python API every surface uses (CLI, magics, widgets, notebooks).

``batchfed_lab.connect()`` returns a :class:`Client` bound to a workspace. It
only writes metadata and enqueues actions; the proxy does the scheduling.
Every method raises a :class:`~batchfed_lab.errors.BatchfedError` subclass with
a one-line message on bad input, and enqueues nothing in that case.

Methods come in two flavours: records (``federations``, ``pool_snapshots``,
``locations``, ``queued``, ``tasks`` …) for programs, and ``*_frame`` twins that
return the documented pandas DataFrames of :mod:`batchfed_lab.frames` for people.
What the methods return is defined in :mod:`batchfed_lab.results`. Batch, localbatch and
the proxy are reached only through their packages' entry points (``batchfed_lab.batch``,
``batchfed_lab.localbatch``, ``batchfed_lab.proxy``), never their modules.

:class:`Client` is assembled here from one class per group of methods (:mod:`.federations`,
:mod:`.pools`, :mod:`.submit`, :mod:`.jobs`, :mod:`.tasks`, :mod:`.outputs`,
:mod:`.proxies`, :mod:`.data`), all standing on
:mod:`.base`: the workspace, its store and its Batch accounts.
"""

from __future__ import annotations

import os

from ..config import validate_file
from ..config.workspace import Workspace, default_home, open_workspace
from .accounting import AccountingMixin
from .data import DataMixin
from .federations import FederationsMixin
from .jobs import JobsMixin
from .outputs import OutputsMixin
from .pools import PoolsMixin
from .proxies import ProxiesMixin
from .submit import SubmitMixin
from .tasks import TasksMixin

__all__ = ["Client", "connect", "default_home", "validate_file"]


class Client(
    SubmitMixin, OutputsMixin, TasksMixin, JobsMixin, AccountingMixin, PoolsMixin, FederationsMixin, ProxiesMixin, DataMixin
):
    """Federations, pools, jobs, the proxy, the data and the accounting of one workspace."""


def connect(workspace: str | os.PathLike[str] | Workspace | None = None) -> Client:
    """The client of a workspace (``BATCHFED_HOME`` by default, else ``~/.batchfed``)."""
    ws = workspace if isinstance(workspace, Workspace) else open_workspace(workspace)
    return Client(ws)
