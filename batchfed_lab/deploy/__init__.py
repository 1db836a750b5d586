"""The proxy's Azure deployment: ``fed proxy create | destroy``.

One Azure Container Instances group per proxy (a leader, ``--standby N`` more), each with a
system-assigned managed identity holding data-plane roles on the federation's storage
account, its Batch accounts and the workspace's data storage accounts only (never a
subscription). The ARM template is built from the
readable pieces in ``arm/``; ``bootstrap.py`` is what each container runs. See docs/azure.md.
"""

from __future__ import annotations

from .azure import AzureApi
from .operations import DeployReport, create, destroy
from .plan import ROLES, DeployPlan, make_plan
from .template import build_template

__all__ = ["ROLES", "AzureApi", "DeployPlan", "DeployReport", "build_template", "create", "destroy", "make_plan"]
