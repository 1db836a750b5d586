"""Shared-key authentication, checked the way Azure Batch checks it.

The string to sign is the one ``azure.batch._patch.BatchSharedKeyAuthPolicy`` builds::

    VERB \\n
    Content-Encoding \\n Content-Language \\n Content-Length \\n Content-MD5 \\n Content-Type \\n
    Date \\n If-Modified-Since \\n If-Match \\n If-None-Match \\n If-Unmodified-Since \\n Range \\n
    ocp-*:value \\n            (every header whose lower-cased name contains "ocp-", sorted)
    /<account><url path>       (the path exactly as sent, e.g. /acct/accounts/acct/jobs)
    \\n<name>:<value>           (query parameters, sorted by name, first value, empty ones left out)

``Content-Length`` is signed as ``0`` when absent on any verb but GET/HEAD. The signature is
``base64(HMAC-SHA256(base64decode(key), utf8(string)))`` and arrives as
``Authorization: SharedKey <account>:<signature>``.

One key per workspace signs every account: ``<workspace>/localbatch/key`` holds it as one
base64 line, created owner-only (0600) on first use. The key never appears in logs or errors.
"""

from __future__ import annotations

import base64
import email.utils
import hashlib
import hmac
import os
import secrets
from collections.abc import Iterable, Mapping
from pathlib import Path
from urllib.parse import parse_qs

from ._util import ApiError, now

KEY_FILE_NAME = "key"
MAX_CLOCK_SKEW_SECONDS = 15 * 60  # Azure's window for ocp-date / Date

_SIGNED_HEADERS = (
    "content-encoding",
    "content-language",
    "content-length",
    "content-md5",
    "content-type",
    "date",
    "if-modified-since",
    "if-match",
    "if-none-match",
    "if-unmodified-since",
    "range",
)


def key_path(localbatch_dir: os.PathLike[str] | str) -> Path:
    return Path(localbatch_dir) / KEY_FILE_NAME


def load_or_create_key(localbatch_dir: os.PathLike[str] | str) -> str:
    """Return the workspace key, creating it (64 random bytes, base64, mode 0600) if absent."""
    path = key_path(localbatch_dir)
    path.parent.mkdir(mode=0o700, parents=True, exist_ok=True)
    try:
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    except FileExistsError:
        return read_key(localbatch_dir)
    with os.fdopen(fd, "w") as fh:
        fh.write(base64.b64encode(secrets.token_bytes(64)).decode("ascii") + "\n")
    return read_key(localbatch_dir)


def read_key(localbatch_dir: os.PathLike[str] | str) -> str:
    """Read the key; tighten the file to 0600 if someone loosened it."""
    path = key_path(localbatch_dir)
    st = path.stat()
    if st.st_mode & 0o077 and st.st_uid == os.getuid():
        os.chmod(path, 0o600)
    key = path.read_text(encoding="ascii").strip()
    base64.b64decode(key, validate=True)  # a damaged key file fails loudly here, not per request
    return key


def string_to_sign(method: str, raw_target: str, headers: Iterable[tuple[str, str]], account: str) -> str:
    """Build the canonical string for a request target (``/path?query``) and its headers."""
    lowered: dict[str, str] = {}
    ocp: list[tuple[str, str]] = []
    for name, value in headers:
        low = name.lower()
        if value:
            lowered[low] = value
            if "ocp-" in low:
                ocp.append((low, value))
    if method not in ("GET", "HEAD"):
        lowered.setdefault("content-length", "0")
    path, _, query = raw_target.partition("?")
    out = method + "\n" + "\n".join(lowered.get(h, "") for h in _SIGNED_HEADERS) + "\n"
    for name, value in sorted(ocp):
        out += f"{name}:{value}\n"
    out += f"/{account}{path}"
    params = parse_qs(query)
    for name in sorted(params):
        value = params[name][0]
        if value:
            out += f"\n{name}:{value}"
    return out


def sign(key: str, text: str) -> str:
    digest = hmac.new(base64.b64decode(key), text.encode("utf-8"), hashlib.sha256).digest()
    return base64.b64encode(digest).decode("ascii")


def authorization(method: str, raw_target: str, headers: Mapping[str, str], account: str, key: str) -> str:
    """The ``Authorization`` header value for a request (used by control's own probes)."""
    return f"SharedKey {account}:{sign(key, string_to_sign(method, raw_target, headers.items(), account))}"


def _fail(detail: str) -> ApiError:
    return ApiError(
        403,
        "AuthenticationFailed",
        "Server failed to authenticate the request. Make sure the value of Authorization header is "
        "correctly formed including the signature.",
        {"AuthenticationErrorDetail": detail},
    )


def verify(method: str, raw_target: str, headers: list[tuple[str, str]], account: str, key: str) -> None:
    """Raise a 403 ``AuthenticationFailed`` ApiError unless the request is signed for ``account``."""
    auth = next((v for k, v in headers if k.lower() == "authorization"), None)
    if not auth:
        raise _fail("The request is not signed: no Authorization header.")
    scheme, _, cred = auth.partition(" ")
    name, _, signature = cred.strip().rpartition(":")
    if scheme != "SharedKey" or not name or not signature:
        raise _fail("The Authorization header is not of the form 'SharedKey <account>:<signature>'.")
    if name != account:
        raise _fail("The account in the Authorization header does not match the account in the URL.")
    stamp = next((v for k, v in headers if k.lower() == "ocp-date" and v), None)
    stamp = stamp or next((v for k, v in headers if k.lower() == "date" and v), None)
    if not stamp:
        raise _fail("The request has neither an ocp-date nor a Date header.")
    try:
        when = email.utils.parsedate_to_datetime(stamp)
    except (TypeError, ValueError):
        raise _fail("The ocp-date header is not an RFC 1123 date.") from None
    if when.tzinfo is None or abs((now() - when).total_seconds()) > MAX_CLOCK_SKEW_SECONDS:
        raise _fail("The request time is more than 15 minutes away from the server time.")
    expected = sign(key, string_to_sign(method, raw_target, headers, account))
    if not hmac.compare_digest(expected.encode("ascii"), signature.encode("ascii", "replace")):
        raise _fail("The MAC signature found in the HTTP request is not the same as any computed signature.")
