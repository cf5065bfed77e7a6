"""Fixtures shared by every tier that needs a real PostgreSQL.

Unit tests never ask for them, so they start no server.
"""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from local_supabase.ephemeral import Stack, running_gateway, throwaway_cluster
from local_supabase.gateway.faults import FaultSettings
from local_supabase.postgres import Cluster


@pytest.fixture(scope="session")
def database() -> Iterator[Cluster]:
    with throwaway_cluster() as cluster:
        yield cluster


@pytest.fixture(scope="session")
def stack(database: Cluster) -> Iterator[Stack]:
    with running_gateway(database) as running:
        yield running


@pytest.fixture
def no_faults(stack: Stack) -> Iterator[Stack]:
    """The stack with fault injection off again after the test, whatever it set."""
    yield stack
    stack.gateway.faults.configure(FaultSettings())
