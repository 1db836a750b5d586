"""Entity-group transactions without threads.

azure-core prepares the parts of a multipart request (a Tables transaction is two nested
levels of them) and reads the parts of its answer each in a ``ThreadPoolExecutor`` made for
the occasion: three executors and their threads per transaction. The per-part work is a
header or two; the threads cost several times the request's own CPU, and in a proxy whose
workers share one interpreter lock each start waits for the lock to come round (a
transaction took ~7x as long as an entity read on a busy interpreter). The store's table
clients do the same work in turn instead: the same policies, in the same order per part.

Both hooks are azure-core's own: the pipeline's ``_prepare_multipart_mixed_request`` (set on
the store's pipelines only) and the response's ``parts`` (set on each multipart answer by
the ``raw_response_hook`` of the clients' ``CustomHookPolicy``). Should a future azure-core
lack either, the store keeps working the SDK's way (tests/store pin that no thread starts).
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from azure.core.pipeline import PipelineContext, PipelineRequest, PipelineResponse

Hook = Callable[[Any], None]


def prepare_parts_in_turn(request: Any) -> None:
    """Run the part policies of a multipart request on each part, one part after another."""
    info = getattr(request, "multipart_mixed_info", None)
    if not info:
        return
    parts, policies, options = info[0], info[1], info[3]
    for part in parts:
        prepare_parts_in_turn(part)  # a changeset's own parts first
        pipeline_request = PipelineRequest(part, PipelineContext(None, **options))
        for policy in policies:
            policy.on_request(pipeline_request)


def _parts_in_turn(response: Any) -> list[Any]:
    parts: list[Any] = list(response._get_raw_parts())
    policies = response.request.multipart_mixed_info[1]
    for part in parts:
        context = PipelineContext(None)
        pipeline_request = PipelineRequest(part.request, context)
        pipeline_response = PipelineResponse(part.request, part, context=context)
        for policy in policies:
            policy.on_response(pipeline_request, pipeline_response)
    return parts


def read_parts_in_turn(then: Hook | None = None) -> Hook:
    """A ``raw_response_hook`` that has a multipart answer read its parts in turn (then calls
    ``then``, a hook the caller gave)."""

    def hook(pipeline_response: Any) -> None:
        response = pipeline_response.http_response
        if getattr(response.request, "multipart_mixed_info", None) and hasattr(response, "_get_raw_parts"):
            response.parts = lambda: _parts_in_turn(response)
        if then is not None:
            then(pipeline_response)

    return hook


def without_threads(table_client: Any) -> Any:
    """Have ``table_client`` prepare its transactions' parts in turn (its pipeline's hook)."""
    pipeline = getattr(getattr(getattr(table_client, "_client", None), "_client", None), "_pipeline", None)
    if pipeline is not None and hasattr(pipeline, "_prepare_multipart_mixed_request"):
        pipeline._prepare_multipart_mixed_request = prepare_parts_in_turn
    return table_client
