"""Short-lived PostgreSQL clusters and gateways, for the tests and the benchmarks."""

from __future__ import annotations

import contextlib
import json
import os
import shutil
import subprocess
import sys
import tempfile
import threading
import time
import uuid
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path

import httpx
import uvicorn

from tools.paths import PROJECT_ROOT

from .gateway.app import Gateway, create_app, gateway_of
from .gateway.settings import GatewaySettings
from .keys import DEFAULT_JWT_SECRET, PUBLISHABLE_KEY, SECRET_KEY, SigningKey, api_key, user_access_token
from .postgres import Cluster, find_bindir, free_port, push_migrations


@contextlib.contextmanager
def throwaway_cluster(
    extra_env: dict[str, str] | None = None,
    extra_settings: dict[str, str] | None = None,
    bindir: Path | None = None,
    migrate: bool = True,
) -> Iterator[Cluster]:
    """A fresh cluster on a free port with the bootstrap and migrations applied
    (unless `migrate` is false); PostgreSQL 17 unless `bindir` names another server."""
    base = Path(tempfile.mkdtemp(prefix="cert-expiry-pg-"))
    cluster = Cluster(base / "data", free_port(), bindir=bindir or find_bindir())
    try:
        cluster.init()
        cluster.start(extra_env, extra_settings)
        if migrate:
            push_migrations(cluster.dsn)
        yield cluster
    finally:
        cluster.stop()
        shutil.rmtree(base, ignore_errors=True)


@dataclass(frozen=True)
class Stack:
    """A running gateway in front of the test database, as `make stack` would give."""

    url: str
    database: Cluster
    gateway: Gateway
    signing_key: SigningKey
    secret_key: str = SECRET_KEY
    publishable_key: str = PUBLISHABLE_KEY

    @property
    def anon_key(self) -> str:
        """The legacy JWT `anon` key."""
        return api_key(DEFAULT_JWT_SECRET, "anon")

    @property
    def service_role_key(self) -> str:
        """The legacy JWT `service_role` key."""
        return api_key(DEFAULT_JWT_SECRET, "service_role")

    def user_token(self, user_id: uuid.UUID | str, expires_in: int = 3600) -> str:
        """A user's session as Supabase Auth signs it with an asymmetric key: ES256, our issuer."""
        return user_access_token(self.signing_key, user_id, expires_in=expires_in, issuer=f"{self.url}/auth/v1")


@contextlib.contextmanager
def running_gateway(cluster: Cluster) -> Iterator[Stack]:
    """The gateway on a free port, served by uvicorn in a background thread."""
    signing_key = SigningKey.generate()
    settings = GatewaySettings(database_url=authenticator_dsn(cluster), jwks=signing_key.jwks())
    app = create_app(settings)
    port = free_port()
    server = uvicorn.Server(uvicorn.Config(app, host="127.0.0.1", port=port, log_level="critical"))
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    if not wait_until(lambda: server.started, gave_up=lambda: not thread.is_alive()):
        raise RuntimeError("the gateway did not start")
    try:
        yield Stack(f"http://127.0.0.1:{port}", cluster, gateway_of(app), signing_key)
    finally:
        server.should_exit = True
        thread.join(timeout=30)


def authenticator_dsn(cluster: Cluster) -> str:
    """PostgREST logs in as `authenticator` and switches role per request."""
    return cluster.dsn.replace("postgres:", "authenticator:", 1)


def spawn_gateway(
    cluster: Cluster, port: int, log: Path, signing_key: SigningKey, secret: str = DEFAULT_JWT_SECRET
) -> subprocess.Popen[bytes]:
    """The gateway in its own uvicorn process, as `make stack` runs it; waits until it answers."""
    environment = {
        **os.environ,
        "GATEWAY_DATABASE_URL": authenticator_dsn(cluster),
        "GATEWAY_JWT_SECRET": secret,
        "GATEWAY_JWKS": json.dumps(signing_key.jwks()),
    }
    with log.open("ab") as output:
        process = subprocess.Popen(
            [
                *(sys.executable, "-m", "uvicorn", "local_supabase.gateway.app:create_app", "--factory"),
                *("--host", "127.0.0.1", "--port", str(port), "--log-level", "warning", "--no-access-log"),
            ],
            cwd=PROJECT_ROOT,
            env=environment,
            stdout=output,
            stderr=output,
            start_new_session=True,
        )
    if not wait_until(lambda: gateway_healthy(f"http://127.0.0.1:{port}"), gave_up=lambda: process.poll() is not None):
        process.kill()
        raise RuntimeError(f"the gateway did not start; see {log}:\n{log.read_text()[-2000:]}")
    return process


def wait_until(ready: Callable[[], bool], gave_up: Callable[[], bool], timeout: float = 30) -> bool:
    """Whether `ready()` came true before `gave_up()` did or the time ran out."""
    deadline = time.monotonic() + timeout
    while not ready():
        if gave_up() or time.monotonic() > deadline:
            return False
        time.sleep(0.05)
    return True


def gateway_healthy(url: str) -> bool:
    try:
        return httpx.get(f"{url}/_gateway/health", timeout=1).status_code == 200
    except httpx.HTTPError:
        return False
