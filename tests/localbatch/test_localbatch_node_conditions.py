"""localbatch causes node failures on demand (re-placement triggers): an unusable node, a
failed start task. Running tasks are requeued and the node takes no work until healed."""

from __future__ import annotations

import pytest
from azure.batch import models as bm

from batchfed_lab.errors import BatchError
from batchfed_lab.localbatch import control

from .lb_helpers import make_job, make_pool, wait_for, wait_tasks_done


@pytest.mark.parametrize("condition, count_field", [("unusable", "unusable"), ("starttaskfailed", "start_task_failed")])
def test_a_node_condition_requeues_its_tasks_and_stops_new_work(client, account, lb_workspace, condition, count_field):
    make_pool(client, dedicated=1)
    make_job(client)
    client.create_task("job", bm.BatchTaskCreateOptions(id="long", command_line="sleep 60"))
    wait_for(lambda: client.get_task("job", "long").state == bm.BatchTaskState.RUNNING, what="the task to run")
    result = control.set_node_condition(account, "pool", condition, workspace=lb_workspace)
    assert result["requeuedTasks"] == ["job/long"] and len(result["nodes"]) == 1
    task = client.get_task("job", "long")
    assert task.state == bm.BatchTaskState.ACTIVE and task.execution_info.requeue_count == 1
    assert {n.state for n in client.list_nodes("pool")} == {bm.BatchNodeState(condition)}
    (counts,) = [c for c in client.list_pool_node_counts() if c.pool_id == "pool"]
    assert getattr(counts.dedicated, count_field) == 1 and counts.dedicated.idle == 0
    client.delete_task("job", "long")
    client.create_task("job", bm.BatchTaskCreateOptions(id="short", command_line="true"))
    control.set_node_condition(account, "pool", None, workspace=lb_workspace)  # healed: the work runs
    wait_tasks_done(client, "job", 1)


def test_an_unknown_condition_is_refused(account, lb_workspace, client):
    make_pool(client, dedicated=1)
    with pytest.raises(BatchError, match="condition"):
        control.set_node_condition(account, "pool", "broken", workspace=lb_workspace)
