"""Who the request is: the API key and the JWT, checked as Supabase's API gateway and PostgREST check them."""

from __future__ import annotations

import json
import time
from collections.abc import Mapping
from dataclasses import dataclass
from functools import lru_cache
from typing import Any

import jwt
from jwt.types import Options

from .errors import GatewayError

_INVALID = {"WWW-Authenticate": 'Bearer error="invalid_token"'}
# PostgREST accepts a token this long after its `exp`, for clocks that drift.
CLOCK_SKEW_SECONDS = 30


@dataclass(frozen=True)
class Caller:
    role: str
    claims: dict[str, Any]

    @property
    def authenticated(self) -> bool:
        """Whether PostgREST would answer a permission error with 403 rather than 401."""
        return self.role != "anon"


def authorization_bearer(headers: Mapping[str, str]) -> str | None:
    """The token of `Authorization: Bearer`, if there is one ("" for an empty one)."""
    scheme, _, token = headers.get("authorization", "").partition(" ")
    return token.strip() if scheme.lower() == "bearer" else None


def _is_jwt(token: str) -> bool:
    return token.count(".") == 2


@lru_cache(maxsize=1024)
def _verified_claims(token: str, secret: str, jwks: str) -> dict[str, Any]:
    """The claims of a token whose signature checks out; expiry is checked on every use.

    HS256 with the JWT secret, ES256/RS256 with the JWKS key its `kid` names.
    Cached because the same few keys arrive on every request, and verifying them
    again each time was a visible share of a request's cost.
    """
    header = jwt.get_unverified_header(token)
    options: Options = {"verify_aud": False, "verify_exp": False}
    if header.get("alg") == "HS256":
        return jwt.decode(token, secret, algorithms=["HS256"], options=options)
    keys = {key.key_id: key for key in jwt.PyJWKSet.from_dict(json.loads(jwks)).keys} if jwks else {}
    key = keys.get(header.get("kid"))
    if key is None or header.get("alg") != key.algorithm_name:
        raise jwt.InvalidTokenError("no signing key for this token")
    return jwt.decode(token, key.key, algorithms=[key.algorithm_name], options=options)


@dataclass(frozen=True)
class Keys:
    """What the gateway accepts: the legacy JWT secret, the JWKS of the asymmetric
    signing keys, and the new API keys with the role each stands for."""

    jwt_secret: str
    jwks: str  # JSON, so that it can key the cache
    api_keys: Mapping[str, str]

    def caller(self, headers: Mapping[str, str]) -> Caller:
        """A JWT in Authorization decides; otherwise the API key (`apikey`, or the
        bearer token when it is not a JWT) maps to its role, as Supabase's API
        gateway turns `sb_secret_…` into service_role and `sb_publishable_…` into anon."""
        token = authorization_bearer(headers)
        if token == "":
            raise GatewayError(401, "PGRST301", "Empty JWT is sent in Authorization header", headers=_INVALID)
        if token is not None and _is_jwt(token):
            return self.jwt_caller(token)
        api_key = headers.get("apikey")
        # An API key in Authorization counts only when it is the apikey header's
        # (Supabase's gateway); anything else there is a JWT PostgREST cannot read.
        if token is not None and api_key is not None and token != api_key:
            raise GatewayError(
                401, "PGRST301", f"Expected 3 parts in JWT; got {token.count('.') + 1}", headers=_INVALID
            )
        key = api_key or token
        if key is None:
            return Caller("anon", {"role": "anon"})
        if key in self.api_keys:
            role = self.api_keys[key]
            return Caller(role, {"role": role})
        if _is_jwt(key):
            return self.jwt_caller(key)
        raise GatewayError(401, "PGRST301", "Invalid API key", headers=_INVALID)

    def jwt_caller(self, token: str) -> Caller:
        try:
            claims = _verified_claims(token, self.jwt_secret, self.jwks)
            expires = claims.get("exp")
            if expires is not None and not isinstance(expires, int | float):
                raise jwt.InvalidTokenError("the exp claim is not a number")
            if expires is not None and expires + CLOCK_SKEW_SECONDS <= time.time():
                raise jwt.ExpiredSignatureError("Signature has expired")
        except jwt.ExpiredSignatureError as error:
            raise GatewayError(401, "PGRST303", "JWT expired", headers=_INVALID) from error
        except jwt.PyJWTError as error:
            raise GatewayError(401, "PGRST301", f"JWT could not be decoded: {error}", headers=_INVALID) from error
        role = claims.get("role") or "anon"
        if not isinstance(role, str):
            raise GatewayError(401, "PGRST303", "JWT claim 'role' is not a string", headers=_INVALID)
        return Caller(role, claims)
