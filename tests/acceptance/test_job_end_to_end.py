"""The whole job: functions-framework's app, supabase-py over HTTP, the gateway, PostgreSQL.

A stack of its own, emptied before each test, so that counts are exact.
"""

from __future__ import annotations

from local_supabase.gateway.faults import FaultSettings
from tests.builders import EXPIRED_ACTIVE, paused_by_the_job, seed_expired_and_untouchable
from tests.function_client import post_run


def test_a_run_pauses_exactly_the_expired_active_mentors_and_a_second_run_nothing(emptied_db, client, own_stack):
    expired = seed_expired_and_untouchable(emptied_db)
    status, summary = post_run(client, own_stack)

    assert status == 200, summary
    assert summary["status"] == "succeeded"
    assert (summary["candidate_count"], summary["paused_count"], summary["error_count"]) == (EXPIRED_ACTIVE,) * 2 + (0,)
    # The response lists the first 1,000; the audit rows of the run are the complete list.
    assert len(summary["paused_mentor_ids"]) == 1000
    assert set(summary["paused_mentor_ids"]) < expired
    assert summary["paused_mentor_ids_truncated"] is True
    history = paused_by_the_job(emptied_db)
    assert set(history) == expired
    assert set(history.values()) == {1}
    (still_expired,) = emptied_db.execute("select count(*) from public.expired_active_mentors").fetchone()
    assert still_expired == 0
    untouched = emptied_db.execute(
        "select status, count(*) from public.peer_mentors where full_name not like 'Expired %%' group by status"
    ).fetchall()
    assert dict(untouched) == {"active": 60, "paused": 20, "inactive": 20}

    audit = emptied_db.execute(
        "select a.mentor_id::text, a.job_run_id::text, a.history_id = h.id,"
        " a.certification_expiry_date = m.certification_expiry_date"
        " from public.certification_expiry_audit a"
        " join public.mentor_status_history h on h.mentor_id = a.mentor_id"
        " join public.peer_mentors m on m.id = a.mentor_id"
    ).fetchall()
    assert {row[0] for row in audit} == expired
    assert len(audit) == EXPIRED_ACTIVE
    assert {row[1:] for row in audit} == {(summary["job_run_id"], True, True)}

    run_row = emptied_db.execute(
        "select status, trigger, candidate_count, paused_count, skipped_count, error_count, finished_at is not null"
        " from public.certification_expiry_runs where id = %s",
        (summary["job_run_id"],),
    ).fetchone()
    assert run_row == ("succeeded", "scheduled", EXPIRED_ACTIVE, EXPIRED_ACTIVE, 0, 0, True)

    status, second = post_run(client, own_stack)
    assert status == 200
    assert (second["candidate_count"], second["paused_count"]) == (0, 0)
    assert paused_by_the_job(emptied_db) == history
    (audit_rows,) = emptied_db.execute("select count(*) from public.certification_expiry_audit").fetchone()
    assert audit_rows == EXPIRED_ACTIVE


def test_responses_lost_after_commit_double_nothing_and_lose_nobody(emptied_db, client, own_stack):
    expired = seed_expired_and_untouchable(emptied_db, 1000)
    own_stack.gateway.faults.configure(FaultSettings(lost_response_rate=0.1, seed=11))

    for _ in range(2):  # a second run finishes whatever the first could not
        status, _ = post_run(client, own_stack)
        if status == 200:
            break
    own_stack.gateway.faults.configure(FaultSettings())

    history = paused_by_the_job(emptied_db)
    assert set(history) == expired
    assert set(history.values()) == {1}, "a lost answer made the job pause a mentor twice"
    (still_expired,) = emptied_db.execute("select count(*) from public.expired_active_mentors").fetchone()
    assert still_expired == 0
    audited = emptied_db.execute(
        "select count(distinct mentor_id), count(*) from public.certification_expiry_audit"
    ).fetchone()
    assert audited[0] == audited[1]  # never two audit rows for one mentor in one run
