"""Injected latency and failures, so that tests can prove the job survives them.

Off by default. Set at start from the environment (GATEWAY_FAULTS__*) or at any
time through `PUT /_gateway/faults` with a JSON object of these fields.
"""

from __future__ import annotations

import asyncio
import random
import re
from collections import Counter

from pydantic import BaseModel, ConfigDict, Field
from starlette.responses import JSONResponse
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from .errors import GatewayError


class FaultSettings(BaseModel):
    model_config = ConfigDict(extra="forbid")

    latency_ms: float = Field(0, ge=0, description="added to every /rest/v1 request")
    jitter_ms: float = Field(0, ge=0, description="plus a uniform random 0..jitter")
    unavailable_rate: float = Field(0, ge=0, le=1, description="answered 503 before touching the database")
    lost_response_rate: float = Field(0, ge=0, le=1, description="committed, then the connection is dropped")
    refuse_path: str | None = Field(None, description="regex: matching paths always get 503")
    seed: int | None = Field(None, description="makes the random choices repeatable")


class Faults:
    def __init__(self, settings: FaultSettings | None = None) -> None:
        self.configure(settings or FaultSettings())

    def configure(self, settings: FaultSettings) -> None:
        self.settings = settings
        self._random = random.Random(settings.seed)  # noqa: S311 - fault injection, not security
        self._refuse = re.compile(settings.refuse_path) if settings.refuse_path else None

    async def delay(self) -> None:
        delay_ms = self.settings.latency_ms + self._random.uniform(0, self.settings.jitter_ms)
        if delay_ms:
            await asyncio.sleep(delay_ms / 1000)

    def unavailable(self, path: str) -> bool:
        if self._refuse is not None and self._refuse.search(path):
            return True
        return self._random.random() < self.settings.unavailable_rate

    def lose_response(self) -> bool:
        return self._random.random() < self.settings.lost_response_rate


class FaultInjection:
    """Outermost ASGI layer: latency, 503s, and responses lost after the commit.

    A lost response sends its status line and headers, then fails: the server
    closes the connection mid-response, which the client sees as a transport
    error although the transaction has committed, as when a network drops.
    """

    def __init__(self, app: ASGIApp, faults: Faults, requests: Counter[str]) -> None:
        self.app = app
        self.faults = faults
        self.requests = requests

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http" or not scope["path"].startswith(("/rest/v1/", "/auth/v1/")):
            await self.app(scope, receive, send)
            return
        # Counted for both APIs (the tests count calls to Auth); faults are the REST API's.
        self.requests[f"{scope['method']} {scope['path']}"] += 1
        if scope["path"].startswith("/auth/v1/"):
            await self.app(scope, receive, send)
            return
        await self.faults.delay()
        if self.faults.unavailable(scope["path"]):
            # What PostgREST answers while it cannot reach the database.
            error = GatewayError.database_unreachable("injected fault")
            await JSONResponse(error.body(), status_code=503)(scope, receive, send)
            return
        if not self.faults.lose_response():
            await self.app(scope, receive, send)
            return

        async def drop_body(message: Message) -> None:
            if message["type"] == "http.response.body":
                raise ConnectionAbortedError("response dropped after commit (injected fault)")
            await send(message)

        await self.app(scope, receive, drop_body)
