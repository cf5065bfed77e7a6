"""The gateway's settings, from GATEWAY_* environment variables."""

from __future__ import annotations

from typing import Any

from pydantic import Field
from pydantic_settings import BaseSettings, SettingsConfigDict

from local_supabase.keys import DEFAULT_JWT_SECRET, PUBLISHABLE_KEY, SECRET_KEY

from .faults import FaultSettings


class GatewaySettings(BaseSettings):
    """Environment variables GATEWAY_*; faults as GATEWAY_FAULTS__LATENCY_MS and so on."""

    model_config = SettingsConfigDict(env_prefix="GATEWAY_", env_nested_delimiter="__")

    database_url: str = "postgresql://authenticator:postgres@127.0.0.1:54322/postgres"
    jwt_secret: str = DEFAULT_JWT_SECRET
    # The new API keys (the Supabase CLI's local defaults) and the JWKS of the
    # asymmetric keys user sessions are signed with (GATEWAY_JWKS, as JSON).
    secret_key: str = SECRET_KEY
    publishable_key: str = PUBLISHABLE_KEY
    jwks: dict[str, Any] = Field(default_factory=lambda: {"keys": []})
    max_rows: int = Field(1000, gt=0)
    pool_min_size: int = Field(4, gt=0)
    pool_max_size: int = Field(20, gt=0)
    pool_timeout_seconds: float = Field(3.0, gt=0)
    faults: FaultSettings = FaultSettings()
