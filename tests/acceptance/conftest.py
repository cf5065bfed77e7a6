"""A stack of its own per test module, emptied before each test, so that counts are exact."""

from __future__ import annotations

from collections.abc import Iterator

import psycopg
import pytest

from local_supabase.ephemeral import Stack, running_gateway, throwaway_cluster
from local_supabase.gateway.faults import FaultSettings
from local_supabase.postgres import empty_the_tables
from tests.function_client import function_test_client


@pytest.fixture(scope="module")
def own_stack() -> Iterator[Stack]:
    with throwaway_cluster() as cluster, running_gateway(cluster) as stack:
        yield stack


@pytest.fixture
def emptied_db(own_stack) -> Iterator[psycopg.Connection]:
    """The module's own stack, its tables emptied for this test (so counts are exact),
    autocommit, and fault injection off again afterwards."""
    with psycopg.connect(own_stack.database.dsn, autocommit=True) as conn:
        empty_the_tables(conn)
        yield conn
    own_stack.gateway.faults.configure(FaultSettings())


@pytest.fixture
def client(own_stack, monkeypatch):
    return function_test_client(own_stack, monkeypatch)
