"""Transitions racing on one mentor through real, separate connections."""

from __future__ import annotations

import itertools
import random
import threading
import time
import uuid
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from datetime import timedelta

import psycopg
import pytest
from psycopg.rows import dict_row

from tests.builders import (
    SERVICE_ROLE,
    call_rpc,
    create_coordinator,
    create_mentor,
    create_user,
    history_of,
    record_renewal,
    user_claims,
)

RACERS = 24


@pytest.fixture
def committed(database) -> Iterator[psycopg.Connection]:
    """An autocommit connection; what the test creates in its organisation is removed after."""
    organization_id = uuid.uuid4()
    with psycopg.connect(database.dsn, row_factory=dict_row, autocommit=True) as conn:
        conn.organization_id = organization_id  # type: ignore[attr-defined]
        yield conn
        for dependent in ("mentor_status_history", "certification_renewals"):
            conn.execute(
                f"delete from public.{dependent} d using public.peer_mentors m"
                " where d.mentor_id = m.id and m.organization_id = %s",
                (organization_id,),
            )
        conn.execute("delete from public.peer_mentors where organization_id = %s", (organization_id,))
        conn.execute("delete from public.organization_coordinators where organization_id = %s", (organization_id,))


def wait_until_blocked(observer: psycopg.Connection, blocked: psycopg.Connection) -> None:
    """Return once `blocked` waits on a lock (the mentor's row lock, here)."""
    pid = blocked.info.backend_pid
    deadline = time.monotonic() + 10
    while time.monotonic() < deadline:
        waiting = observer.execute("select wait_event_type from pg_stat_activity where pid = %s", (pid,)).fetchone()
        if waiting and waiting["wait_event_type"] == "Lock":
            return
        time.sleep(0.02)
    pytest.fail("the second call never waited on the row lock")


def test_second_call_waits_on_the_row_lock_then_sees_the_new_status(database, committed):
    mentor_id = create_mentor(committed, committed.organization_id)
    with (
        psycopg.connect(database.dsn, row_factory=dict_row) as first,
        psycopg.connect(database.dsn, row_factory=dict_row) as second,
        ThreadPoolExecutor(1) as pool,
    ):
        with first.transaction():  # commits on leaving the block, not before
            call_rpc(first, SERVICE_ROLE, p_mentor_id=mentor_id, p_new_status="paused")
            pending = pool.submit(call_rpc, second, SERVICE_ROLE, p_mentor_id=mentor_id, p_new_status="active")
            wait_until_blocked(committed, second)
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


def race(database, committed, first_call, second_call) -> object:
    """Run `first_call` in a transaction, start `second_call` on another connection,
    see it wait on the row lock, commit the first; the second's result or error."""
    with (
        psycopg.connect(database.dsn, row_factory=dict_row) as first,
        psycopg.connect(database.dsn, row_factory=dict_row) as second,
        ThreadPoolExecutor(1) as pool,
    ):
        with first.transaction():
            first_call(first)
            pending = pool.submit(second_call, second)
            wait_until_blocked(committed, second)
        try:
            return pending.result(timeout=10)
        except psycopg.Error as error:
            return error


def test_a_mentors_resume_waiting_on_a_coordinators_suspension_is_refused(database, committed):
    """The mentor's own pause, ended and replaced by a coordinator's while the mentor's
    resume waits: the resume reads the history under the lock and finds the coordinator's."""
    organization_id = committed.organization_id
    mentor_user, coordinator = create_user(committed), create_coordinator(committed, organization_id)
    mentor_id = create_mentor(committed, organization_id, user_id=mentor_user)
    as_mentor = {"p_mentor_id": mentor_id, "p_actor_id": mentor_user}
    call_rpc(committed, user_claims(mentor_user), **as_mentor, p_new_status="paused")

    def suspend(conn: psycopg.Connection) -> None:
        for new_status in ("active", "paused"):
            call_rpc(
                conn,
                user_claims(coordinator),
                p_mentor_id=mentor_id,
                p_actor_id=coordinator,
                p_new_status=new_status,
                p_reason="pending a complaint",
            )

    outcome = race(
        database,
        committed,
        suspend,
        lambda conn: call_rpc(conn, user_claims(mentor_user), **as_mentor, p_new_status="active"),
    )

    assert isinstance(outcome, psycopg.errors.InsufficientPrivilege)
    history = history_of(committed, mentor_id)
    assert [(h["new_status"], h["actor_id"]) for h in history] == [
        ("paused", mentor_user),
        ("active", coordinator),
        ("paused", coordinator),
    ]


def test_a_coordinators_suspension_waiting_on_the_mentors_resume_applies_after_it(database, committed):
    organization_id = committed.organization_id
    mentor_user, coordinator = create_user(committed), create_coordinator(committed, organization_id)
    mentor_id = create_mentor(committed, organization_id, user_id=mentor_user)
    as_mentor = {"p_mentor_id": mentor_id, "p_actor_id": mentor_user}
    call_rpc(committed, user_claims(mentor_user), **as_mentor, p_new_status="paused")

    outcome = race(
        database,
        committed,
        lambda conn: call_rpc(conn, user_claims(mentor_user), **as_mentor, p_new_status="active"),
        lambda conn: call_rpc(
            conn, user_claims(coordinator), p_mentor_id=mentor_id, p_actor_id=coordinator, p_new_status="paused"
        ),
    )

    assert outcome["old_status"] == "active"
    assert [h["actor_id"] for h in history_of(committed, mentor_id)] == [mentor_user, mentor_user, coordinator]


def jobs_pause(conn: psycopg.Connection, mentor_id: uuid.UUID) -> dict:
    """The nightly job's pause, with the version it read before any renewal."""
    return call_rpc(
        conn,
        SERVICE_ROLE,
        p_mentor_id=mentor_id,
        p_new_status="paused",
        p_expected_version=0,
        p_reason="certification_expired",
    )


def test_a_renewal_committed_under_the_jobs_pause_turns_it_into_a_conflict(database, committed):
    """The job pauses with the version it read; a renewal bumps it, so the pause of a
    mentor renewed meanwhile is PT409 (then the job reads again and skips), never a pause."""
    expired = committed.execute("select public.certification_today() - 3 as d").fetchone()["d"]
    mentor_id = create_mentor(committed, committed.organization_id, expiry=expired)
    coordinator = create_coordinator(committed, committed.organization_id)
    renewed_until = expired + timedelta(days=368)

    outcome = race(
        database,
        committed,
        lambda conn: record_renewal(
            conn,
            user_claims(coordinator),
            p_mentor_id=mentor_id,
            p_new_expiry_date=renewed_until,
            p_actor_id=coordinator,
        ),
        lambda conn: jobs_pause(conn, mentor_id),
    )

    assert isinstance(outcome, psycopg.Error)
    assert outcome.sqlstate == "PT409"
    assert history_of(committed, mentor_id) == []
    assert (
        committed.execute(
            "select count(*) as n from public.expired_active_mentors where id = %s", (mentor_id,)
        ).fetchone()["n"]
        == 0
    )


def test_a_renewal_waiting_on_the_jobs_pause_ends_that_pause(database, committed):
    expired = committed.execute("select public.certification_today() - 3 as d").fetchone()["d"]
    mentor_id = create_mentor(committed, committed.organization_id, expiry=expired)
    coordinator = create_coordinator(committed, committed.organization_id)

    outcome = race(
        database,
        committed,
        lambda conn: jobs_pause(conn, mentor_id),
        lambda conn: record_renewal(
            conn,
            user_claims(coordinator),
            p_mentor_id=mentor_id,
            p_new_expiry_date=expired + timedelta(days=368),
            p_actor_id=coordinator,
            p_reactivate=True,
        ),
    )

    assert (outcome["status"], outcome["status_version"]) == ("active", 3)
    history = history_of(committed, mentor_id)
    assert [(h["new_status"], h["actor_id"], h["reason"]) for h in history] == [
        ("paused", None, "certification_expired"),
        ("active", coordinator, "certification_renewed"),
    ]
    assert history[-1]["status_version"] == 3
