"""Small shared pieces of localbatch: the Batch error type, ids, times and ISO 8601 durations."""

from __future__ import annotations

import datetime as _dt
import re
import uuid

API_VERSION = "2025-06-01"
SUPPORTED_API_VERSIONS = frozenset({API_VERSION})

# Azure Batch ids: letters, digits, hyphens and underscores, 1-64 characters; case-preserving
# but case-insensitive ("job1" and "JOB1" are the same job).
# Use them with fullmatch: "$" would also match before a final newline.
ID_RE = re.compile(r"[A-Za-z0-9_-]{1,64}")
ACCOUNT_RE = re.compile(r"[a-z0-9]{3,24}")


class ApiError(Exception):
    """A Batch REST error: HTTP status plus the Batch error JSON (code, message, values)."""

    def __init__(self, status: int, code: str, message: str, values: dict[str, str] | list[tuple[str, str]] | None = None):
        super().__init__(f"{code}: {message}")
        self.status = status
        self.code = code
        self.message = message
        # a list keeps repeated keys: one PropertyName per unsupported property
        self.pairs = list(values.items()) if isinstance(values, dict) else list(values or [])
        self.values = dict(self.pairs)

    def body(self, request_id: str) -> dict:
        # Azure appends the request id and time to the message text; the SDK shows it verbatim.
        text = f"{self.message}\nRequestId:{request_id}\nTime:{iso_now()}"
        doc: dict = {"code": self.code, "message": {"lang": "en-US", "value": text}}
        if self.pairs:
            doc["values"] = [{"key": k, "value": str(v)} for k, v in self.pairs]
        return doc


# -- common errors ---------------------------------------------------------------------------
def not_found(kind: str) -> ApiError:
    """``kind`` is one of Pool, Job, Task, JobSchedule, Node, File."""
    words = {"JobSchedule": "job schedule", "Node": "node", "File": "file"}.get(kind, kind.lower())
    return ApiError(404, f"{kind}NotFound", f"The specified {words} does not exist.")


def exists(kind: str) -> ApiError:
    words = {"JobSchedule": "job schedule"}.get(kind, kind.lower())
    return ApiError(409, f"{kind}Exists", f"The specified {words} already exists.")


def invalid(prop: str, reason: str, value: object = None) -> ApiError:
    values = {"PropertyName": prop, "Reason": reason}
    if value is not None:
        values["PropertyValue"] = str(value)[:200]
    return ApiError(
        400, "InvalidPropertyValue", "The value provided for one of the properties in the request body is invalid.", values
    )


def missing(prop: str) -> ApiError:
    return ApiError(
        400, "MissingRequiredProperty", "A required property was not specified in the request body.", {"PropertyName": prop}
    )


# -- time ------------------------------------------------------------------------------------
def now() -> _dt.datetime:
    return _dt.datetime.now(_dt.timezone.utc)


def iso(t: _dt.datetime | None) -> str | None:
    if t is None:
        return None
    return t.astimezone(_dt.timezone.utc).strftime("%Y-%m-%dT%H:%M:%S.%fZ")


def iso_now() -> str:
    return iso(now())  # type: ignore[return-value]  # iso() of a datetime is never None


def parse_iso(text: str) -> _dt.datetime:
    """Parse an ISO 8601 timestamp as sent by the SDK (``...Z`` or with an offset)."""
    t = text.strip()
    if t.endswith(("Z", "z")):
        t = t[:-1] + "+00:00"
    # Python 3.10's fromisoformat accepts 3 or 6 fraction digits only; Azure/SDK may send 7.
    m = re.match(r"^(.*T\d\d:\d\d:\d\d)(\.\d+)?(.*)$", t)
    if m and m.group(2):
        t = m.group(1) + (m.group(2) + "000000")[:7] + m.group(3)  # "." + 6 digits
    value = _dt.datetime.fromisoformat(t)
    if value.tzinfo is None:
        value = value.replace(tzinfo=_dt.timezone.utc)
    return value


_DURATION_RE = re.compile(
    r"^P(?:(?P<w>\d+(?:\.\d+)?)W)?(?:(?P<d>\d+(?:\.\d+)?)D)?"
    r"(?:T(?:(?P<h>\d+(?:\.\d+)?)H)?(?:(?P<m>\d+(?:\.\d+)?)M)?(?:(?P<s>\d+(?:\.\d+)?)S)?)?$"
)


def parse_duration(text: object, prop: str) -> float:
    """ISO 8601 duration (``PT02S``, ``PT1H30M``, ``P1DT2H``) -> seconds; 400 when malformed.

    Years and months are refused: their length is ambiguous and Batch never sends them.
    """
    if not isinstance(text, str):
        raise invalid(prop, "must be an ISO 8601 duration string", text)
    m = _DURATION_RE.fullmatch(text.strip().upper())
    if not m or text.strip().upper() in ("P", "PT") or text.strip().upper().endswith("T"):
        raise invalid(prop, "must be an ISO 8601 duration such as PT30S or PT1H", text)
    f = {k: float(v) if v else 0.0 for k, v in m.groupdict().items()}
    return f["w"] * 604800 + f["d"] * 86400 + f["h"] * 3600 + f["m"] * 60 + f["s"]


def format_duration(seconds: float) -> str:
    """Seconds -> ISO 8601 duration in the ``PT..H..M..S`` form Batch returns."""
    seconds = max(0.0, float(seconds))
    days, rest = divmod(seconds, 86400)
    hours, rest = divmod(rest, 3600)
    minutes, secs = divmod(rest, 60)
    out = "P" + (f"{int(days)}D" if days else "")
    tail = ""
    if hours:
        tail += f"{int(hours)}H"
    if minutes:
        tail += f"{int(minutes)}M"
    if secs or not (days or hours or minutes):
        tail += (f"{secs:.3f}".rstrip("0").rstrip(".") if secs != int(secs) else str(int(secs))) + "S"
    return out + ("T" + tail if tail else "")


def new_etag() -> str:
    return "0x" + uuid.uuid4().hex[:15].upper()


def id_key(value: str) -> str:
    """Lookup key of an id: Batch ids are case-insensitive."""
    return value.lower()
