"""Fixtures shared by every tier that needs a real PostgreSQL.

Unit tests never ask for them, so they start no server.
"""

from __future__ import annotations

import logging
from collections.abc import Iterator

import pytest

from local_supabase.ephemeral import Stack, running_gateway, throwaway_cluster
from local_supabase.gateway.faults import FaultSettings
from local_supabase.postgres import Cluster
from tests.secrets_guard import SEEN, RecordingHandler, leaks


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


@pytest.fixture(scope="session", autouse=True)
def no_secret_is_ever_logged_or_answered() -> Iterator[None]:
    """Checks every log record of the function and every response of its test
    clients, over the whole session (see tests/secrets_guard.py)."""
    handler = RecordingHandler()
    logger = logging.getLogger("certification_expiry")
    logger.addHandler(handler)
    yield
    logger.removeHandler(handler)
    found = leaks(SEEN)
    assert not found, f"secrets or tokens in {len(found)} log lines or responses, e.g. {found[:3]}"
