"""The verb table: every verb of ``batchfed fed …`` and ``%fed …`` with its parameters, in
the order ``usage_text()`` and the CLI's help list them, and the word groups."""

from __future__ import annotations

from typing import Any

from .accounting import cost, share
from .data import REMOTE, STORAGE, data_delete, data_download, data_list, data_upload
from .federations import create_federation, destroy_federation, list_federations
from .jobs import WAIT, explain, jobs_add, jobs_list, jobs_zap, output, removal, results, task_logs, tasks
from .params import (
    ACCOUNT,
    FED,
    JOB_ID,
    JOB_SELECTORS,
    JOBS,
    POOL_CONFIG,
    POOL_YAML,
    PROXY_CONFIG,
    PROXY_CONFIG_REQUIRED,
    PROXY_ID,
    RECURRENCE_JOB_ID,
    RECURRENCES_OF,
    SCHEDULE_ID,
    SERVICE_URL,
    STANDBYS,
    WHAT_IF,
    YAML_FILE,
    Param,
    Verb,
    ack_timeout,
)
from .pools import pool_add, pool_create, pool_delete, pool_list, pool_remove, pool_resize
from .proxy import proxy_create, proxy_destroy, proxy_logs, proxy_resume, proxy_start, proxy_status, proxy_stop, proxy_suspend
from .stack import down, up

VERBS: tuple[Verb, ...] = (
    Verb(
        ("proxy", "start"),
        "start the proxy in the background (idempotent)",
        (
            PROXY_CONFIG,
            Param("standby", ("--standby",), kind="flag", help="start one more proxy as a standby (HA)"),
        ),
        proxy_start,
        details="It outlives the terminal or kernel that started it.",
    ),
    Verb(("proxy", "status"), "is a proxy running, is it the leader, heartbeat, counters", (), proxy_status),
    Verb(
        ("proxy", "suspend"),
        "stop processing actions; metadata and queues are kept",
        (ack_timeout(10),),
        proxy_suspend,
        details="Reaches proxies on any machine sharing the store; reports which acknowledged.",
    ),
    Verb(("proxy", "resume"), "resume processing actions", (ack_timeout(10),), proxy_resume),
    Verb(
        ("proxy", "stop"),
        "stop the proxy gracefully",
        (
            Param("all", ("--all",), kind="flag", help="stop every proxy sharing the store"),
            PROXY_ID,
            ack_timeout(40),
        ),
        proxy_stop,
        details="A proxy of this machine is signalled; one elsewhere obeys a stop request in the store.",
    ),
    Verb(
        ("proxy", "logs"),
        "show the tail of the proxy log",
        (
            Param("lines", ("-n", "--lines"), type=int, default=50, minimum=0, metavar="N", help="lines to show (default 50)"),
            Param("follow", ("-f", "--follow"), kind="flag", help="keep printing new lines until the proxy stops"),
            PROXY_ID,
        ),
        proxy_logs,
        details="A proxy of another machine is read from its log blobs (Azure store, logging.persistence).",
    ),
    Verb(
        ("proxy", "create"),
        "deploy the proxy to Azure Container Instances with a managed identity and narrow roles",
        (PROXY_CONFIG_REQUIRED, STANDBYS, WHAT_IF),
        proxy_create,
        details="federation.yaml gives location, resource_group, hostname_prefix and vm_size (docs/azure.md).",
        dry_run="what_if",
    ),
    Verb(
        ("proxy", "destroy"),
        "remove the deployed proxies' container groups and role assignments (federation data is kept)",
        (
            PROXY_CONFIG_REQUIRED,
            STANDBYS,
            WHAT_IF,
            Param("purge", ("--purge",), kind="flag", help="also destroy every federation's metadata in the store"),
        ),
        proxy_destroy,
        destructive="remove the proxy deployment of {config} from Azure?",
        dry_run="what_if",
    ),
    Verb(
        ("create",),
        "create a federation",
        (
            FED,
            Param("no_unique_job_ids", ("--no-unique-job-ids",), kind="flag", help="allow a job id to be submitted again"),
            Param("force", ("--force",), kind="flag", help="replace an existing federation's settings"),
        ),
        create_federation,
    ),
    Verb(
        ("destroy",),
        "remove a federation and all its metadata (Batch jobs are kept)",
        (
            FED,
            Param("delete_jobs", ("--delete-jobs",), kind="flag", help="first delete the Batch jobs the federation placed"),
        ),
        destroy_federation,
        destructive="destroy federation {federation_id} and all its metadata?",
    ),
    Verb(
        ("list",),
        "federations with their pools and action counts",
        (Param("federation_ids", ("--federation-id",), kind="multi", metavar="ID", help="only this federation (repeatable)"),),
        list_federations,
    ),
    Verb(
        ("pool", "add"),
        "add pools to a federation",
        (
            FED,
            Param("pool_configs", ("--pool-config",), kind="multi", metavar="FILE", help="pool.yaml (repeatable)"),
            Param("pool_ids", ("--pool-id",), kind="multi", metavar="P", help="pool id (repeatable)"),
            SERVICE_URL,
            ACCOUNT,
            Param("create", ("--create",), kind="flag", help="first create pools from their pool.yaml where missing"),
        ),
        pool_add,
    ),
    Verb(
        ("pool", "remove"),
        "remove pools from a federation",
        (
            FED,
            Param("pool_ids", ("--pool-id",), kind="multi", metavar="P", help="pool id (repeatable)"),
            Param("all", ("--all",), kind="flag", help="every pool of the federation"),
            SERVICE_URL,
        ),
        pool_remove,
        destructive="remove pools from federation {federation_id}?",
    ),
    Verb(
        ("pool", "list"),
        "the pools of a federation (ID) or of a Batch account, with live capacity",
        (
            Param("federation_id", metavar="ID", help="federation id (without it: the pools of a Batch account)"),
            SERVICE_URL,
            ACCOUNT,
        ),
        pool_list,
        aliases=(("pools",),),
    ),
    Verb(
        ("pool", "create"),
        "create a pool in a Batch account from its pool.yaml",
        (
            POOL_YAML,
            SERVICE_URL,
            ACCOUNT,
            Param("exists_ok", ("--exists-ok",), kind="flag", help="an existing pool with this id is not an error"),
        ),
        pool_create,
    ),
    Verb(
        ("pool", "delete"),
        "delete the pool a pool.yaml names from its Batch account (gone already is fine)",
        (
            POOL_YAML,
            SERVICE_URL,
            ACCOUNT,
        ),
        pool_delete,
    ),
    Verb(
        ("pool", "resize"),
        "resize the pool a pool.yaml names to its vm_count (or the given targets)",
        (
            POOL_YAML,
            SERVICE_URL,
            ACCOUNT,
            Param(
                "dedicated", ("--dedicated",), type=int, minimum=0, metavar="N", help="target dedicated nodes (default: vm_count)"
            ),
            Param(
                "low_priority",
                ("--low-priority",),
                type=int,
                minimum=0,
                metavar="N",
                help="target low-priority nodes (default: vm_count)",
            ),
        ),
        pool_resize,
    ),
    Verb(
        ("jobs", "add"),
        "validate jobs.yaml and enqueue its jobs",
        (
            FED,
            YAML_FILE,
            JOBS,
            POOL_CONFIG,
            WAIT,
            Param(
                "timeout",
                ("--timeout",),
                type=float,
                default=60.0,
                minimum=0,
                metavar="S",
                help="seconds --wait waits (default 60)",
            ),
        ),
        jobs_add,
        aliases=(("submit",),),
        cell="cell",
    ),
    Verb(
        ("jobs", "list"),
        "placed jobs (default), queued or blocked actions",
        (
            FED,
            JOB_ID,
            SCHEDULE_ID,
            Param("queued", ("--queued",), kind="flag", help="actions not processed yet, FIFO per job"),
            Param("blocked", ("--blocked",), kind="flag", help="blocked and failed actions with per-pool verdicts"),
            Param("recurrences", ("--recurrences",), kind="flag", help="with --jobschedule-id: the schedule's recurrence jobs"),
            Param("user", ("--user",), metavar="NAME", help="only what this submitter enqueued"),
        ),
        jobs_list,
    ),
    Verb(
        ("jobs", "term"),
        "enqueue terminate actions",
        (FED, *JOB_SELECTORS),
        removal("terminate"),
        destructive="terminate the selected jobs of federation {federation_id}?",
    ),
    Verb(
        ("jobs", "del"),
        "enqueue delete actions",
        (FED, *JOB_SELECTORS),
        removal("delete"),
        destructive="delete the selected jobs of federation {federation_id}?",
    ),
    Verb(
        ("jobs", "zap"),
        "drop one queued or blocked action for good",
        (
            FED,
            Param("unique_id", ("--unique-id",), required=True, metavar="U", help="unique id of the action"),
        ),
        jobs_zap,
        destructive="zap action {unique_id} of federation {federation_id}? It cannot be recovered",
    ),
    Verb(
        ("explain",),
        "dry run: per-pool verdicts and the pool that would be chosen now",
        (
            FED,
            YAML_FILE,
            JOBS,
            POOL_CONFIG,
            Param("policy", ("--policy",), default="largest-fit", choices=("largest-fit", "best-fit"), help="pool choice policy"),
        ),
        explain,
        cell="cell",
    ),
    Verb(
        ("tasks",),
        "tasks of a job (or of a job schedule's recurrences): state, exit code, node, times",
        (FED, RECURRENCE_JOB_ID, RECURRENCES_OF),
        tasks,
    ),
    Verb(
        ("output",),
        "a task's stdout (or stderr)",
        (
            FED,
            RECURRENCE_JOB_ID,
            Param(
                "schedule_id",
                ("--jobschedule-id",),
                metavar="S",
                help="instead of --job-id: the task of the newest recurrence of job schedule S that has it",
            ),
            Param("task_id", ("--task-id",), required=True, metavar="T", help="task id"),
            Param("stderr", ("--stderr",), kind="flag", help="stderr instead of stdout"),
            Param(
                "max_bytes",
                ("--max-bytes",),
                type=int,
                default=1 << 20,
                minimum=0,
                metavar="N",
                help="read at most N bytes (default 1 MiB)",
            ),
        ),
        output,
    ),
    Verb(
        ("logs",),
        "the stdout and stderr of a job's tasks, as [job/task] lines",
        (
            FED,
            Param("job_id", ("--job-id",), required=True, metavar="J", help="job id"),
            Param("follow", ("-f", "--follow"), kind="flag", help="keep printing new lines until every task has completed"),
            Param("stdout_only", ("--stdout",), kind="flag", help="stdout only"),
        ),
        task_logs,
    ),
    Verb(
        ("results",),
        "the blobs a job's tasks wrote through output_data (task, blob path, size, modified)",
        (
            FED,
            Param("job_id", ("--job-id",), required=True, metavar="J", help="job id"),
            Param("download", ("--download",), metavar="DIR", help="also download them into DIR/<container>/<blob>"),
        ),
        results,
    ),
    Verb(
        ("data", "upload"),
        "upload a file or a folder's files to a storage account",
        (STORAGE, REMOTE, Param("local", metavar="LOCAL", required=True, help="file or folder to upload")),
        data_upload,
        details="A file goes to container/path (into path/ when REMOTE ends with /); a folder's files keep their paths.",
    ),
    Verb(
        ("data", "download"),
        "download a blob, or every blob under a path, from a storage account",
        (STORAGE, REMOTE, Param("local", metavar="LOCAL", help="file or folder to write (default: the current folder)")),
        data_download,
    ),
    Verb(
        ("data", "list"),
        "blobs of a container whose names start with a path: size, last modified",
        (STORAGE, REMOTE),
        data_list,
    ),
    Verb(
        ("data", "delete"),
        "delete a blob, or every blob under a path, in a storage account",
        (STORAGE, REMOTE),
        data_delete,
        destructive="delete {remote} from storage account {storage}?",
    ),
    Verb(
        ("cost",),
        "estimated cost of the federation's placed tasks (list prices x run times)",
        (
            FED,
            Param("by", ("--by",), choices=("user", "job", "pool"), help="sum by user, job or pool (default: one row per task)"),
        ),
        cost,
        details="Estimates from the price table (docs/accounting.md), not a bill.",
    ),
    Verb(
        ("share",),
        "fair share of the federation's users: shares, recent usage, factor, queued and running work",
        (FED,),
        share,
        details="Like Slurm's sshare; usage and factors are those the leading proxy publishes.",
    ),
    Verb(
        ("up",),
        "start the embedded stack: localbatch, the storage account local (Azurite) and the proxy",
        (PROXY_CONFIG,),
        up,
        root=True,
    ),
    Verb(
        ("down",),
        "stop every proxy, localbatch and the embedded Azurite of the workspace (no orphans)",
        (
            Param(
                "if_started_here",
                ("--if-started-here",),
                kind="flag",
                help="only if this process (kernel) started the stack with up; else leave it running",
            ),
        ),
        down,
        root=True,
    ),
)

#: word groups and their default verb (``%fed jobs FED`` = ``%fed jobs list FED``); ``root``: the CLI
#: offers the group at the top too (``batchfed pool …`` = ``batchfed fed pool …``)
GROUPS: dict[str, dict[str, Any]] = {
    "proxy": {"help": "control the federation proxy", "default": None, "root": False},
    "pool": {
        "help": "the pools of a federation (add, remove, list) and of a Batch account (create, delete, resize, list)",
        "default": None,
        "root": True,
    },
    "jobs": {"help": "add, list, terminate, delete and zap federation jobs", "default": "list", "root": False},
    "data": {"help": "upload, download, list and delete blobs in storage accounts by name", "default": None, "root": True},
}
