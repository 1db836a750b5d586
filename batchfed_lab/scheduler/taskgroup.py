"""Summaries of task groups: the capacity and features one add action needs."""

from __future__ import annotations

from collections.abc import Iterable, Sequence

from ..config.constraints import ContainerRegistriesConstraint
from ..config.jobs import JobSpecification, TaskDefinition
from .types import TaskGroup

_DOCKER_HUB = {"docker.io", "index.docker.io", "registry-1.docker.io"}


def image_registry(image: str) -> tuple[str | None, str | None]:
    """``myacr.azurecr.io/x:1`` → (``myacr.azurecr.io``, None); ``ns/img`` → (None, ``ns``);
    ``busybox`` → (None, None). Docker's own rule: the first path part is a registry
    when it has a dot or a colon, or is ``localhost``."""
    name = image.strip()
    if "/" not in name:
        return None, None
    first, rest = name.split("/", 1)
    if "." in first or ":" in first or first == "localhost":
        server = first.lower()
        if server in _DOCKER_HUB:
            return None, rest.split("/", 1)[0] if "/" in rest else None
        return server, None
    return None, first


def required_registry_logins(images: Iterable[str], rules: ContainerRegistriesConstraint) -> frozenset[str]:
    """Logins a pool must hold to pull ``images`` (SPEC §4.1 container_registries).

    Private registries need a login unless listed under ``public``; Docker Hub
    namespaced images need ``dockerhub-<namespace>`` only with ``private_docker_hub``.
    """
    public = set(rules.public)
    needed: set[str] = set()
    for image in images:
        server, namespace = image_registry(image)
        if server is not None:
            if server not in public:
                needed.add(server)
        elif namespace is not None and rules.private_docker_hub and "docker.io" not in public:
            needed.add(f"dockerhub-{namespace.lower()}")
    return frozenset(needed)


def summarize_tasks(tasks: Sequence[TaskDefinition], rules: ContainerRegistriesConstraint) -> TaskGroup:
    if not tasks:
        return TaskGroup(total_instances=0, task_count=0)
    counts = [t.num_instances for t in tasks]
    return TaskGroup(
        total_instances=sum(counts),
        max_instances=max(counts),
        multi_instance=any(c > 1 for c in counts),
        gpu=any(t.gpu for t in tasks),
        infiniband=any(t.infiniband for t in tasks),
        registries=required_registry_logins((t.docker_image for t in tasks if t.docker_image), rules),
        task_count=len(tasks),
    )


def summarize(job: JobSpecification) -> TaskGroup:
    return summarize_tasks(job.task_definitions, job.federation_constraints.pool.container_registries)
