"""The pure scheduler: constraint verdicts, pool choice, task re-write, VM size catalog.

No I/O, no store, no Batch: every function here takes plain values and returns
plain values, so it is tested without any process or file.
"""

from .decide import constraint_matrix, decide, decide_requirements
from .federation import decide_placement, job_homes, job_requirements
from .policies import POLICIES, get_policy
from .requirements import Requirements, resolve
from .rewrite import renumber_generated_ids, rewrite_for_placement, suffix_task_ids
from .taskgroup import required_registry_logins, summarize, summarize_tasks
from .types import Decision, NodeCounts, PoolFacts, PoolSnapshot, TaskGroup, Verdict, VmSize, pool_key

__all__ = [
    "POLICIES",
    "Decision",
    "NodeCounts",
    "PoolFacts",
    "PoolSnapshot",
    "Requirements",
    "TaskGroup",
    "Verdict",
    "VmSize",
    "constraint_matrix",
    "decide",
    "decide_placement",
    "decide_requirements",
    "get_policy",
    "job_homes",
    "job_requirements",
    "pool_key",
    "renumber_generated_ids",
    "required_registry_logins",
    "resolve",
    "rewrite_for_placement",
    "suffix_task_ids",
    "summarize",
    "summarize_tasks",
]
