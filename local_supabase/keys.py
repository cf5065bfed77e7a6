"""The keys of the local stack, as the Supabase CLI's `supabase start` issues them.

The new API keys (a publishable key for `anon`, a secret key for `service_role`,
the CLI's fixed local defaults), the legacy JWT keys signed with the CLI's local
JWT secret, and user access tokens: ES256, signed with the stack's asymmetric
key whose public half the gateway serves as the JWKS, or HS256 with the legacy
secret. All of them are public development values, never a project's.
"""

from __future__ import annotations

import json
import time
import uuid
from dataclasses import dataclass
from typing import Any

import jwt
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec
from jwt.algorithms import ECAlgorithm

# The Supabase CLI's local JWT secret: the legacy keys it prints are signed with it.
DEFAULT_JWT_SECRET = "super-secret-jwt-token-with-at-least-32-characters-long"  # noqa: S105 - public default
# The Supabase CLI's local API keys.
PUBLISHABLE_KEY = "sb_publishable_ACJWlzQHlZjBrEguHvfOxg_3BJgxAaH"
SECRET_KEY = "sb_secret_N7UND0UgjKTVK-Uodkm0Hg_xSvEMPvz"  # noqa: S105 - public default
# The CLI's demo keys never expire in practice; this is the expiry they carry.
DEMO_KEY_EXPIRY = 1983812996


def sign(secret: str, claims: dict[str, Any]) -> str:
    return jwt.encode(claims, secret, algorithm="HS256")


def api_key(secret: str, role: str) -> str:
    """The legacy `anon` or `service_role` key, with the claims `supabase start` puts in them."""
    return sign(secret, {"iss": "supabase-demo", "role": role, "exp": DEMO_KEY_EXPIRY})


@dataclass(frozen=True)
class SigningKey:
    """An asymmetric JWT signing key (ES256, P-256), as Supabase Auth signs sessions with."""

    private_key: ec.EllipticCurvePrivateKey
    kid: str

    @classmethod
    def generate(cls) -> SigningKey:
        return cls(ec.generate_private_key(ec.SECP256R1()), str(uuid.uuid4()))

    @classmethod
    def from_pem(cls, pem: bytes, kid: str) -> SigningKey:
        key = serialization.load_pem_private_key(pem, password=None)
        assert isinstance(key, ec.EllipticCurvePrivateKey)
        return cls(key, kid)

    def pem(self) -> bytes:
        return self.private_key.private_bytes(
            serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
        )

    def jwks(self) -> dict[str, Any]:
        """The public half, as `/auth/v1/.well-known/jwks.json` serves it."""
        public = json.loads(ECAlgorithm.to_jwk(self.private_key.public_key()))
        return {"keys": [{**public, "kid": self.kid, "alg": "ES256", "use": "sig", "key_ops": ["verify"]}]}

    def sign(self, claims: dict[str, Any]) -> str:
        return jwt.encode(claims, self.private_key, algorithm="ES256", headers={"kid": self.kid})


def user_access_token(
    signer: str | SigningKey,
    user_id: uuid.UUID | str,
    email: str | None = None,
    expires_in: int = 3600,
    issuer: str = "supabase-local",
) -> str:
    """A signed-in user's access token, shaped like Supabase Auth's: ES256 with a
    SigningKey (issuer `<SUPABASE_URL>/auth/v1`), HS256 with the legacy secret."""
    now = int(time.time())
    claims = {
        "iss": issuer,
        "aud": "authenticated",
        "role": "authenticated",
        "sub": str(user_id),
        "email": email,
        "iat": now,
        "exp": now + expires_in,
    }
    return sign(signer, claims) if isinstance(signer, str) else signer.sign(claims)
