"""Configuration, from the environment only: each variable is one field here (README.md lists them)."""

from __future__ import annotations

import ipaddress
from dataclasses import dataclass
from datetime import time
from typing import Annotated, Literal
from urllib.parse import urlsplit

from pydantic import Field, SecretStr, field_validator, model_validator
from pydantic_settings import BaseSettings, NoDecode, SettingsConfigDict

MIN_JWT_SECRET_LENGTH = 32


@dataclass(frozen=True)
class NightlySchedule:
    """When the nightly run is due, in Oslo: its time, and the grace after it within
    which its success is expected. The night being judged is today's from then on."""

    run_at: time
    grace_minutes: int


def _is_loopback(host: str) -> bool:
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


class Settings(BaseSettings):
    # hide_input_in_errors: a rejected value may be a secret, and the error goes to the log.
    model_config = SettingsConfigDict(extra="ignore", hide_input_in_errors=True)

    supabase_url: str
    # Supabase's secret API keys (sb_secret_...), comma-separated during a rotation:
    # the first is the database credential, each is accepted as an operator's token.
    supabase_secret_key: Annotated[list[SecretStr], NoDecode] = []
    # The legacy JWT service-role key: the database credential when no secret key
    # is set, and accepted as an operator's token either way.
    supabase_service_role_key: SecretStr | None = None
    # The legacy HS256 secret: verifies service-role JWTs and users' tokens while a
    # project still signs with it. Users' tokens signed with the project's
    # asymmetric keys are verified against its JWKS, which needs no setting.
    supabase_jwt_secret: SecretStr | None = None
    # `json` (Cloud Logging) or `text` (a terminal); unset: json on Cloud Run or
    # when stdout is not a terminal, text otherwise (structured_logging.py).
    log_format: Literal["json", "text"] | None = None
    # Google OIDC identity tokens (Cloud Scheduler): the audience they must carry
    # and the service-account emails allowed to invoke. Both or neither.
    oidc_audience: str | None = None
    allowed_invokers: Annotated[list[str], NoDecode] = []

    # Informed by `make bench`, scenario concurrency_sweep (bench/results.md): enough
    # threads to hide a hosted request's latency, few enough to leave the CPU to the
    # RPC calls.
    job_concurrency: int = Field(16, ge=1, le=64)
    # Supabase caps reads at 1000 rows; a larger page would be silently cut.
    job_page_size: int = Field(500, ge=1, le=1000)
    job_audit_chunk_size: int = Field(500, ge=1, le=5000)
    job_request_timeout_seconds: float = Field(10.0, gt=0)
    # Below Cloud Scheduler's 30-minute attempt deadline: no mentor is started after it.
    job_time_budget_seconds: float = Field(1500.0, gt=0)
    # Retries after the first attempt, for transient failures only.
    job_max_retries: int = Field(3, ge=0, le=10)
    job_max_body_bytes: int = Field(64 * 1024, gt=0)
    # A coordinator's run of one kind (dry or real) for one set of organisations at
    # most once per this many seconds (429 and Retry-After otherwise); 0 lifts it.
    coordinator_run_interval_seconds: int = Field(300, ge=0, le=24 * 3600)
    # The nightly run's time in Oslo (cloudbuild.yaml's _JOB_SCHEDULE), and the grace
    # after it: from then on the compliance check judges tonight, and a night with
    # no successful full run, or an expired mentor still active, is a breach.
    nightly_run_at: time = time(1, 15)
    compliance_grace_minutes: int = Field(105, ge=0, le=22 * 60)

    @field_validator("supabase_jwt_secret")
    @classmethod
    def _jwt_secret_is_a_real_secret(cls, secret: SecretStr | None) -> SecretStr | None:
        """Set but empty or short is a mistake (a secret manager handing back an empty
        value, a truncated paste): refuse to start rather than fail every JWT. Supabase's
        secrets are at least 32 characters, as HS256 keys should be (RFC 7518, 3.2)."""
        length = len(secret.get_secret_value().strip()) if secret is not None else None
        if length is not None and length < MIN_JWT_SECRET_LENGTH:
            raise ValueError(
                f"SUPABASE_JWT_SECRET is set but {length} characters long without blanks; it must be the project's"
                f" JWT secret, at least {MIN_JWT_SECRET_LENGTH} characters, or be unset"
            )
        return secret

    @field_validator("supabase_url")
    @classmethod
    def _supabase_url_is_the_projects_api(cls, url: str) -> str:
        """An http(s) URL with a host, https unless it is this machine's (the local
        stack): anything else fails every request, so it fails the start instead."""
        url = url.strip()
        parts = urlsplit(url)
        if parts.scheme not in ("http", "https") or not parts.hostname:
            raise ValueError("SUPABASE_URL must be the project's API URL, https://<ref>.supabase.co")
        if parts.scheme == "http" and not _is_loopback(parts.hostname):
            raise ValueError("SUPABASE_URL must use https unless it points at this machine (the local stack)")
        return url.rstrip("/")

    @field_validator("allowed_invokers", "supabase_secret_key", mode="before")
    @classmethod
    def _split_list(cls, raw: object) -> object:
        """ALLOWED_INVOKERS and SUPABASE_SECRET_KEY are comma-separated lists."""
        if isinstance(raw, str):
            return [item.strip() for item in raw.split(",") if item.strip()]
        return raw

    @field_validator("supabase_service_role_key")
    @classmethod
    def _blank_is_unset(cls, key: SecretStr | None) -> SecretStr | None:
        """An empty value (a secret manager handing back nothing) is no key at all."""
        return key if key is not None and key.get_secret_value().strip() else None

    @model_validator(mode="after")
    def _a_database_key(self) -> Settings:
        # Named, never shown: the values are secrets.
        if not self.supabase_secret_key and self.supabase_service_role_key is None:
            raise ValueError(
                "no usable database credential: SUPABASE_SECRET_KEY (sb_secret_..., comma-separated) and the legacy"
                " SUPABASE_SERVICE_ROLE_KEY are both unset or empty; set one of them"
            )
        return self

    @property
    def database_key(self) -> SecretStr:
        """What the job talks to Supabase with: the secret key, else the legacy key."""
        if self.supabase_secret_key:
            return self.supabase_secret_key[0]
        assert self.supabase_service_role_key is not None
        return self.supabase_service_role_key

    @property
    def database_key_name(self) -> str:
        return "SUPABASE_SECRET_KEY" if self.supabase_secret_key else "SUPABASE_SERVICE_ROLE_KEY"

    @property
    def operator_keys(self) -> dict[str, list[SecretStr]]:
        """The keys an operator may present as a bearer token, by the variable that holds them."""
        legacy = [self.supabase_service_role_key] if self.supabase_service_role_key else []
        return {"secret_key": self.supabase_secret_key, "service_role_key": legacy}

    @model_validator(mode="after")
    def _oidc_needs_both(self) -> Settings:
        if bool(self.oidc_audience) != bool(self.allowed_invokers):
            raise ValueError("set OIDC_AUDIENCE and ALLOWED_INVOKERS together, or neither")
        return self

    @property
    def nightly_schedule(self) -> NightlySchedule:
        """What the compliance check judges a night by."""
        return NightlySchedule(self.nightly_run_at, self.compliance_grace_minutes)

    @property
    def lease_seconds(self) -> int:
        """How long a run holds the lease: its time budget, plus the slowest mentor
        already started at the deadline (every retry timing out), plus the audit."""
        slowest_mentor = self.job_request_timeout_seconds * (self.job_max_retries + 1)
        return int(self.job_time_budget_seconds + 2 * slowest_mentor + 60)
