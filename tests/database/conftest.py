from __future__ import annotations

import shutil
import tempfile
import uuid
from collections.abc import Iterator
from pathlib import Path

import psycopg
import pytest
from psycopg.rows import dict_row

from local_supabase.ephemeral import throwaway_cluster
from local_supabase.postgres import Cluster


@pytest.fixture(scope="session")
def database() -> Iterator[Cluster]:
    """The database tier's own cluster, apart from the stack the other tiers commit
    to: every test here starts from the migrated schema with no rows but its own."""
    with throwaway_cluster() as cluster:
        yield cluster


@pytest.fixture
def tx(database: Cluster) -> Iterator[psycopg.Connection]:
    """A connection whose whole test runs in one transaction that is rolled back.

    Inside it, each `conn.transaction()` of a helper is a savepoint, never a commit.
    """
    with psycopg.connect(database.dsn, row_factory=dict_row) as conn, conn.transaction(force_rollback=True):
        yield conn


@pytest.fixture
def organization_id() -> uuid.UUID:
    return uuid.uuid4()


LIBFAKETIME = Path("/usr/lib/x86_64-linux-gnu/faketime/libfaketime.so.1")


@pytest.fixture(scope="module")
def clock_file() -> Iterator[Path]:
    # Not under pytest's tmp_path: that is private to root, and the server runs as
    # `postgres`; libfaketime falls back to the real clock when it cannot read this.
    folder = Path(tempfile.mkdtemp(prefix="cert-expiry-clock-"))
    folder.chmod(0o755)
    path = folder / "faketime"
    # Always an absolute instant: libfaketime keeps to a relative spec ("+0") once read.
    path.write_text("2026-01-01 12:00:00")
    path.chmod(0o644)
    yield path
    shutil.rmtree(folder)


@pytest.fixture(scope="module")
def clock_database(clock_file) -> Iterator[Cluster]:
    """A cluster whose wall clock stands still at the instant written in `clock_file`."""
    if not LIBFAKETIME.exists():
        pytest.fail(f"{LIBFAKETIME} is missing: install Debian's libfaketime (make test does, as root)")
    with throwaway_cluster(
        {
            "LD_PRELOAD": str(LIBFAKETIME),
            "FAKETIME_TIMESTAMP_FILE": str(clock_file),
            "FAKETIME_NO_CACHE": "1",
            # Timeouts and latches keep working on the real monotonic clock.
            "FAKETIME_DONT_FAKE_MONOTONIC": "1",
            "TZ": "UTC",
        }
    ) as cluster:
        yield cluster
