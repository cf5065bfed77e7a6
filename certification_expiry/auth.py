"""Who is calling, from the bearer token, before any database work.

Accepted: one of the project's secret keys or the legacy service-role key
(each compared in constant time), a JWT signed with the legacy Supabase JWT
secret whose role is service_role, a Google OIDC identity token for
OIDC_AUDIENCE whose verified email is in ALLOWED_INVOKERS (Cloud Scheduler's
service account), or a signed-in user's Supabase access token (ES256/RS256
against the project's JWKS, or HS256 with the legacy secret), whom service.py
then authorises or refuses.
Invalid credentials are an AuthenticationError; valid ones of someone not
allowed, a PermissionDeniedError; keys that cannot be fetched to verify a token,
a VerificationUnavailableError. Messages to the caller are generic; what a
library said goes to the log only (`detail`).
"""

from __future__ import annotations

import functools
import hmac
import threading
import time
import uuid
from collections.abc import Callable
from typing import TYPE_CHECKING, Any

import jwt

from .callers import Invoker, InvokerKind
from .errors import AuthenticationError, PermissionDeniedError, VerificationUnavailableError

if TYPE_CHECKING:
    from .config import Settings


GOOGLE_ISSUERS = ("https://accounts.google.com", "accounts.google.com")
# The audience Supabase Auth writes into every signed-in user's access token.
USER_AUDIENCE = "authenticated"
# Google's signing certificates, in the PEM form google-auth reads.
GOOGLE_CERTS_URL = "https://www.googleapis.com/oauth2/v1/certs"
# Fetching keys happens while a request waits: never longer than this.
KEY_FETCH_TIMEOUT_SECONDS = 3.0


class GoogleIdentityTokens:
    """Verifies Google-signed identity tokens, with Google's certificates cached.

    google-auth fetches the certificates on every verification unless its
    transport caches them; its documentation's answer is a requests session
    wrapped by CacheControl, which keeps them for as long as Google's
    Cache-Control header says (hours). The fetch itself gets a short timeout, so
    a certificate endpoint that does not answer holds a worker for seconds, not
    minutes.
    """

    def __init__(
        self,
        audience: str,
        allowed_invokers: list[str],
        certs_url: str | None = None,
        timeout_seconds: float = KEY_FETCH_TIMEOUT_SECONDS,
    ) -> None:
        self.audience = audience
        self.allowed_invokers = allowed_invokers
        # Read when built, not when defined: the unit tier points it at a loopback stand-in.
        self.certs_url = certs_url or GOOGLE_CERTS_URL
        self.timeout_seconds = timeout_seconds
        self._request: Callable[..., Any] | None = None
        self._lock = threading.Lock()

    def _transport(self) -> Callable[..., Any]:
        # Built on first use: google-auth, requests and cachecontrol are slow to import.
        if self._request is None:
            with self._lock:
                if self._request is None:
                    import cachecontrol
                    import google.auth.transport.requests
                    import requests

                    session = cachecontrol.CacheControl(requests.Session())
                    request = google.auth.transport.requests.Request(session=session)
                    self._request = functools.partial(request, timeout=self.timeout_seconds)
        return self._request

    @staticmethod
    def claims_to_be_one(header: dict[str, Any], unverified: dict[str, Any]) -> bool:
        """Google's identity tokens are RS256 with a key id and Google as issuer."""
        return (
            header.get("alg") == "RS256"
            and isinstance(header.get("kid"), str)
            and unverified.get("iss") in GOOGLE_ISSUERS
        )

    def verify(self, token: str, unverified: dict[str, Any]) -> Invoker:
        # Before any fetch: a token for another audience is refused on its face.
        if unverified.get("aud") != self.audience:
            raise AuthenticationError("the Google identity token is not for this function")
        import google.auth.exceptions
        from google.oauth2 import id_token

        try:
            # Our transport is google-auth's Request with a timeout bound to it.
            transport: Any = self._transport()
            claims = id_token.verify_token(token, transport, audience=self.audience, certs_url=self.certs_url)
        except google.auth.exceptions.TransportError as error:
            raise VerificationUnavailableError(
                "the token cannot be verified right now; try again later", detail=f"Google's certificates: {error}"
            ) from error
        except (ValueError, google.auth.exceptions.GoogleAuthError) as error:
            raise AuthenticationError("the Google identity token is not valid", detail=str(error)) from error
        email = claims.get("email")
        # The boolean true: a string "false" is truthy.
        if claims.get("iss") not in GOOGLE_ISSUERS or claims.get("email_verified") is not True:
            # A refused identity may be a person's account: its email is never logged.
            raise PermissionDeniedError("this identity is not an allowed invoker", detail="email not verified")
        if email not in self.allowed_invokers:
            raise PermissionDeniedError("this identity is not an allowed invoker", detail="not in ALLOWED_INVOKERS")
        return Invoker(InvokerKind.OIDC, email=email)


class SupabaseUserTokens:
    """Verifies users' access tokens against the project's JWKS, locally.

    PyJWKClient caches the key set and refetches it at most once per cooldown for
    an unknown key id, so forged key ids cost no fetch each. Its fetch holds a
    lock; after a failed fetch the next requests are refused for a few seconds
    instead of each waiting its own timeout in that queue.
    """

    RETRY_AFTER_SECONDS = 5.0

    def __init__(self, supabase_url: str, timeout_seconds: float = KEY_FETCH_TIMEOUT_SECONDS) -> None:
        self.issuer = f"{supabase_url.rstrip('/')}/auth/v1"
        self.jwks = jwt.PyJWKClient(f"{self.issuer}/.well-known/jwks.json", lifespan=600, timeout=timeout_seconds)
        self._lock = threading.Lock()
        self._failed_at: float | None = None

    def _signing_key(self, token: str) -> jwt.PyJWK:
        with self._lock:
            if self._failed_at is not None and time.monotonic() - self._failed_at < self.RETRY_AFTER_SECONDS:
                raise VerificationUnavailableError("the token cannot be verified right now; try again later")
            try:
                return self.jwks.get_signing_key_from_jwt(token)
            except jwt.PyJWKClientConnectionError as error:
                self._failed_at = time.monotonic()
                raise VerificationUnavailableError(
                    "the token cannot be verified right now; try again later", detail=f"the project's JWKS: {error}"
                ) from error
            except (jwt.PyJWKClientError, jwt.PyJWKSetError) as error:
                # PyJWKSetError: the project publishes no usable key (HS256 only), so
                # no asymmetric token of it can be valid.
                raise AuthenticationError(
                    "the access token is not valid for this project", detail=str(error)
                ) from error

    def verify(self, token: str) -> Invoker:
        key = self._signing_key(token)
        # The key's own algorithm only: no HS256 "signed" with a public key.
        return _user(self.claims(token, key.key, key.algorithm_name))

    def claims(self, token: str, key: Any, algorithm: str) -> dict[str, Any]:
        """The claims of a user's access token signed with this key: Supabase Auth's
        audience and this project's issuer, a numeric expiry in the future."""
        try:
            claims: dict[str, Any] = jwt.decode(
                token,
                key,
                algorithms=[algorithm],
                audience=USER_AUDIENCE,
                issuer=self.issuer,
                options={"require": ["exp", "sub", "aud", "iss"]},
            )
        except jwt.ExpiredSignatureError as error:
            raise AuthenticationError("the access token has expired") from error
        except jwt.PyJWTError as error:
            raise AuthenticationError("the access token is not valid for this project", detail=str(error)) from error
        _require_numeric_expiry(claims)
        return claims


def _require_numeric_expiry(claims: dict[str, Any]) -> None:
    """RFC 7519's NumericDate: PyJWT also takes a string of digits, which no issuer we
    trust writes."""
    expiry = claims.get("exp")
    if isinstance(expiry, bool) or not isinstance(expiry, int | float):
        raise AuthenticationError("the token is not valid for this project", detail="exp is not a number")


def _refuse_other_roles(claims: dict[str, Any]) -> None:
    """A valid token of a role that may not do this (the anon key): 403, not 401."""
    if claims.get("role") != "authenticated":
        raise PermissionDeniedError("this token's role may not do this", detail=f"role {claims.get('role')!r}")


def _user(claims: dict[str, Any]) -> Invoker:
    """A signed-in user from verified claims; any other role may not do this."""
    _refuse_other_roles(claims)
    try:
        # A user is their id: their email is personal data, and never needed.
        return Invoker(InvokerKind.USER, user_id=uuid.UUID(str(claims.get("sub"))))
    except ValueError as error:
        raise AuthenticationError("the token's subject is not a user id") from error


class Authenticator:
    def __init__(
        self,
        settings: Settings,
        google: GoogleIdentityTokens | None = None,
        users: SupabaseUserTokens | None = None,
    ) -> None:
        self.settings = settings
        if google is None and settings.oidc_audience:
            google = GoogleIdentityTokens(settings.oidc_audience, settings.allowed_invokers)
        self.google = google
        self.users = users or SupabaseUserTokens(settings.supabase_url)
        self.operator_keys = [
            (kind, key.get_secret_value().encode()) for kind, keys in settings.operator_keys.items() for key in keys
        ]

    def authenticate(self, token: str) -> Invoker:
        """The caller this bearer token stands for, or the error that refuses it."""
        # Every key compared, each in constant time, whichever matches.
        presented = token.encode()
        matches = [kind for kind, key in self.operator_keys if hmac.compare_digest(presented, key)]
        if matches:
            return Invoker(InvokerKind(matches[0]))
        try:
            # Only to route the token to its verifier; nothing is trusted before that.
            header = jwt.get_unverified_header(token)
            unverified = jwt.decode(token, options={"verify_signature": False})
        except jwt.PyJWTError as error:
            raise AuthenticationError("the bearer token is neither the service key nor a JWT") from error
        if GoogleIdentityTokens.claims_to_be_one(header, unverified):
            if self.google is None:
                raise AuthenticationError("Google identity tokens are not accepted here")
            return self.google.verify(token, unverified)
        if header.get("alg") == "HS256":
            if self.settings.supabase_jwt_secret is None:
                raise AuthenticationError("HS256 tokens are not accepted: this project verifies with its JWKS")
            return self._supabase_jwt(token)
        if header.get("alg") in ("ES256", "RS256"):
            return self.users.verify(token)
        raise AuthenticationError("this token cannot be verified here")

    def _supabase_jwt(self, token: str) -> Invoker:
        """A JWT signed with the legacy secret: the service-role key (no audience, no
        user), or a user's session, held to the same claims as a JWKS-signed one."""
        assert self.settings.supabase_jwt_secret is not None
        secret = self.settings.supabase_jwt_secret.get_secret_value()
        try:
            claims = jwt.decode(
                token,
                secret,
                algorithms=["HS256"],
                # A token without an expiry would be valid for ever.
                options={"verify_aud": False, "require": ["exp"]},
            )
        except jwt.ExpiredSignatureError as error:
            raise AuthenticationError("the JWT has expired") from error
        except jwt.PyJWTError as error:
            raise AuthenticationError("the JWT is not valid for this project", detail=str(error)) from error
        _require_numeric_expiry(claims)
        if claims.get("role") == "service_role":
            return Invoker(InvokerKind.SERVICE_ROLE_JWT)
        _refuse_other_roles(claims)
        # A token minted with the secret for another purpose, audience or issuer is
        # not a session of this project's users.
        return _user(self.users.claims(token, secret, "HS256"))
