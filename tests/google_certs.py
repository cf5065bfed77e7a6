"""A stand-in for Google's certificate endpoint, on loopback, and tokens signed for it.

google-auth fetches the certificates over real HTTP through the function's own
cached session: only the address differs from production.
"""

from __future__ import annotations

import datetime as dt
import json
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import jwt
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import rsa
from cryptography.x509.oid import NameOID

AUDIENCE = "https://certification-expiry.example.run.app"
SCHEDULER = "scheduler@project.iam.gserviceaccount.com"
GOOGLE_KEY = rsa.generate_private_key(public_exponent=65537, key_size=2048)
GOOGLE_KID = "test-key-1"


def _certificate_pem() -> str:
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "accounts.google.test")])
    now = dt.datetime.now(dt.UTC)
    certificate = (
        x509.CertificateBuilder()
        .subject_name(name)
        .issuer_name(name)
        .public_key(GOOGLE_KEY.public_key())
        .serial_number(1)
        .not_valid_before(now - dt.timedelta(days=1))
        .not_valid_after(now + dt.timedelta(days=1))
        .sign(GOOGLE_KEY, hashes.SHA256())
    )
    return certificate.public_bytes(serialization.Encoding.PEM).decode()


class GoogleCerts:
    """Serves the certificates as Google does, with a Cache-Control max-age; counts
    the fetches, and can be told to stall (accept, then answer nothing for a while)."""

    def __init__(self) -> None:
        self.fetches = 0
        self.stall_seconds = 0.0
        body = json.dumps({GOOGLE_KID: _certificate_pem()}).encode()
        certs = self

        class Handler(BaseHTTPRequestHandler):
            def do_GET(self) -> None:
                certs.fetches += 1
                if certs.stall_seconds:
                    time.sleep(certs.stall_seconds)
                self.send_response(200)
                self.send_header("Content-Type", "application/json; charset=UTF-8")
                self.send_header("Cache-Control", "public, max-age=21600, must-revalidate, no-transform")
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)

            def log_message(self, *args: object) -> None:
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.server.daemon_threads = True
        self.base_url = f"http://127.0.0.1:{self.server.server_address[1]}"
        self.url = f"{self.base_url}/oauth2/v1/certs"


@contextmanager
def google_certs() -> Iterator[GoogleCerts]:
    certs = GoogleCerts()
    thread = threading.Thread(target=certs.server.serve_forever, daemon=True)
    thread.start()
    try:
        yield certs
    finally:
        certs.server.shutdown()
        certs.server.server_close()


def google_token(
    audience: str = AUDIENCE,
    email: str = SCHEDULER,
    verified: object = True,
    kid: str | None = GOOGLE_KID,
    key: rsa.RSAPrivateKey = GOOGLE_KEY,
) -> str:
    now = int(time.time())
    claims = {
        "iss": "https://accounts.google.com",
        "aud": audience,
        "sub": "1234567890",
        "email": email,
        "email_verified": verified,
        "iat": now,
        "exp": now + 600,
    }
    return jwt.encode(claims, key, algorithm="RS256", headers={"kid": kid} if kid else None)
