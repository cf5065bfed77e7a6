"""The job's request ids, read back by the audit repair only for transitions that
the named run can have made (test_update_mentor_status: that they are the job's alone)."""

from __future__ import annotations

import uuid
from datetime import date

import psycopg
import pytest

from certification_expiry.request_ids import REQUEST_ID_PREFIX, request_id_for
from tests.builders import (
    SERVICE_ROLE,
    call_rpc,
    create_coordinator,
    create_mentor,
    create_user,
    finish_run,
    start_run,
)
from tests.fakes import run_id_of

RUN = uuid.UUID("0b9d4b4e-4a0f-4c49-9d7e-3b1d1e1f2a3b")
MENTOR = uuid.UUID("e0000000-0000-4000-8000-000000000001")
OTHER = uuid.UUID("e0000000-0000-4000-8000-000000000002")

# (request id, mentor id, the run id both sides read from it)
EXAMPLES = [
    (request_id_for(RUN, MENTOR), MENTOR, RUN),
    (request_id_for(RUN, MENTOR), OTHER, None),  # another mentor's
    (f"certification_expiry:{RUN}", MENTOR, None),
    (f"certification_expiry:not-a-uuid:{MENTOR}", MENTOR, None),
    (f"certification_expiry:{str(RUN).upper()}:{MENTOR}", MENTOR, None),
    (f"certification_expiry:{RUN.hex}:{MENTOR}", MENTOR, None),
    (f"certification_expiry:{RUN}:{MENTOR}:x", MENTOR, None),
    (f"x-certification_expiry:{RUN}:{MENTOR}", MENTOR, None),
    (f"Certification_expiry:{RUN}:{MENTOR}", MENTOR, None),
    ("", MENTOR, None),
]


@pytest.mark.parametrize(("request_id", "mentor_id", "run_id"), EXAMPLES)
def test_python_and_sql_read_the_same_run_id_from_a_request_id(tx, request_id, mentor_id, run_id):
    assert run_id_of(request_id, mentor_id) == run_id
    (in_sql,) = (
        tx.execute("select public.certification_expiry_request_run_id(%s, %s)", (request_id, mentor_id))
        .fetchone()
        .values()
    )
    assert in_sql == run_id


def test_python_and_sql_share_one_prefix(tx):
    (in_sql,) = tx.execute("select public.job_request_id_prefix()").fetchone().values()
    assert in_sql == REQUEST_ID_PREFIX


# --- the repair ---------------------------------------------------------------------------


def forge_history(tx: psycopg.Connection, mentor_id: uuid.UUID, request_id: str, **fields: object) -> int:
    """A history row as one could be written before the prefix was reserved (or by hand)."""
    row = {"old_status": "active", "new_status": "paused", "actor_id": None, **fields}
    return tx.execute(
        "insert into public.mentor_status_history (mentor_id, old_status, new_status, actor_id, reason, request_id)"
        " values (%s, %s, %s, %s, 'forged', %s) returning id",
        (mentor_id, row["old_status"], row["new_status"], row["actor_id"], request_id),
    ).fetchone()["id"]


def repair(tx: psycopg.Connection) -> dict:
    return call_rpc(tx, SERVICE_ROLE, "repair_certification_expiry_audit")


def audit_rows(tx: psycopg.Connection) -> dict[int, uuid.UUID]:
    rows = tx.execute("select history_id, job_run_id from public.certification_expiry_audit").fetchall()
    return {row["history_id"]: row["job_run_id"] for row in rows}


def test_the_repair_credits_only_what_a_run_made_and_reports_the_rest(tx, organization_id):
    mentor_user = create_user(tx)
    mentors = [create_mentor(tx, organization_id, expiry=date(2020, 1, 1), user_id=mentor_user) for _ in range(8)]
    run = start_run(tx)
    # A real transition of that run whose audit row was lost: the one to repair.
    genuine = call_rpc(
        tx, SERVICE_ROLE, p_mentor_id=mentors[0], p_new_status="paused", p_request_id=request_id_for(run, mentors[0])
    )["history_id"]
    finish_run(tx, run)
    dry = start_run(tx, dry_run=True)
    finish_run(tx, dry)
    forged = [
        forge_history(tx, mentors[1], "certification_expiry:not-a-uuid:x"),  # used to stop the repair (22P02)
        forge_history(tx, mentors[2], request_id_for(run, mentors[2]), actor_id=mentor_user),  # a self-pause
        forge_history(tx, mentors[3], request_id_for(uuid.uuid4(), mentors[3])),  # no such run
        forge_history(tx, mentors[4], request_id_for(dry, mentors[4])),  # a dry run pauses nobody
        forge_history(tx, mentors[5], request_id_for(run, mentors[5]), new_status="inactive"),  # not the job's move
        forge_history(tx, mentors[6], request_id_for(run, mentors[0])),  # another mentor's id
        forge_history(tx, mentors[7], " " + request_id_for(run, mentors[7]).upper()),  # the prefix, not the job's id
    ]

    result = repair(tx)

    assert result == {"repaired": 1, "skipped": len(forged), "skipped_history_ids": sorted(forged)}
    assert audit_rows(tx) == {genuine: run}
    # And again: nothing left to repair, the same rows still skipped, never an error.
    assert repair(tx) == {"repaired": 0, "skipped": len(forged), "skipped_history_ids": sorted(forged)}


def test_a_transition_before_its_run_started_is_not_credited_to_it(tx, organization_id):
    mentor_id = create_mentor(tx, organization_id, expiry=date(2020, 1, 1))
    run = start_run(tx)
    history_id = forge_history(tx, mentor_id, request_id_for(run, mentor_id))
    tx.execute(
        "update public.mentor_status_history set changed_at = now() - interval '1 hour' where id = %s", (history_id,)
    )
    assert repair(tx)["skipped_history_ids"] == [history_id]
    assert history_id not in audit_rows(tx)


def test_a_coordinators_run_is_credited_only_with_its_own_pauses_in_its_organisations(tx, organization_id):
    coordinator = create_coordinator(tx, organization_id)
    inside = create_mentor(tx, organization_id, expiry=date(2020, 1, 1))
    outside = create_mentor(tx, uuid.uuid4(), expiry=date(2020, 1, 1))
    run_id = start_run(tx, actor_id=coordinator, organization_ids=[organization_id])
    own = forge_history(tx, inside, request_id_for(run_id, inside), actor_id=coordinator)
    by_the_system = create_mentor(tx, organization_id, expiry=date(2020, 1, 1))
    system = forge_history(tx, by_the_system, request_id_for(run_id, by_the_system))  # not the run's actor
    elsewhere = forge_history(tx, outside, request_id_for(run_id, outside), actor_id=coordinator)
    result = repair(tx)
    assert result["repaired"] == 1
    assert sorted(result["skipped_history_ids"]) == sorted([system, elsewhere])
    assert audit_rows(tx)[own] == run_id
