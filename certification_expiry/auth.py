"""Who is calling, from `Authorization: Bearer <token>`, before any database work.

Accepted: the Supabase service-role key itself (compared in constant time), a
JWT signed with the Supabase JWT secret whose role is service_role, a Google
OIDC identity token for OIDC_AUDIENCE whose verified email is in
ALLOWED_INVOKERS (Cloud Scheduler's service account), or a signed-in user's
Supabase access token (checked with the JWT secret when the project has one,
otherwise by Supabase Auth), which the entry points then authorise or refuse.
Missing or invalid credentials are 401; valid ones of someone not allowed are 403.
"""

from __future__ import annotations

import hmac
import uuid
from collections.abc import Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import jwt

from .errors import AuthenticationError, ForbiddenError

if TYPE_CHECKING:
    from .config import Settings


GOOGLE_ISSUERS = ("https://accounts.google.com", "accounts.google.com")


@dataclass(frozen=True)
class Invoker:
    """An authenticated caller."""

    kind: str  # "service_role_key" | "service_role_jwt" | "oidc" | "user"
    email: str | None = None
    user_id: uuid.UUID | None = None

    @property
    def is_system(self) -> bool:
        """The operator's key, the service role or the scheduler: may do anything."""
        return self.kind != "user"

    def describe(self) -> str:
        """Who, for the logs: the kind of credential and, where there is one, the identity."""
        return ":".join(str(part) for part in (self.kind, self.email or self.user_id) if part)


def bearer_token(authorization: str | None) -> str:
    scheme, _, token = (authorization or "").partition(" ")
    if scheme.lower() != "bearer" or not token.strip():
        raise AuthenticationError("an Authorization: Bearer <token> header is required")
    return token.strip()


class Authenticator:
    def __init__(
        self,
        settings: Settings,
        google_request: Any | None = None,
        verify_with_supabase_auth: Callable[[str], uuid.UUID] | None = None,
    ) -> None:
        self.settings = settings
        # Asks Supabase Auth whose access token this is (for projects whose user
        # tokens are not signed with the JWT secret); raises AuthenticationError.
        self.verify_with_supabase_auth = verify_with_supabase_auth
        # The transport google-auth fetches Google's public certificates with
        # (made on first use: google-auth and requests are slow to import); tests
        # hand in one that serves their own certificate.
        self.google_request = google_request

    def authenticate(self, authorization: str | None) -> Invoker:
        token = bearer_token(authorization)
        service_key = self.settings.supabase_service_role_key.get_secret_value()
        if hmac.compare_digest(token.encode(), service_key.encode()):
            return Invoker("service_role_key")
        try:
            algorithm = jwt.get_unverified_header(token).get("alg")
            # Only to route the token to its verifier; nothing is trusted before that.
            unverified = jwt.decode(token, options={"verify_signature": False})
        except jwt.InvalidTokenError as error:
            raise AuthenticationError("the bearer token is neither the service key nor a JWT") from error
        if unverified.get("iss") in GOOGLE_ISSUERS:
            return self._google_identity_token(token)
        if algorithm == "HS256" and self.settings.supabase_jwt_secret is not None:
            return self._supabase_jwt(token)
        if unverified.get("role") == "authenticated" and self.verify_with_supabase_auth is not None:
            return Invoker("user", user_id=self.verify_with_supabase_auth(token))
        raise AuthenticationError("this token cannot be verified here (is SUPABASE_JWT_SECRET set?)")

    def _supabase_jwt(self, token: str) -> Invoker:
        assert self.settings.supabase_jwt_secret is not None
        try:
            claims = jwt.decode(
                token,
                self.settings.supabase_jwt_secret.get_secret_value(),
                algorithms=["HS256"],
                options={"verify_aud": False},
            )
        except jwt.ExpiredSignatureError as error:
            raise AuthenticationError("the JWT has expired") from error
        except jwt.InvalidTokenError as error:
            raise AuthenticationError("the JWT is not valid for this project") from error
        if claims.get("role") == "service_role":
            return Invoker("service_role_jwt")
        if claims.get("role") == "authenticated" and claims.get("sub"):
            try:
                return Invoker("user", user_id=uuid.UUID(claims["sub"]), email=claims.get("email"))
            except ValueError as error:
                raise AuthenticationError("the token's subject is not a user id") from error
        raise ForbiddenError(f"a {claims.get('role') or 'role-less'} token may not do this")

    def _google_identity_token(self, token: str) -> Invoker:
        if not self.settings.oidc_audience:
            raise AuthenticationError("Google identity tokens are not accepted: OIDC_AUDIENCE is not configured")
        import google.auth.exceptions
        import google.auth.transport.requests
        from google.oauth2 import id_token

        if self.google_request is None:
            self.google_request = google.auth.transport.requests.Request()
        try:
            claims = id_token.verify_oauth2_token(token, self.google_request, audience=self.settings.oidc_audience)
        except (ValueError, google.auth.exceptions.GoogleAuthError) as error:
            raise AuthenticationError(f"the Google identity token is not valid: {error}") from error
        email = claims.get("email")
        if not claims.get("email_verified") or email not in self.settings.allowed_invokers:
            raise ForbiddenError(f"{email or 'this identity'} is not an allowed invoker")
        return Invoker("oidc", email=email)
