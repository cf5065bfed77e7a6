"""JWTs as the Supabase CLI issues them locally: the anon and service-role keys, and user tokens."""

from __future__ import annotations

import time
import uuid
from typing import Any

import jwt

# The CLI's demo keys never expire in practice; this is the expiry they carry.
DEMO_KEY_EXPIRY = 1983812996


def sign(secret: str, claims: dict[str, Any]) -> str:
    return jwt.encode(claims, secret, algorithm="HS256")


def api_key(secret: str, role: str) -> str:
    """The `anon` or `service_role` key, with the claims `supabase start` puts in them."""
    return sign(secret, {"iss": "supabase-demo", "role": role, "exp": DEMO_KEY_EXPIRY})


def user_access_token(secret: str, user_id: uuid.UUID | str, email: str | None = None, expires_in: int = 3600) -> str:
    """A signed-in user's access token, shaped like Supabase Auth's."""
    now = int(time.time())
    return sign(
        secret,
        {
            "iss": "supabase-local",
            "aud": "authenticated",
            "role": "authenticated",
            "sub": str(user_id),
            "email": email,
            "iat": now,
            "exp": now + expires_in,
        },
    )
