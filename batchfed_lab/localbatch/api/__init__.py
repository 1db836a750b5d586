"""The REST operations: one function per Batch call, taking a parsed :class:`Request`, grouped by
resource (``pools``, ``nodes``, ``jobs``, ``tasks``, ``files``, ``schedules``, and ``admin`` for
localbatch's own calls), with the route table in ``routes``.

Each function validates its input, changes the engine's state under the engine lock and returns
a :class:`Response` with the status code the azure-batch 15.1.0 SDK expects for that call
(201 create, 202 delete/terminate/resize, 204 for the void POSTs it declares so, 200 otherwise).
Shared pieces: ``messages`` (request, response, JSON), ``lookup`` (body, objects by path, URLs),
``replies`` (created, one object with conditions, OData pages).
"""

from .messages import VERSION, FileRange, Request, Response, dumps
from .routes import ROUTES, Handler, match_route

__all__ = ["ROUTES", "VERSION", "FileRange", "Handler", "Request", "Response", "dumps", "match_route"]
