"""The answers most calls share: 201 Created, one object (with If-Match / If-None-Match), and a
page of a listing with OData $filter, $select, maxresults and $skiptoken."""

from __future__ import annotations

import re
from collections.abc import Callable, Iterable
from email.utils import formatdate
from urllib.parse import urlencode

from .. import odata
from .._util import API_VERSION, ApiError, parse_iso
from .messages import Request, Response

MAX_RESULTS = 1000


def created(doc: dict, url: str) -> Response:
    return Response(201, None, {"Location": url, **changed_headers(doc, url)})


def changed_headers(doc: dict, url: str) -> dict[str, str]:
    """What an answer to a change (create, update, replace) carries: the object's new ETag, its
    Last-Modified and, as OData's DataServiceId, its URL."""
    return {"ETag": doc["eTag"], "Last-Modified": http_date(doc), "DataServiceId": url}


def updated(doc: dict, url: str, status: int = 200) -> Response:
    return Response(status, None, changed_headers(doc, url))


def http_date(doc: dict) -> str:
    return formatdate(parse_iso(doc["lastModified"]).timestamp(), usegmt=True)


def check_conditions(req: Request, doc: dict) -> None:
    """If-Match / If-None-Match against the object's eTag (412 / 304 as Batch answers)."""
    match = req.headers.get("if-match")
    if match and match != "*" and match.strip('"') != doc.get("eTag"):
        raise ApiError(412, "ConditionNotMet", "The condition specified using HTTP conditional header(s) is not met.")
    none_match = req.headers.get("if-none-match")
    if none_match and (none_match == "*" or none_match.strip('"') == doc.get("eTag")):
        if req.method in ("GET", "HEAD"):
            raise ApiError(304, "ConditionNotMet", "The condition specified using HTTP conditional header(s) is not met.")
        raise ApiError(412, "ConditionNotMet", "The condition specified using HTTP conditional header(s) is not met.")


View = Callable[[dict], dict]  # a document as sent: with the defaults Batch fills in (api.views)


def one(req: Request, doc: dict, url: str, view: View = dict) -> Response:
    check_conditions(req, doc)
    out = view(doc)
    out["url"] = url
    out = odata.project(out, odata.parse_select(req.query.get("$select")))
    return Response(200, None if req.method == "HEAD" else out, {"ETag": doc["eTag"], "Last-Modified": http_date(doc)})


def with_url(doc: dict, url: str) -> dict:
    out = dict(doc)
    out["url"] = url
    return out


def page(
    req: Request, items: Iterable[tuple[int, dict]], url_of: Callable[[dict], str] | None = None, view: View | None = None
) -> Response:
    """Filter, select and page (seq, doc) items in seq order. Docs carry their url, or
    ``url_of`` gives it for the docs that make the page only (a page of 10 out of a job's
    thousands of tasks must not copy them all)."""
    pred = odata.parse_filter(req.query.get("$filter"))
    select = odata.parse_select(req.query.get("$select"))
    limit = _page_size(req)
    after = _skip_token(req)
    values: list[dict] = []
    next_link = None
    last_seq = after
    for seq, doc in items:
        if seq <= after or (pred is not None and not pred(doc)):
            continue
        if len(values) == limit:
            next_link = _next_link(req, last_seq)
            break
        doc = doc if url_of is None else with_url(doc, url_of(doc))
        values.append(odata.project(doc if view is None else view(doc), select))
        last_seq = seq
    body: dict = {"value": values}
    if next_link:
        body["odata.nextLink"] = next_link
    return Response(200, body)


def _page_size(req: Request) -> int:
    try:
        limit = int(req.query.get("maxresults") or MAX_RESULTS)
    except ValueError:
        raise odata.bad_query("maxresults", req.query.get("maxresults", ""), "must be an integer") from None
    if not 1 <= limit <= MAX_RESULTS:
        raise ApiError(
            400, "OutOfRangeQueryParameterValue", "maxresults must be from 1 to 1000.", {"QueryParameterName": "maxresults"}
        )
    return limit


def _skip_token(req: Request) -> int:
    """The seq a page starts after: 0, or the one a previous page's next link carried."""
    token = req.query.get("$skiptoken")
    if not token:
        return 0
    if not re.fullmatch(r"seq:\d+", token):
        raise odata.bad_query("$skiptoken", token, "not a token this service issued")
    return int(token[4:])


def _next_link(req: Request, last_seq: int) -> str:
    params = {k: v for k, v in req.query.items() if k != "$skiptoken"}
    params["$skiptoken"] = f"seq:{last_seq}"
    params.setdefault("api-version", API_VERSION)
    return f"{req.base}{req.route}?{urlencode(params)}"
