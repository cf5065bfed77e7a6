"""The whole job: functions-framework's app, supabase-py over HTTP, the gateway, PostgreSQL.

A stack of its own, emptied before each test, so that counts are exact.
"""

from __future__ import annotations

import threading

import psycopg

from local_supabase.ephemeral import Stack
from local_supabase.gateway.faults import FaultSettings

EXPIRED_ACTIVE = 2500


def seed(db: psycopg.Connection, expired_active: int = EXPIRED_ACTIVE) -> set[str]:
    """Expired active mentors, and some of every kind the job must leave alone."""
    today = "(now() at time zone 'Europe/Oslo')::date"
    rows = db.execute(
        "insert into public.peer_mentors (organization_id, full_name, status, certification_expiry_date)"
        f" select gen_random_uuid(), 'Expired ' || n, 'active', {today} - (1 + n %% 400)"
        " from generate_series(1, %s) n returning id",
        (expired_active,),
    ).fetchall()
    db.execute(
        "insert into public.peer_mentors (organization_id, full_name, status, certification_expiry_date)"
        f" select gen_random_uuid(), kind, status, {today} + offset_days"
        " from (values ('today', 'active', 0), ('future', 'active', 30), ('none', 'active', null),"
        "             ('paused', 'paused', -10), ('inactive', 'inactive', -10)) as k(kind, status, offset_days),"
        " generate_series(1, 20)"
    )
    return {str(row[0]) for row in rows}


def paused_by_the_job(db: psycopg.Connection) -> dict[str, int]:
    """mentor id -> number of history rows the job wrote for it."""
    rows = db.execute(
        "select mentor_id::text, count(*) from public.mentor_status_history"
        " where request_id like 'certification_expiry:%%' group by mentor_id"
    ).fetchall()
    return dict(rows)


def run(client, stack: Stack, **body) -> tuple[int, dict]:
    response = client.post(
        "/",
        headers={"Authorization": f"Bearer {stack.secret_key}", "X-CloudScheduler-JobName": "nightly"},
        json=body,
    )
    return response.status_code, response.get_json()


def test_a_run_pauses_exactly_the_expired_active_mentors_and_a_second_run_nothing(db, client, own_stack):
    expired = seed(db)
    status, summary = run(client, own_stack)

    assert status == 200, summary
    assert summary["status"] == "succeeded"
    assert (summary["candidate_count"], summary["paused_count"], summary["error_count"]) == (EXPIRED_ACTIVE,) * 2 + (0,)
    # The response lists the first 1,000; the audit rows of the run are the complete list.
    assert len(summary["paused_mentor_ids"]) == 1000
    assert set(summary["paused_mentor_ids"]) < expired
    assert summary["paused_mentor_ids_truncated"] is True
    history = paused_by_the_job(db)
    assert set(history) == expired
    assert set(history.values()) == {1}
    (still_expired,) = db.execute("select count(*) from public.expired_active_mentors").fetchone()
    assert still_expired == 0
    untouched = db.execute(
        "select status, count(*) from public.peer_mentors where full_name not like 'Expired %%' group by status"
    ).fetchall()
    assert dict(untouched) == {"active": 60, "paused": 20, "inactive": 20}

    audit = db.execute(
        "select a.mentor_id::text, a.job_run_id::text, a.history_id = h.id,"
        " a.certification_expiry_date = m.certification_expiry_date"
        " from public.certification_expiry_audit a"
        " join public.mentor_status_history h on h.mentor_id = a.mentor_id"
        " join public.peer_mentors m on m.id = a.mentor_id"
    ).fetchall()
    assert {row[0] for row in audit} == expired
    assert len(audit) == EXPIRED_ACTIVE
    assert {row[1:] for row in audit} == {(summary["job_run_id"], True, True)}

    run_row = db.execute(
        "select status, trigger, candidate_count, paused_count, skipped_count, error_count, finished_at is not null"
        " from public.certification_expiry_runs where id = %s",
        (summary["job_run_id"],),
    ).fetchone()
    assert run_row == ("succeeded", "scheduled", EXPIRED_ACTIVE, EXPIRED_ACTIVE, 0, 0, True)

    status, second = run(client, own_stack)
    assert status == 200
    assert (second["candidate_count"], second["paused_count"]) == (0, 0)
    assert paused_by_the_job(db) == history
    (audit_rows,) = db.execute("select count(*) from public.certification_expiry_audit").fetchone()
    assert audit_rows == EXPIRED_ACTIVE


def test_responses_lost_after_commit_double_nothing_and_lose_nobody(db, client, own_stack):
    expired = seed(db, 1000)
    own_stack.gateway.faults.configure(FaultSettings(lost_response_rate=0.1, seed=11))

    for _ in range(2):  # a second run finishes whatever the first could not
        status, _ = run(client, own_stack)
        if status == 200:
            break
    own_stack.gateway.faults.configure(FaultSettings())

    history = paused_by_the_job(db)
    assert set(history) == expired
    assert set(history.values()) == {1}, "a lost answer made the job pause a mentor twice"
    (still_expired,) = db.execute("select count(*) from public.expired_active_mentors").fetchone()
    assert still_expired == 0
    audited = db.execute("select count(distinct mentor_id), count(*) from public.certification_expiry_audit").fetchone()
    assert audited[0] == audited[1]  # never two audit rows for one mentor in one run


def test_of_two_simultaneous_invocations_one_runs_and_one_gets_409(db, client, own_stack):
    seed(db, 300)
    own_stack.gateway.faults.configure(FaultSettings(latency_ms=20))  # so that the runs overlap
    results: list[tuple[int, dict]] = []
    barrier = threading.Barrier(2)

    def invoke() -> None:
        barrier.wait()
        results.append(run(client, own_stack))

    threads = [threading.Thread(target=invoke) for _ in range(2)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()

    statuses = sorted(status for status, _ in results)
    assert statuses == [200, 409], results
    [(_, refused)] = [result for result in results if result[0] == 409]
    assert refused["error"]["code"] == "run_in_progress"
    (runs,) = db.execute("select count(*) from public.certification_expiry_runs").fetchone()
    assert runs == 1
