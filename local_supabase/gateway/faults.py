"""Injected latency and failures, so that tests can prove the job survives them.

Off by default. Set at start from the environment (GATEWAY_FAULT_*) or at any
time through `PUT /_gateway/faults` with a JSON object of these fields.
"""

from __future__ import annotations

import asyncio
import random
import re

from pydantic import BaseModel, ConfigDict, Field


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
