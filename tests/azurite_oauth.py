"""Entra ID (token) access to Azure Storage without Entra ID: what the OAuth-mode Azurite needs.

* :func:`self_signed_certificate` writes a certificate for 127.0.0.1/localhost (Azurite takes
  bearer tokens over HTTPS only); clients trust it through ``connection_verify=<its path>``.
* :class:`IssuedTokens` is a ``TokenCredential`` that mints JWTs the way Entra ID shapes them
  for Storage. Azurite's ``--oauth basic`` checks the issuer (an Entra ID ``sts`` prefix), the
  audience (``https://storage.azure.com`` or the account's service URL) and the lifetime
  (``iat``/``nbf``/``exp``), never the signature: so a token signed with a throw-away key
  passes there and nowhere else.
* :class:`IdentityEndpoint` serves those tokens the way a managed identity endpoint does, so
  the store's own ``DefaultAzureCredential()`` gets them unchanged.
"""

from __future__ import annotations

import base64
import datetime as dt
import hashlib
import hmac
import ipaddress
import json
import secrets
import threading
import time
import uuid
from dataclasses import dataclass
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs, urlparse

from azure.core.credentials import AccessToken
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID

from batchfed_lab.config.workspace import AzureStoreSettings
from batchfed_lab.store.emulator import Azurite

#: the scope every Storage SDK asks for; Entra ID turns it into the audience below
STORAGE_SCOPE = "https://storage.azure.com/.default"


def self_signed_certificate(folder: Path, days: int = 2) -> tuple[Path, Path]:
    """(certificate, key) PEM files for https://127.0.0.1 and https://localhost in ``folder``."""
    key = ec.generate_private_key(ec.SECP256R1())
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "batchfed test azurite")])
    now = dt.datetime.now(dt.timezone.utc)
    cert = (
        x509.CertificateBuilder()
        .subject_name(name)
        .issuer_name(name)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - dt.timedelta(hours=1))
        .not_valid_after(now + dt.timedelta(days=days))
        .add_extension(
            x509.SubjectAlternativeName([x509.DNSName("localhost"), x509.IPAddress(ipaddress.ip_address("127.0.0.1"))]),
            critical=False,
        )
        .add_extension(x509.BasicConstraints(ca=False, path_length=None), critical=True)
        .add_extension(x509.ExtendedKeyUsage([ExtendedKeyUsageOID.SERVER_AUTH]), critical=False)
        .add_extension(x509.SubjectKeyIdentifier.from_public_key(key.public_key()), critical=False)
        .sign(key, hashes.SHA256())
    )
    folder.mkdir(mode=0o700, parents=True, exist_ok=True)
    cert_path, key_path = folder / "azurite-cert.pem", folder / "azurite-key.pem"
    cert_path.write_bytes(cert.public_bytes(serialization.Encoding.PEM))
    key_path.touch(mode=0o600)
    key_path.write_bytes(
        key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption())
    )
    return cert_path, key_path


def _b64(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


class IssuedTokens:
    """A ``TokenCredential`` for the OAuth-mode Azurite; keeps every token it issued (so tests
    can look for them where they must never be) and every scope it was asked for."""

    def __init__(self, lifetime: float = 3600.0, tenant: str | None = None, upn: str = "ada@lab.example"):
        self.lifetime = lifetime
        self.tenant = tenant or str(uuid.uuid4())
        self.oid = str(uuid.uuid4())  # one principal per credential, as with a signed-in user
        self.upn = upn
        self.issued: list[str] = []
        self.scopes: set[str] = set()
        self._key = secrets.token_bytes(32)
        self._lock = threading.Lock()

    def mint(self, scope: str = STORAGE_SCOPE) -> tuple[str, int]:
        """A fresh token for ``scope`` and its expiry (epoch seconds)."""
        now = int(time.time())
        expires = int(now + self.lifetime)
        claims = {
            "aud": scope.removesuffix("/.default"),
            "iss": f"https://sts.windows.net/{self.tenant}/",
            "iat": now - 60,  # a little clock skew, as Entra ID allows for
            "nbf": now - 60,
            "exp": expires,
            "oid": self.oid,
            "upn": self.upn,
            "name": self.upn.split("@")[0].title(),
            "tid": self.tenant,
            "ver": "1.0",
        }
        head = _b64(json.dumps({"alg": "HS256", "typ": "JWT"}).encode())
        body = _b64(json.dumps(claims).encode())
        signature = _b64(hmac.new(self._key, f"{head}.{body}".encode(), hashlib.sha256).digest())
        token = f"{head}.{body}.{signature}"
        with self._lock:
            self.issued.append(token)
        return token, expires

    def get_token(self, *scopes: str, **kwargs: Any) -> AccessToken:
        with self._lock:
            self.scopes.update(scopes)
        return AccessToken(*self.mint(scopes[0] if scopes else STORAGE_SCOPE))

    def close(self) -> None:
        pass


class IdentityEndpoint:
    """A managed identity endpoint on 127.0.0.1, as App Service and Functions offer one
    (``IDENTITY_ENDPOINT`` + ``IDENTITY_HEADER``): DefaultAzureCredential finds it through
    those two variables and takes its tokens from here, minted by ``tokens``."""

    def __init__(self, tokens: IssuedTokens):
        self.tokens = tokens
        self.header = secrets.token_urlsafe(24)
        self.requests = 0
        self.resources: set[str] = set()  # what DefaultAzureCredential asked tokens for
        self._server = ThreadingHTTPServer(("127.0.0.1", 0), self._handler())
        self._thread = threading.Thread(target=self._server.serve_forever, name="identity-endpoint", daemon=True)
        self._thread.start()

    @property
    def env(self) -> dict[str, str]:
        """The variables DefaultAzureCredential's managed identity step reads."""
        return {"IDENTITY_ENDPOINT": f"http://127.0.0.1:{self._server.server_port}/msi/token", "IDENTITY_HEADER": self.header}

    def _handler(self) -> type[BaseHTTPRequestHandler]:
        endpoint = self

        class Handler(BaseHTTPRequestHandler):
            def do_GET(self) -> None:
                endpoint.requests += 1
                resource = parse_qs(urlparse(self.path).query).get("resource", [""])[0]
                if self.headers.get("X-IDENTITY-HEADER") != endpoint.header or not resource:
                    self._answer(401, {"error": "unauthorized"})
                    return
                endpoint.resources.add(resource)
                token, expires = endpoint.tokens.mint(resource)
                self._answer(
                    200, {"access_token": token, "expires_on": str(expires), "resource": resource, "token_type": "Bearer"}
                )

            def _answer(self, status: int, doc: dict[str, str]) -> None:
                body = json.dumps(doc).encode()
                self.send_response(status)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)

            def log_message(self, *args: Any) -> None:  # quiet: the test output stays readable
                pass

        return Handler

    def close(self) -> None:
        self._server.shutdown()
        self._server.server_close()
        self._thread.join(5)


@dataclass
class OAuthAzurite:
    """An Azurite in OAuth mode over HTTPS, the certificate to trust, and the token issuers."""

    azurite: Azurite
    ca: Path
    tokens: IssuedTokens
    identity: IdentityEndpoint

    @property
    def client_options(self) -> dict[str, Any]:
        """What the SDK clients need for this emulator only (a real account needs none)."""
        return {"connection_verify": str(self.ca)}

    def settings(self, prefix: str) -> AzureStoreSettings:
        """``store.azure`` settings on the token path: explicit endpoints, DefaultAzureCredential."""
        ep = self.azurite.endpoint
        return AzureStoreSettings(
            table_endpoint=ep("table"), queue_endpoint=ep("queue"), blob_endpoint=ep("blob"), credential="default", prefix=prefix
        )

    def close(self) -> None:
        self.identity.close()
        self.azurite.stop(grace=10)


def start_oauth_azurite(script: Path, folder: Path) -> OAuthAzurite:
    cert, key = self_signed_certificate(folder)
    tokens = IssuedTokens()
    identity = IdentityEndpoint(tokens)
    try:
        az = Azurite.start(script, tls=(cert, key), oauth=True)
    except BaseException:
        identity.close()
        raise
    return OAuthAzurite(az, cert, tokens, identity)
