"""The run ledger refuses what would make it lie, and a replay answers what it replays."""

from __future__ import annotations

import uuid

import psycopg
import pytest
from psycopg import errors

from tests.builders import SERVICE_ROLE, call_rpc, create_mentor, finish_run, start_run


@pytest.fixture
def run(tx) -> uuid.UUID:
    tx.execute("delete from public.certification_expiry_audit")
    tx.execute("delete from public.certification_expiry_runs")
    run_id = uuid.uuid4()
    start_run(tx, run_id)
    return run_id


def test_a_null_status_is_refused(tx, run):
    with pytest.raises(errors.InvalidParameterValue):
        finish_run(tx, run, None)


@pytest.mark.parametrize("counts", [(None, 0, 0, 0), (3, -1, 0, 0), (0, 0, 0, -5)])
def test_null_or_negative_counts_are_refused(tx, run, counts):
    with pytest.raises(errors.InvalidParameterValue):
        finish_run(tx, run, "succeeded", *counts)


def test_the_table_itself_refuses_impossible_counts(tx, run):
    for values in ("paused_count = -1", "candidate_count = 1, paused_count = 2"):
        with pytest.raises(errors.CheckViolation), tx.transaction():
            tx.execute(f"update public.certification_expiry_runs set {values} where id = %s", (run,))


def test_a_finished_run_is_not_rewritten_but_the_same_outcome_may_be_replayed(tx, run):
    finish_run(tx, run, "succeeded")
    finish_run(tx, run, "succeeded")  # the same outcome: a retry after a lost answer
    for status, counts in (("failed", (3, 2, 1, 0)), ("succeeded", (4, 2, 1, 0))):
        with pytest.raises(psycopg.Error) as raised:
            finish_run(tx, run, status, *counts)
        assert raised.value.sqlstate == "PT409"
    row = tx.execute("select status, candidate_count from public.certification_expiry_runs where id = %s", (run,))
    assert tuple(row.fetchone().values()) == ("succeeded", 0)


def test_a_run_closed_by_its_expired_lease_may_still_report_its_own_outcome(tx):
    tx.execute("delete from public.certification_expiry_audit")
    tx.execute("delete from public.certification_expiry_runs")
    dead, next_run = uuid.uuid4(), uuid.uuid4()
    start_run(tx, dead, lease_seconds=1)
    tx.execute(
        "update public.certification_expiry_runs set lease_expires_at = now() - interval '1 s' where id = %s", (dead,)
    )
    start_run(tx, next_run)  # marks the dead run failed
    finish_run(tx, dead, "partial", 3, 2, 0, 1)
    row = tx.execute(
        "select status, lease_expired from public.certification_expiry_runs where id = %s", (dead,)
    ).fetchone()
    assert (row["status"], row["lease_expired"]) == ("partial", False)


def test_a_replay_answers_the_version_its_transition_produced(tx, organization_id):
    mentor = create_mentor(tx, organization_id)
    first = call_rpc(tx, SERVICE_ROLE, p_mentor_id=mentor, p_new_status="paused", p_request_id="r1")
    call_rpc(tx, SERVICE_ROLE, p_mentor_id=mentor, p_new_status="active", p_request_id="r2")
    replay = call_rpc(tx, SERVICE_ROLE, p_mentor_id=mentor, p_new_status="paused", p_request_id="r1")
    assert replay["replayed"] is True
    assert replay["status_version"] == first["status_version"] == 1


def test_the_row_lock_lets_rows_that_reference_the_mentor_be_written_meanwhile(database):
    """`for no key update`: a transition in progress does not block another
    transaction's foreign-key check on the mentor (an audit or history insert)."""
    with psycopg.connect(database.dsn, autocommit=True) as setup:
        organization = uuid.uuid4()
        (mentor,) = setup.execute(
            "insert into public.peer_mentors (organization_id) values (%s) returning id", (organization,)
        ).fetchone()
    holder = psycopg.connect(database.dsn)
    try:
        holder.execute("select public.update_mentor_status(%s, 'paused')", (mentor,))  # holds the lock, uncommitted
        with psycopg.connect(database.dsn, autocommit=True) as other:
            other.execute("set lock_timeout = '2s'")
            other.execute(
                "insert into public.mentor_status_history (mentor_id, old_status, new_status) values (%s, 'x', 'y')",
                (mentor,),
            )
    finally:
        holder.rollback()
        holder.close()
        with psycopg.connect(database.dsn, autocommit=True) as cleanup:
            cleanup.execute("delete from public.mentor_status_history where mentor_id = %s", (mentor,))
            cleanup.execute("delete from public.peer_mentors where id = %s", (mentor,))
