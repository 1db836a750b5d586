"""Who a store's credential is: the submitter recorded on every action it enqueues.

The identity comes from the credential the store itself holds, never from the caller: on the
Entra ID (token) path it is the principal the token's claims name (object id ``oid`` and a
user principal name, else an application id); otherwise (SQLite, an Azure account key or
SAS) it is the operating-system user, marked unverified. See docs/accounting.md for the
trust model: the store's access control is the security boundary; identity serves
accounting and fair share.
"""

from __future__ import annotations

import base64
import binascii
import getpass
import json
import os
import socket
from dataclasses import dataclass
from typing import Any

from ..errors import StoreError

#: claims that name a principal, most specific first (users carry upn; apps only appid)
NAME_CLAIMS = ("upn", "preferred_username", "unique_name", "email", "appid", "azp")


@dataclass(frozen=True, slots=True)
class Submitter:
    """``name`` is what accounting groups by; ``id`` is stable (Entra ID object id, or the
    OS uid on a host); ``verified`` says whether a token issuer vouches for it."""

    name: str
    id: str
    display: str | None = None
    verified: bool = False


def os_submitter() -> Submitter:
    """The operating-system user of this process (the embedded stack's identity)."""
    try:
        name = getpass.getuser()
    except (KeyError, OSError):  # no passwd entry (some containers)
        name = f"uid{os.getuid()}"
    return Submitter(name=name, id=f"os:{os.getuid()}@{socket.gethostname()}")


def token_claims(token: str) -> dict[str, Any]:
    """The claims (payload) of a JWT, unverified: the token is our own credential's, just
    issued to us; the service it is for checks the signature."""
    parts = token.split(".")
    if len(parts) != 3:
        raise StoreError("identity: the access token is not a JWT (no claims to name the submitter)")
    try:
        body = base64.urlsafe_b64decode(parts[1] + "=" * (-len(parts[1]) % 4))
        claims = json.loads(body)
    except (binascii.Error, ValueError) as exc:
        raise StoreError("identity: the access token's claims are not readable JSON") from exc
    if not isinstance(claims, dict):
        raise StoreError("identity: the access token's claims are not a JSON object")
    return claims


def submitter_from_token(token: str) -> Submitter:
    """The principal an Entra ID access token was issued to."""
    claims = token_claims(token)
    oid = claims.get("oid")
    if not isinstance(oid, str) or not oid:
        raise StoreError("identity: the access token has no object id (oid) claim")
    name = next((str(claims[c]) for c in NAME_CLAIMS if isinstance(claims.get(c), str) and claims[c]), oid)
    display = claims.get("name") if isinstance(claims.get("name"), str) else None
    return Submitter(name=name, id=oid, display=display, verified=True)
