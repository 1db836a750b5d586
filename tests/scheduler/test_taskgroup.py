"""What a task group needs: slots or nodes, GPU/IB, and registry logins."""

from __future__ import annotations

import pytest

from batchfed_lab.config import load_jobs
from batchfed_lab.config.constraints import ContainerRegistriesConstraint
from batchfed_lab.scheduler import required_registry_logins, summarize
from batchfed_lab.scheduler.taskgroup import image_registry


def job(yaml_body: str):
    return load_jobs("job_specifications:\n- id: j\n" + yaml_body).job_specifications[0]


def test_slots_needed_count_every_instance():
    g = summarize(job("  tasks:\n  - {command: a}\n  - {command: b, multi_instance: {num_instances: 3}}\n"))
    assert (g.total_instances, g.max_instances, g.multi_instance, g.task_count) == (4, 3, True, 2)


def test_sweep_tasks_each_take_a_slot():
    g = summarize(
        job("  tasks:\n  - command: run {0}\n    task_factory: {parametric_sweep: {product: [{start: 0, stop: 25}]}}\n")
    )
    assert (g.total_instances, g.multi_instance) == (25, False)


def test_gpu_and_ib_from_tasks_and_job_level():
    assert summarize(job("  gpus: all\n  tasks: [{command: a}]\n")).gpu
    assert summarize(job("  tasks: [{command: a, gpus: 2}]\n")).gpu
    assert not summarize(job("  tasks: [{command: a, gpus: disable}]\n")).gpu
    assert summarize(job("  infiniband: true\n  tasks: [{command: a}]\n")).infiniband


@pytest.mark.parametrize(
    "image,expected",
    [
        ("busybox", (None, None)),
        ("library/busybox:1", (None, "library")),
        ("alice/tool:2", (None, "alice")),
        ("myacr.azurecr.io/tool:1", ("myacr.azurecr.io", None)),
        ("localhost/tool", ("localhost", None)),
        ("registry:5000/tool", ("registry:5000", None)),
        ("docker.io/alice/tool", (None, "alice")),
    ],
)
def test_image_registry(image, expected):
    assert image_registry(image) == expected


def test_required_logins():
    images = ["busybox", "alice/tool", "myacr.azurecr.io/x", "mcr.microsoft.com/azure-cli"]
    public_only = ContainerRegistriesConstraint(public=("mcr.microsoft.com",))
    assert required_registry_logins(images, public_only) == {"myacr.azurecr.io"}
    private_hub = ContainerRegistriesConstraint(private_docker_hub=True, public=("mcr.microsoft.com",))
    assert required_registry_logins(images, private_hub) == {"myacr.azurecr.io", "dockerhub-alice"}
    assert required_registry_logins(images, ContainerRegistriesConstraint()) == {"myacr.azurecr.io", "mcr.microsoft.com"}
