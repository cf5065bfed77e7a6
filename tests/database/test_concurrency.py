"""Transitions racing on one mentor through real, separate connections."""

from __future__ import annotations

import itertools
import random
import threading
import time
import uuid
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor

import psycopg
import pytest
from psycopg.rows import dict_row

from .helpers import SERVICE_ROLE, call_rpc, create_mentor, history_of

RACERS = 24


@pytest.fixture
def committed(database) -> Iterator[psycopg.Connection]:
    """An autocommit connection; what the test creates in its organisation is removed after."""
    organization_id = uuid.uuid4()
    with psycopg.connect(database.dsn, row_factory=dict_row, autocommit=True) as conn:
        conn.organization_id = organization_id  # type: ignore[attr-defined]
        yield conn
        conn.execute(
            "delete from public.mentor_status_history h using public.peer_mentors m"
            " where h.mentor_id = m.id and m.organization_id = %s",
            (organization_id,),
        )
        conn.execute("delete from public.peer_mentors where organization_id = %s", (organization_id,))


def test_second_call_waits_on_the_row_lock_then_sees_the_new_status(database, committed):
    mentor_id = create_mentor(committed, committed.organization_id)
    with (
        psycopg.connect(database.dsn, row_factory=dict_row) as first,
        psycopg.connect(database.dsn, row_factory=dict_row) as second,
        ThreadPoolExecutor(1) as pool,
    ):
        second_pid = second.info.backend_pid
        with first.transaction():  # commits on leaving the block, not before
            call_rpc(first, SERVICE_ROLE, p_mentor_id=mentor_id, p_new_status="paused")
            pending = pool.submit(call_rpc, second, SERVICE_ROLE, p_mentor_id=mentor_id, p_new_status="active")
            deadline = time.monotonic() + 10
            while time.monotonic() < deadline:
                waiting = committed.execute(
                    "select wait_event_type from pg_stat_activity where pid = %s", (second_pid,)
                ).fetchone()
                if waiting and waiting["wait_event_type"] == "Lock":
                    break
                time.sleep(0.02)
            else:
                pytest.fail("the second call never waited on the row lock")
            assert not pending.done()
        result = pending.result(timeout=10)

    # It read the row only after the first call committed: it saw `paused`.
    assert (result["old_status"], result["new_status"]) == ("paused", "active")
    assert result["status_version"] == 2
    assert [(h["old_status"], h["new_status"]) for h in history_of(committed, mentor_id)] == [
        ("active", "paused"),
        ("paused", "active"),
    ]


def test_racing_connections_leave_a_consistent_chain(database, committed):
    mentor_id = create_mentor(committed, committed.organization_id)
    barrier = threading.Barrier(RACERS)
    rng = random.Random(7)
    wanted = [rng.choice(["paused", "active", "inactive"]) for _ in range(RACERS)]

    def race(new_status: str) -> bool:
        with psycopg.connect(database.dsn, row_factory=dict_row) as conn:
            barrier.wait(timeout=30)
            try:
                call_rpc(conn, SERVICE_ROLE, p_mentor_id=mentor_id, p_new_status=new_status)
            except psycopg.errors.RaiseException:
                return False
            return True

    with ThreadPoolExecutor(RACERS) as pool:
        succeeded = sum(pool.map(race, wanted))

    history = history_of(committed, mentor_id)
    mentor = committed.execute(
        "select status, status_version from public.peer_mentors where id = %s", (mentor_id,)
    ).fetchone()
    assert succeeded >= 1
    assert len(history) == succeeded
    assert mentor["status_version"] == succeeded
    assert history[0]["old_status"] == "active"
    for previous, current in itertools.pairwise(history):
        assert current["old_status"] == previous["new_status"]
    assert history[-1]["new_status"] == mentor["status"]
