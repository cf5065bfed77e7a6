from __future__ import annotations

import uuid
from collections.abc import Iterator

import psycopg
import pytest
from psycopg.rows import dict_row

from local_supabase.postgres import Cluster


@pytest.fixture
def db(database: Cluster) -> Iterator[psycopg.Connection]:
    """A connection whose whole test runs in one transaction that is rolled back.

    Inside it, each `conn.transaction()` of a helper is a savepoint, never a commit.
    """
    with psycopg.connect(database.dsn, row_factory=dict_row) as conn, conn.transaction(force_rollback=True):
        yield conn


@pytest.fixture
def organization_id() -> uuid.UUID:
    return uuid.uuid4()
