"""Replay cases derived from Azure's published description of the Batch API, api-version
2025-06-01: repository Azure/azure-rest-api-specs, folder
``specification/batch/data-plane/Azure.Batch/stable/2025-06-01/`` (``BatchService.json`` and
``examples/*.json``, read 2026-12-07).

Facts, not copies: each case names the example it stands for, the request *we* send (the
example's request in substance, with our ids; placeholders ``<name>`` are filled in by the
test), the status the example answers, and the properties the example's response holds, each
with the type ``BatchService.json`` gives it (``int64-string`` is an int64 sent as a string, as
Batch sends a file's ``contentLength``). Paths use ``/`` between properties and ``[]`` for every
item of a list. Examples whose requests use properties localbatch refuses (strict mode) expect
its 400 ``UnsupportedProperty`` naming them. Operations with no example in that folder are
checked against the status and headers their ``BatchService.json`` path entry gives.
"""

from __future__ import annotations

from dataclasses import dataclass, field

FOLDER = "Azure/azure-rest-api-specs: specification/batch/data-plane/Azure.Batch/stable/2025-06-01"
NO_EXAMPLE = "BatchService.json"  # the operation's path entry; the folder has no example for it
UPDATED = ("ETag", "Last-Modified", "DataServiceId")  # what update/replace answers carry


@dataclass(frozen=True)
class Case:
    example: str  # examples/<example>.json, or NO_EXAMPLE
    method: str
    path: str  # below /accounts/<account>; may hold a query
    body: object = None
    status: int = 200
    props: dict[str, str] = field(default_factory=dict)  # property path -> type
    headers: tuple[str, ...] = ()
    refused: tuple[str, ...] = ()  # strict mode: the properties the 400 names
    pending: str = ""  # a feature another change brings: expected to fail until it lands


def _props(prefix: str, spec: str) -> dict[str, str]:
    """``"a:string b/c:int32"`` under ``prefix`` -> {prefix + "a": "string", ...}."""
    out = {}
    for item in spec.split():
        name, _, kind = item.partition(":")
        out[prefix + name] = kind
    return out


IMAGE = {"publisher": "Canonical", "offer": "0001-com-ubuntu-server-focal", "sku": "20_04-lts"}
VMC = {"imageReference": IMAGE, "nodeAgentSKUId": "batch.node.ubuntu 20.04"}
POOL_BASE = {"vmSize": "standard_a1", "virtualMachineConfiguration": VMC, "targetDedicatedNodes": 1}
DISK_SET = {"id": "/subscriptions/s/resourceGroups/r/providers/Microsoft.Compute/diskEncryptionSets/d"}

POOL = _props(
    "",
    "id:string url:string eTag:string lastModified:date-time creationTime:date-time state:string "
    "stateTransitionTime:date-time allocationState:string allocationStateTransitionTime:date-time vmSize:string "
    "resizeTimeout:duration currentDedicatedNodes:int32 currentLowPriorityNodes:int32 targetDedicatedNodes:int32 "
    "targetLowPriorityNodes:int32 enableAutoScale:bool enableInterNodeCommunication:bool startTask/commandLine:string "
    "startTask/userIdentity/autoUser/scope:string startTask/userIdentity/autoUser/elevationLevel:string "
    "startTask/maxTaskRetryCount:int32 startTask/waitForSuccess:bool taskSlotsPerNode:int32 "
    "taskSchedulingPolicy/nodeFillType:string virtualMachineConfiguration/imageReference/publisher:string "
    "virtualMachineConfiguration/imageReference/offer:string virtualMachineConfiguration/imageReference/sku:string "
    "virtualMachineConfiguration/imageReference/version:string virtualMachineConfiguration/nodeAgentSKUId:string",
)
NODE = _props(
    "",
    "id:string url:string state:string schedulingState:string stateTransitionTime:date-time lastBootTime:date-time "
    "allocationTime:date-time ipAddress:string affinityId:string vmSize:string totalTasksRun:int32 "
    "totalTasksSucceeded:int32 runningTasksCount:int32 runningTaskSlotsCount:int32 isDedicated:bool "
    "startTask/commandLine:string nodeAgentInfo/version:string nodeAgentInfo/lastUpdateTime:date-time "
    "virtualMachineInfo/imageReference/publisher:string virtualMachineInfo/imageReference/exactVersion:string",
)
START_TASK_INFO = _props("startTaskInfo/", "state:string startTime:date-time endTime:date-time exitCode:int32 retryCount:int32")
COUNTS = " ".join(
    f"{k}:int32"
    for k in [
        "creating",
        "deallocated",
        "deallocating",
        "idle",
        "leavingPool",
        "offline",
        "preempted",
        "rebooting",
        "reimaging",
        "running",
        "starting",
        "startTaskFailed",
        "unknown",
        "unusable",
        "waitingForStartTask",
        "upgradingOS",
        "total",
    ]
)
JOB = _props(
    "",
    "id:string url:string eTag:string lastModified:date-time creationTime:date-time state:string "
    "stateTransitionTime:date-time previousState:string previousStateTransitionTime:date-time priority:int32 "
    "maxParallelTasks:int32 allowTaskPreemption:bool usesTaskDependencies:bool constraints/maxWallClockTime:duration "
    "constraints/maxTaskRetryCount:int32 poolInfo/poolId:string executionInfo/startTime:date-time "
    "executionInfo/endTime:date-time executionInfo/poolId:string executionInfo/terminateReason:string "
    "onAllTasksComplete:string onTaskFailure:string",
)
TASK = _props(
    "",
    "id:string url:string eTag:string creationTime:date-time lastModified:date-time state:string "
    "stateTransitionTime:date-time commandLine:string userIdentity/autoUser/scope:string "
    "userIdentity/autoUser/elevationLevel:string constraints/maxWallClockTime:duration "
    "constraints/retentionTime:duration constraints/maxTaskRetryCount:int32 requiredSlots:int32 "
    "executionInfo/retryCount:int32 executionInfo/requeueCount:int32",
)
SUBTASK = _props(
    "value[]/",
    "id:int32 startTime:date-time endTime:date-time state:string stateTransitionTime:date-time previousState:string "
    "previousStateTransitionTime:date-time exitCode:int32 nodeInfo/affinityId:string nodeInfo/nodeUrl:string "
    "nodeInfo/poolId:string nodeInfo/nodeId:string nodeInfo/taskRootDirectory:string "
    "nodeInfo/taskRootDirectoryUrl:string",
)
FILES = _props(
    "value[]/",
    "name:string url:string isDirectory:bool properties/creationTime:date-time properties/lastModified:date-time "
    "properties/contentLength:int64-string properties/contentType:string",
)
FILE_HEADERS = ("ocp-creation-time", "Last-Modified", "ocp-batch-file-isdirectory", "Content-Length", "Content-Type")
SCHEDULE = _props(
    "",
    "id:string url:string eTag:string lastModified:date-time creationTime:date-time state:string "
    "stateTransitionTime:date-time previousState:string previousStateTransitionTime:date-time "
    "jobSpecification/priority:int32 jobSpecification/maxParallelTasks:int32 jobSpecification/allowTaskPreemption:bool "
    "jobSpecification/usesTaskDependencies:bool jobSpecification/onAllTasksComplete:string "
    "jobSpecification/onTaskFailure:string jobSpecification/constraints/maxWallClockTime:duration "
    "jobSpecification/constraints/maxTaskRetryCount:int32 jobSpecification/poolInfo/poolId:string "
    "executionInfo/recentJob/url:string executionInfo/recentJob/id:string executionInfo/endTime:date-time",
)
FOREVER = "P10675199DT2H48M5.4775807S"  # how the examples write "no limit"


def _in_list(props: dict[str, str]) -> dict[str, str]:
    return {f"value[]/{k}": v for k, v in props.items()}


POOL_CASES = [
    Case("Pools_GetPool_Basic", "GET", "pools/pool", props=POOL, headers=("ETag", "Last-Modified")),
    Case("Pools_ListPools_Basic", "GET", "pools?$filter=id eq 'pool'", props=_in_list(POOL)),
    Case("Pools_PoolExists", "HEAD", "pools/pool"),
    Case("Pools_PoolExists", "HEAD", "pools/nosuchpool", status=404),
    Case(
        "Pools_ReplacePoolProperties",
        "POST",
        "pools/replacepool/updateproperties",
        {"startTask": {"commandLine": "/bin/bash -c 'echo start task'"}, "applicationPackageReferences": [], "metadata": []},
        status=204,
        headers=UPDATED,
    ),
    Case(
        "Pools_EnablePoolAutoscale",
        "POST",
        "pools/autopool/enableautoscale",
        {"autoScaleFormula": "$TargetDedicated=0", "autoScaleEvaluationInterval": "PT8M"},
        headers=UPDATED,
    ),
    Case("Pools_ResizePool", "POST", "pools/resizepool/resize", {"targetDedicatedNodes": 1, "targetLowPriorityNodes": 0}, 202),
    Case("Pools_StopPoolResize", "POST", "pools/resizepool/stopresize", status=202),
    Case("Pools_RemoveNodes", "POST", "pools/shrinkpool/removenodes", {"nodeList": ["<shrinkpool.node0>"]}, 202),
    Case(
        "Pools_ListPoolNodeCounts",
        "GET",
        "nodecounts",
        props={"value[]/poolId": "string", **_props("value[]/dedicated/", COUNTS), **_props("value[]/lowPriority/", COUNTS)},
    ),
    Case(NO_EXAMPLE, "PATCH", "pools/replacepool", {"metadata": [{"name": "a", "value": "b"}]}, headers=UPDATED),
    Case(
        NO_EXAMPLE,
        "POST",
        "pools/autopool/evaluateautoscale",
        {"autoScaleFormula": "$TargetDedicatedNodes=0"},
        props={"timestamp": "date-time", "results": "string"},
    ),
    Case(NO_EXAMPLE, "POST", "pools/autopool/disableautoscale", headers=UPDATED),
    Case(NO_EXAMPLE, "DELETE", "pools/deletepool", status=202),
]

# the create examples that ask for what localbatch cannot honour: refused, naming each property
REFUSED_POOL_CASES = [
    Case(
        "Pools_CreatePool_MountConfiguration",
        "POST",
        "pools",
        {**POOL_BASE, "id": "m1", "mountConfiguration": [{"nfsMountConfiguration": {"source": "s", "relativeMountPath": "m"}}]},
        400,
        refused=("mountConfiguration",),
    ),
    Case(
        "Pools_CreatePool_AcceleratedNetworking",
        "POST",
        "pools",
        {**POOL_BASE, "id": "m2", "networkConfiguration": {"enableAcceleratedNetworking": True}},
        400,
        refused=("networkConfiguration",),
    ),
    Case(
        "Pools_CreatePool_DualStackNetworking",
        "POST",
        "pools",
        {**POOL_BASE, "id": "m3", "networkConfiguration": {"publicIPAddressConfiguration": {"ipFamilies": ["IPv4", "IPv6"]}}},
        400,
        refused=("networkConfiguration",),
    ),
    Case(
        "Pools_CreatePool_OSDisk",
        "POST",
        "pools",
        {**POOL_BASE, "id": "m4", "virtualMachineConfiguration": {**VMC, "osDisk": {"diskSizeGB": 100, "caching": "readwrite"}}},
        400,
        refused=("virtualMachineConfiguration.osDisk",),
    ),
    Case(
        "Pools_CreatePool_SecurityProfile",
        "POST",
        "pools",
        {
            **POOL_BASE,
            "id": "m5",
            "virtualMachineConfiguration": {
                **VMC,
                "securityProfile": {"securityType": "trustedLaunch", "encryptionAtHost": True},
            },
        },
        400,
        refused=("virtualMachineConfiguration.securityProfile",),
    ),
    Case(
        "Pools_CreatePool_VirtualMachineConfigurationWithExtensions",
        "POST",
        "pools",
        {
            **POOL_BASE,
            "id": "m6",
            "targetNodeCommunicationMode": "simplified",
            "virtualMachineConfiguration": {**VMC, "extensions": [{"name": "e", "type": "KeyVaultForLinux", "publisher": "p"}]},
        },
        400,
        refused=("targetNodeCommunicationMode", "virtualMachineConfiguration.extensions"),
    ),
    Case(
        "Pools_CreatePool_DiskEncryptionSet_ForUserSubscriptionAccounts",
        "POST",
        "pools",
        {
            **POOL_BASE,
            "id": "m7",
            "virtualMachineConfiguration": {
                **VMC,
                "osDisk": {"managedDisk": {"diskEncryptionSet": DISK_SET}},
                "dataDisks": [{"lun": 0, "diskSizeGB": 1024, "managedDisk": {"diskEncryptionSet": DISK_SET}}],
            },
        },
        400,
        refused=("virtualMachineConfiguration.osDisk", "virtualMachineConfiguration.dataDisks"),
    ),
    Case(
        "Pools_CreatePool_ConfidentialDiskEncryptionSet_ForUserSubscriptionAccounts",
        "POST",
        "pools",
        {
            **POOL_BASE,
            "id": "m8",
            "virtualMachineConfiguration": {
                **VMC,
                "osDisk": {"managedDisk": {"securityProfile": {"securityEncryptionType": "DiskWithVMGuestState"}}},
                "securityProfile": {"securityType": "ConfidentialVM"},
            },
        },
        400,
        refused=("virtualMachineConfiguration.osDisk", "virtualMachineConfiguration.securityProfile"),
    ),
    Case(
        "Pools_Update_CustomerManagedKey_ForBatchManagedAccounts",
        "PATCH",
        "pools/replacepool",
        {
            "vmSize": "STANDARD_D2S_V3",
            "virtualMachineConfiguration": {**VMC, "diskEncryptionConfiguration": {"targets": ["OsDisk", "TemporaryDisk"]}},
        },
        400,
        refused=("vmSize", "virtualMachineConfiguration"),
    ),
    Case(
        "Jobs_CreateJob_Complex",
        "POST",
        "jobs",
        {
            "id": "complexjob",
            "priority": 100,
            "jobManagerTask": {
                "id": "jm",
                "commandLine": "myprogram.exe",
                "requiredSlots": 2,
                "killJobOnCompletion": False,
                "userIdentity": {"autoUser": {"scope": "task", "elevationLevel": "admin"}},
                "runExclusive": True,
            },
            "poolInfo": {"autoPoolSpecification": {"poolLifetimeOption": "job", "pool": POOL_BASE}},
        },
        400,
        refused=(
            "jobManagerTask.runExclusive",
            "poolInfo.autoPoolSpecification",
        ),
    ),
]

NODE_CASES = [
    Case("Nodes_ListNodes", "GET", "pools/pool/nodes", props=_in_list(NODE)),
    Case("Nodes_GetNode", "GET", "pools/pool/nodes/<pool.node0>", props=NODE),
    Case("Nodes_Get_DualStackNetworking", "GET", "pools/pool/nodes/<pool.node0>", props=NODE),
    Case(
        "Nodes_GetNode",
        "GET",
        "pools/pool/nodes/<pool.node0>",
        props=START_TASK_INFO,
    ),
]

JOB_CASES = [
    Case(
        "Jobs_CreateJob_Basic",
        "POST",
        "jobs",
        {"id": "basicjob", "priority": 0, "poolInfo": {"poolId": "pool"}},
        201,
        headers=UPDATED,
    ),
    Case("Jobs_GetJob", "GET", "jobs/donejob", props=JOB, headers=("ETag", "Last-Modified")),
    Case(
        "Jobs_UpdateJob",
        "PATCH",
        "jobs/job",
        {"priority": 100, "constraints": {"maxWallClockTime": "PT1H", "maxTaskRetryCount": -1}, "poolInfo": {"poolId": "pool"}},
        headers=UPDATED,
    ),
    Case("Jobs_TerminateJob", "POST", "jobs/termjob/terminate", {"terminateReason": "User supplied termination reason"}, 202),
    Case("Jobs_DeleteJob", "DELETE", "jobs/deljob", status=202),
    Case(NO_EXAMPLE, "GET", "jobs", props={"value[]/id": "string", "value[]/state": "string"}),
    Case(NO_EXAMPLE, "PUT", "jobs/job", {"priority": 1, "poolInfo": {"poolId": "pool"}}, headers=UPDATED),
    Case(NO_EXAMPLE, "POST", "jobs/disjob/disable", {"disableTasks": "requeue"}, 202),
    Case(NO_EXAMPLE, "POST", "jobs/disjob/enable", status=202),
    Case(
        NO_EXAMPLE,
        "GET",
        "jobs/job/taskcounts",
        props=_props("taskCounts/", "active:int32 running:int32 completed:int32 succeeded:int32 failed:int32")
        | _props("taskSlotCounts/", "active:int32 running:int32 completed:int32 succeeded:int32 failed:int32"),
    ),
]

TASK_CASES = [
    Case(
        "Tasks_CreateTask_Basic",
        "POST",
        "jobs/sidejob/tasks",
        {"id": "task1", "commandLine": "cmd /c echo task1"},
        201,
        headers=UPDATED,
    ),
    Case(
        "Tasks_CreateTask_RequiredSlots",
        "POST",
        "jobs/sidejob/tasks",
        {"id": "task2", "requiredSlots": 2, "commandLine": "cmd /c echo task1"},
        201,
    ),
    Case(
        "Tasks_CreateTask_ContainerSettings",
        "POST",
        "jobs/sidejob/tasks",
        {
            "id": "ctask",
            "commandLine": "bash -c 'echo hello'",
            "containerSettings": {"imageName": "ubuntu", "containerRunOptions": "--rm"},
            "userIdentity": {"autoUser": {"scope": "task", "elevationLevel": "nonadmin"}},
        },
        201,
    ),
    Case(
        "Tasks_CreateTaskCollection_Complex",
        "POST",
        "jobs/sidejob/addtaskcollection",
        {
            "value": [
                {
                    "id": "complex1",
                    "commandLine": "cmd /c dir /s",
                    "environmentSettings": [{"name": "env1", "value": "value1"}, {"name": "env2", "value": "value2"}],
                    "affinityInfo": {"affinityId": "affinityId"},
                    "constraints": {"maxWallClockTime": "P1D", "retentionTime": "P2D", "maxTaskRetryCount": 5},
                    "requiredSlots": 2,
                    "multiInstanceSettings": {"numberOfInstances": 3, "coordinationCommandLine": "cmd /c echo coordinating"},
                },
                {"id": "simple3", "commandLine": "cmd /c dir /s"},
            ]
        },
        props=_props("value[]/", "taskId:string status:string eTag:string lastModified:date-time location:string"),
    ),
    Case(
        "Tasks_CreateTaskCollection_Complex",
        "POST",
        "jobs/sidejob/addtaskcollection",
        {
            "value": [
                {
                    "id": "complex2",
                    "commandLine": "cmd /c dir /s",
                    "resourceFiles": [{"autoStorageContainerName": "containerName", "filePath": "data"}],
                    "multiInstanceSettings": {
                        "numberOfInstances": 3,
                        "coordinationCommandLine": "cmd /c echo coordinating",
                        "commonResourceFiles": [{"httpUrl": "https://common.blob.core.windows.net/", "filePath": "common.exe"}],
                    },
                }
            ]
        },
        # auto-storage and multi-instance common files are refused here: give a URL with a SAS
        props={"value[]/status": "clienterror", "value[]/error/code": "UnsupportedProperty"},
    ),
    Case("Tasks_ListTasks", "GET", "jobs/job/tasks", props=_in_list(TASK)),
    Case("Tasks_ListSubTasks", "GET", "jobs/job/tasks/mpi/subtasksinfo", props=SUBTASK),
    Case("Tasks_ListTaskFiles", "GET", "jobs/job/tasks/writer/files?recursive=false", props=FILES),
    Case("Tasks_GetTaskFile", "GET", "jobs/job/tasks/writer/files/wd%5CtestFile.txt", headers=FILE_HEADERS),
    Case("Tasks_GetTaskFileProperties", "HEAD", "jobs/job/tasks/writer/files/wd%5CtestFile.txt", headers=FILE_HEADERS),
    Case("Tasks_DeleteTaskFile", "DELETE", "jobs/job/tasks/writer/files/wd%5CotherFile.txt?recursive=false"),
    Case("Tasks_DeleteTask", "DELETE", "jobs/sidejob/tasks/simple3"),
    Case(NO_EXAMPLE, "GET", "jobs/job/tasks/writer", props=TASK, headers=("ETag", "Last-Modified")),
    Case(NO_EXAMPLE, "PUT", "jobs/sidejob/tasks/task1", {"constraints": {"maxTaskRetryCount": 1}}, headers=UPDATED),
    Case(NO_EXAMPLE, "POST", "jobs/sidejob/tasks/task2/terminate", status=204),
    Case(NO_EXAMPLE, "POST", "jobs/sidejob/tasks/task2/reactivate", status=204),
]

SCHEDULE_CASES = [
    Case("JobSchedules_GetJobSchedule", "GET", "jobschedules/oncesched", props=SCHEDULE, headers=("ETag", "Last-Modified")),
    Case(
        "JobSchedules_UpdateJobSchedule",
        "PATCH",
        "jobschedules/sched",
        {
            "schedule": {"doNotRunUntil": "2025-01-01T12:30:00Z"},
            "jobSpecification": {
                "priority": 0,
                "usesTaskDependencies": False,
                "constraints": {"maxWallClockTime": FOREVER, "maxTaskRetryCount": 0},
                "poolInfo": {"poolId": "pool"},
            },
        },
        headers=UPDATED,
    ),
    Case("JobSchedules_EnableJobSchedule", "POST", "jobschedules/sched/enable", status=204),
    Case("JobSchedules_TerminateJobSchedule", "POST", "jobschedules/termsched/terminate", status=202),
    Case("JobSchedules_JobScheduleExists", "HEAD", "jobschedules/sched"),
    Case("JobSchedules_JobScheduleExists", "HEAD", "jobschedules/nosuchschedule", status=404),
    Case(
        NO_EXAMPLE,
        "POST",
        "jobschedules",
        {"id": "newsched", "schedule": {"recurrenceInterval": "PT1H"}, "jobSpecification": {"poolInfo": {"poolId": "pool"}}},
        201,
        headers=UPDATED,
    ),
    Case(NO_EXAMPLE, "GET", "jobschedules", props={"value[]/id": "string", "value[]/state": "string"}),
    Case(
        NO_EXAMPLE,
        "PUT",
        "jobschedules/newsched",
        {"schedule": {"recurrenceInterval": "PT2H"}, "jobSpecification": {"poolInfo": {"poolId": "pool"}}},
        headers=UPDATED,
    ),
    Case(NO_EXAMPLE, "POST", "jobschedules/newsched/disable", status=204),
    Case(NO_EXAMPLE, "GET", "jobschedules/oncesched/jobs", props={"value[]/id": "string"}),
    Case(NO_EXAMPLE, "DELETE", "jobschedules/newsched", status=202),
]

CASES = POOL_CASES + REFUSED_POOL_CASES + NODE_CASES + JOB_CASES + TASK_CASES + SCHEDULE_CASES
