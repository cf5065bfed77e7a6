"""What the stand-in adds to the API: the JWKS Supabase Auth publishes, and the
endpoints the tests use (faults, request counts, health), behind the secret key."""

from __future__ import annotations

from pydantic import ValidationError
from starlette.requests import Request
from starlette.responses import JSONResponse, Response

from .core import GatewayCore
from .errors import GatewayError
from .faults import FaultSettings
from .http_helpers import json_body


class AdminEndpoints(GatewayCore):
    """The Gateway's `/auth/v1/` and `/_gateway/` endpoints (a mixin)."""

    async def jwks_endpoint(self, request: Request) -> Response:
        """The public keys user sessions are signed with, as Supabase Auth publishes them."""
        return JSONResponse(self.settings.jwks)

    def _require_service_role(self, request: Request) -> None:
        """The admin endpoints take down or reveal the API: the secret key only."""
        caller = self.caller(request)
        if caller.role != "service_role":
            status = 403 if caller.authenticated else 401
            raise GatewayError(status, "42501", "the gateway's admin endpoints take the service role's key")

    async def faults_endpoint(self, request: Request) -> Response:
        self._require_service_role(request)
        if request.method == "PUT":
            try:
                self.faults.configure(FaultSettings.model_validate(await json_body(request)))
            except ValidationError as error:
                return JSONResponse({"message": str(error)}, status_code=422)
        return JSONResponse(self.faults.settings.model_dump())

    async def stats_endpoint(self, request: Request) -> Response:
        self._require_service_role(request)
        if request.method == "DELETE":
            self.requests.clear()
        return JSONResponse({"requests": dict(self.requests), "total": sum(self.requests.values())})

    async def health(self, request: Request) -> Response:
        return JSONResponse({"ok": True})
