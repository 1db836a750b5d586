"""Batch SDK / azure-core errors → our :mod:`batchfed_lab.errors` classes.

| SDK error                                   | ours                 | ``code``                     |
|---------------------------------------------|----------------------|------------------------------|
| 404 ``ResourceNotFoundError``               | BatchNotFoundError   | Batch code (``JobNotFound``) |
| 409 ``ResourceExistsError``                 | BatchConflictError   | ``JobExists``, ``PoolExists`` |
| 401 ``ClientAuthenticationError``, any 403  | BatchAuthError       | ``AuthenticationFailed``     |
| credential could not get a token            | BatchAuthError       | ``CredentialUnavailable``    |
| other ``HttpResponseError``                 | BatchError           | Batch code, ``status`` set   |
| ``ServiceRequestError`` / ``ServiceResponseError`` (after retries) | BatchUnreachableError | ``ServiceUnreachable`` |

Messages are one line: ``<what>: <Code>: <first line of the service message> [(details)]``.
The service appends ``RequestId:…``/``Time:…`` lines; they are dropped. The original SDK
exception stays reachable as ``__cause__`` (``raise … from exc``).
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager

from azure.core.exceptions import (
    AzureError,
    ClientAuthenticationError,
    HttpResponseError,
    ServiceRequestError,
    ServiceResponseError,
)

from ..errors import (
    BatchAuthError,
    BatchConflictError,
    BatchError,
    BatchNotFoundError,
    BatchUnreachableError,
)

__all__ = ["batch_call", "error_code", "translate"]
_MAX_DETAIL = 3  # how many error "values" (PropertyName, Reason, ...) make it into the message


def error_code(exc: BaseException) -> str | None:
    """The Batch error code of an SDK error (``None`` when the body had none)."""
    err = getattr(exc, "error", None)
    code = getattr(err, "code", None)
    return str(code) if code else None


def _service_message(exc: HttpResponseError) -> str:
    err = exc.error
    text = getattr(err, "message", None) or exc.reason or ""
    first = str(text).strip().splitlines()[0] if str(text).strip() else ""
    details = []
    for d in (getattr(err, "details", None) or [])[:_MAX_DETAIL]:
        if getattr(d, "code", None):
            details.append(f"{d.code}={' '.join(str(d.message).split())[:120]}")
    return first + (f" ({'; '.join(details)})" if details else "")


def translate(exc: BaseException, what: str) -> BatchError:
    """Our exception for an SDK exception raised while doing ``what`` (a short phrase)."""
    if isinstance(exc, BatchError):
        return exc
    if isinstance(exc, HttpResponseError) and exc.status_code is not None:
        status = int(exc.status_code)
        code = error_code(exc)
        text = f"{what}: {code or f'HTTP {status}'}: {_service_message(exc)}".rstrip(": ")
        if status in (401, 403):
            return BatchAuthError(text, code=code or "AuthenticationFailed", status=status)
        if status == 404:
            return BatchNotFoundError(text, code=code, status=status)
        if status == 409:
            return BatchConflictError(text, code=code, status=status)
        return BatchError(text, code=code, status=status)
    if isinstance(exc, ClientAuthenticationError):
        # raised by a TokenCredential before any request: its text can be a page long
        first = (str(exc).strip().splitlines() or [type(exc).__name__])[0]
        return BatchAuthError(f"{what}: cannot get a token: {first[:300]}", code="CredentialUnavailable")
    if isinstance(exc, (ServiceRequestError, ServiceResponseError)):
        first = (str(exc).strip().splitlines() or [type(exc).__name__])[0]
        return BatchUnreachableError(f"{what}: service unreachable: {first[:300]}")
    if isinstance(exc, AzureError):
        first = (str(exc).strip().splitlines() or [type(exc).__name__])[0]
        return BatchError(f"{what}: {first[:300]}")
    return BatchError(f"{what}: {type(exc).__name__}: {str(exc)[:300]}")


@contextmanager
def batch_call(what: str) -> Iterator[None]:
    """Translate SDK errors raised inside the block; chain the original."""
    try:
        yield
    except AzureError as exc:
        raise translate(exc, what) from exc
