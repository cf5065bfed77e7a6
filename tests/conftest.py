"""Fixtures shared by every tier that needs a real PostgreSQL.

Unit tests never ask for them, so they start no server.
"""

from __future__ import annotations

import contextlib
import shutil
import tempfile
from collections.abc import Iterator
from pathlib import Path

import pytest

from local_supabase.postgres import Cluster, apply_migrations, free_port


@contextlib.contextmanager
def throwaway_cluster(extra_env: dict[str, str] | None = None) -> Iterator[Cluster]:
    """A fresh cluster on a free port with the bootstrap and migrations applied."""
    base = Path(tempfile.mkdtemp(prefix="cert-expiry-pg-"))
    base.chmod(0o755)  # the server runs as `postgres` when we are root
    cluster = Cluster(base / "data", free_port())
    try:
        cluster.init()
        cluster.start(extra_env)
        apply_migrations(cluster.dsn)
        yield cluster
    finally:
        cluster.stop()
        shutil.rmtree(base, ignore_errors=True)


@pytest.fixture(scope="session")
def database() -> Iterator[Cluster]:
    with throwaway_cluster() as cluster:
        yield cluster
