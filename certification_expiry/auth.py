"""Who is calling, from `Authorization: Bearer <token>`, before any database work.

Accepted: the Supabase service-role key itself (compared in constant time), a
JWT signed with the Supabase JWT secret whose role is service_role, or a Google
OIDC identity token for OIDC_AUDIENCE whose verified email is in
ALLOWED_INVOKERS (Cloud Scheduler's service account). Missing or invalid
credentials are 401; valid ones of someone not allowed to run the job are 403.
"""

from __future__ import annotations

import hmac
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import jwt

from .errors import AuthenticationError, ForbiddenError

if TYPE_CHECKING:
    from .config import Settings


@dataclass(frozen=True)
class Invoker:
    """An authenticated caller allowed to start a run."""

    kind: str  # "service_role_key" | "service_role_jwt" | "oidc"
    email: str | None = None


def bearer_token(authorization: str | None) -> str:
    scheme, _, token = (authorization or "").partition(" ")
    if scheme.lower() != "bearer" or not token.strip():
        raise AuthenticationError("an Authorization: Bearer <token> header is required")
    return token.strip()


class Authenticator:
    def __init__(self, settings: Settings, google_request: Any | None = None) -> None:
        self.settings = settings
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
        except jwt.InvalidTokenError as error:
            raise AuthenticationError("the bearer token is neither the service key nor a JWT") from error
        if algorithm == "HS256":
            return self._supabase_jwt(token)
        if algorithm == "RS256":
            return self._google_identity_token(token)
        raise AuthenticationError(f"tokens signed with {algorithm} are not accepted")

    def _supabase_jwt(self, token: str) -> Invoker:
        if self.settings.supabase_jwt_secret is None:
            raise AuthenticationError("JWTs are not accepted: SUPABASE_JWT_SECRET is not configured")
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
        if claims.get("role") != "service_role":
            raise ForbiddenError(f"a {claims.get('role') or 'role-less'} token may not start a run")
        return Invoker("service_role_jwt")

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
