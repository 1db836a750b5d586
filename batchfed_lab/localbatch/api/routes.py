"""The route table: which handler answers each method and path below ``/accounts/<account>``.

In a path, ``*`` is one id (a handler's ``req.args`` in order) and a final ``**`` is the rest of
the path (a task file's name). Literal segments match without regard to case, as Batch's do.
"""

from __future__ import annotations

from collections.abc import Callable

from ..engine import Engine
from . import admin, files, jobs, nodes, pools, schedules, tasks
from .messages import Request, Response

Handler = Callable[[Engine, Request], Response]

ROUTES: list[tuple[str, str, Handler]] = [
    # method    path                                handler
    ("GET", "pools", pools.list_pools),
    ("POST", "pools", pools.create_pool),
    ("GET", "pools/*", pools.get_pool),
    ("HEAD", "pools/*", pools.get_pool),
    ("PATCH", "pools/*", pools.update_pool),
    ("DELETE", "pools/*", pools.delete_pool),
    ("POST", "pools/*/resize", pools.resize_pool),
    ("POST", "pools/*/stopresize", pools.stop_resize),
    ("POST", "pools/*/removenodes", pools.remove_nodes),
    ("POST", "pools/*/updateproperties", pools.replace_pool_properties),
    ("POST", "pools/*/enableautoscale", pools.enable_autoscale),
    ("POST", "pools/*/disableautoscale", pools.disable_autoscale),
    ("POST", "pools/*/evaluateautoscale", pools.evaluate_autoscale),
    ("GET", "pools/*/nodes", nodes.list_nodes),
    ("GET", "pools/*/nodes/*", nodes.get_node),
    ("POST", "pools/*/localbatch-preempt", admin.preempt),
    ("POST", "pools/*/localbatch-autoscale", admin.autoscale_admin),
    ("POST", "pools/*/localbatch-node-condition", admin.node_condition),
    ("GET", "nodecounts", nodes.node_counts),
    ("GET", "localbatch-info", admin.server_info),
    ("GET", "jobs", jobs.list_jobs),
    ("POST", "jobs", jobs.create_job),
    ("GET", "jobs/*", jobs.get_job),
    ("PATCH", "jobs/*", jobs.update_job),
    ("PUT", "jobs/*", jobs.update_job),
    ("DELETE", "jobs/*", jobs.delete_job),
    ("POST", "jobs/*/terminate", jobs.terminate_job),
    ("POST", "jobs/*/disable", jobs.disable_job),
    ("POST", "jobs/*/enable", jobs.enable_job),
    ("GET", "jobs/*/taskcounts", jobs.task_counts),
    ("GET", "jobs/*/tasks", tasks.list_tasks),
    ("POST", "jobs/*/tasks", tasks.add_task),
    ("POST", "jobs/*/addtaskcollection", tasks.add_task_collection),
    ("GET", "jobs/*/tasks/*", tasks.get_task),
    ("PUT", "jobs/*/tasks/*", tasks.replace_task),
    ("DELETE", "jobs/*/tasks/*", tasks.delete_task),
    ("POST", "jobs/*/tasks/*/terminate", tasks.terminate_task),
    ("POST", "jobs/*/tasks/*/reactivate", tasks.reactivate_task),
    ("GET", "jobs/*/tasks/*/subtasksinfo", tasks.list_subtasks),
    ("GET", "jobs/*/tasks/*/files", files.list_task_files),
    ("GET", "jobs/*/tasks/*/files/**", files.get_task_file),
    ("HEAD", "jobs/*/tasks/*/files/**", files.get_task_file),
    ("DELETE", "jobs/*/tasks/*/files/**", files.delete_task_file),
    ("GET", "jobschedules", schedules.list_schedules),
    ("POST", "jobschedules", schedules.create_schedule),
    ("GET", "jobschedules/*", schedules.get_schedule),
    ("HEAD", "jobschedules/*", schedules.get_schedule),
    ("PATCH", "jobschedules/*", schedules.update_schedule),
    ("PUT", "jobschedules/*", schedules.update_schedule),
    ("DELETE", "jobschedules/*", schedules.delete_schedule),
    ("POST", "jobschedules/*/terminate", schedules.terminate_schedule),
    ("POST", "jobschedules/*/disable", schedules.disable_schedule),
    ("POST", "jobschedules/*/enable", schedules.enable_schedule),
    ("GET", "jobschedules/*/jobs", jobs.list_schedule_jobs),
]


def _by_method(routes: list[tuple[str, str, Handler]]) -> dict[str, list[tuple[tuple[str, ...], Handler]]]:
    """The table split into segments once, per method in table order (a request only looks at its verb's routes)."""
    out: dict[str, list[tuple[tuple[str, ...], Handler]]] = {}
    for method, path, handler in routes:
        out.setdefault(method, []).append((tuple(path.split("/")), handler))
    return out


_ROUTES_BY_METHOD = _by_method(ROUTES)


def match_route(method: str, segments: list[str]) -> tuple[Handler, tuple[str, ...]] | None:
    """Find the handler and its path arguments; None when no route has this method and path."""
    for pattern, handler in _ROUTES_BY_METHOD.get(method, ()):
        args: list[str] = []
        if pattern[-1] == "**":
            if len(segments) < len(pattern):
                continue
            fixed, rest = segments[: len(pattern) - 1], "/".join(segments[len(pattern) - 1 :])
        else:
            if len(segments) != len(pattern):
                continue
            fixed, rest = segments, None
        ok = True
        for want, got in zip(pattern, fixed):
            if want == "*":
                args.append(got)
            elif want != got.lower():
                ok = False
                break
        if ok:
            if rest is not None:
                args.append(rest)
            return handler, tuple(args)
    return None
