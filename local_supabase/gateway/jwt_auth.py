"""Who the request is: the JWT's claims, checked as PostgREST checks them."""

from __future__ import annotations

import time
from collections.abc import Mapping
from dataclasses import dataclass
from functools import lru_cache
from typing import Any

import jwt

from .errors import GatewayError

_INVALID = {"WWW-Authenticate": 'Bearer error="invalid_token"'}


@dataclass(frozen=True)
class Caller:
    role: str
    claims: dict[str, Any]

    @property
    def authenticated(self) -> bool:
        """Whether PostgREST would answer a permission error with 403 rather than 401."""
        return self.role != "anon"


def authorization_bearer(headers: Mapping[str, str]) -> str | None:
    """The token of `Authorization: Bearer`, if there is one."""
    scheme, _, token = headers.get("authorization", "").partition(" ")
    return token.strip() if scheme.lower() == "bearer" and token.strip() else None


def bearer_token(headers: Mapping[str, str]) -> str | None:
    """The token of `Authorization: Bearer`, else the `apikey` header.

    Supabase's API gateway accepts the key in `apikey` alone and forwards it to
    PostgREST as the bearer token when no Authorization header is given.
    """
    return authorization_bearer(headers) or headers.get("apikey") or None


@lru_cache(maxsize=1024)
def _verified_claims(token: str, secret: str) -> dict[str, Any]:
    """The claims of a token whose signature checks out; expiry is checked on every use.

    Cached because the same few keys arrive on every request, and verifying them
    again each time was a visible share of a request's cost.
    """
    return jwt.decode(token, secret, algorithms=["HS256"], options={"verify_aud": False, "verify_exp": False})


def authenticate(token: str | None, secret: str, anon_role: str = "anon") -> Caller:
    if token is None:
        return Caller(anon_role, {"role": anon_role})
    try:
        claims = _verified_claims(token, secret)
        expires = claims.get("exp")
        if expires is not None and not isinstance(expires, int | float):
            raise jwt.InvalidTokenError("the exp claim is not a number")
        if expires is not None and expires <= time.time():
            raise jwt.ExpiredSignatureError("Signature has expired")
    except jwt.ExpiredSignatureError as error:
        raise GatewayError(401, "PGRST303", "JWT expired", headers=_INVALID) from error
    except jwt.InvalidTokenError as error:
        raise GatewayError(401, "PGRST301", f"JWT could not be decoded: {error}", headers=_INVALID) from error
    role = claims.get("role") or anon_role
    if not isinstance(role, str):
        raise GatewayError(401, "PGRST303", "JWT claim 'role' is not a string", headers=_INVALID)
    return Caller(role, claims)
