"""Faults, outages, overlapping runs and racing actors: nothing lost, nothing done twice."""

from __future__ import annotations

import contextlib
import os
import signal
import subprocess
import sys
import threading
import time
import uuid
from concurrent.futures import ThreadPoolExecutor

import httpx
import psycopg
from postgrest.exceptions import APIError
from supabase import create_client

from local_supabase.gateway.faults import FaultSettings
from local_supabase.keys import DEFAULT_JWT_SECRET, user_access_token
from local_supabase.postgres import free_port
from tests.builders import (
    create_coordinator,
    create_mentor,
    create_user,
    days_from_today,
    paused_by_the_job,
    seed_expired_and_untouchable,
)
from tests.function_client import function_test_client, post_run
from tests.log_capture import EventLogged
from tools.paths import PROJECT_ROOT


def audited(emptied_db: psycopg.Connection) -> dict[str, int]:
    """mentor id -> number of audit rows."""
    return dict(
        emptied_db.execute("select mentor_id::text, count(*) from public.certification_expiry_audit group by 1")
    )


def untouched_except(emptied_db: psycopg.Connection, expired: set[str]) -> None:
    """Nobody but the expired mentors was paused, and none of those is still active."""
    changed = emptied_db.execute(
        "select id::text from public.peer_mentors"
        " where status_version > 0 or (status = 'paused' and full_name like 'Expired %%')"
    ).fetchall()
    assert {row[0] for row in changed} <= expired
    (still,) = emptied_db.execute("select count(*) from public.expired_active_mentors").fetchone()
    assert still == 0


def history_agrees_with_status(emptied_db: psycopg.Connection) -> None:
    """No half-done transition: a mentor is paused exactly when its history says so."""
    disagreeing = emptied_db.execute(
        "select m.id from public.peer_mentors m"
        " left join lateral (select new_status from public.mentor_status_history h"
        "                    where h.mentor_id = m.id order by h.id desc limit 1) last on true"
        " where m.status_version > 0 and m.status is distinct from last.new_status"
        "    or m.status_version <> (select count(*) from public.mentor_status_history h where h.mentor_id = m.id)"
    ).fetchall()
    assert disagreeing == []


def test_under_503s_lost_answers_and_jitter_nothing_is_lost_or_doubled(emptied_db, client, own_stack):
    expired = seed_expired_and_untouchable(emptied_db, 2000)
    own_stack.gateway.faults.configure(
        FaultSettings(unavailable_rate=0.10, lost_response_rate=0.05, latency_ms=1, jitter_ms=4, seed=7)
    )
    reported_errors = []
    for _ in range(2):
        status, summary = post_run(client, own_stack)
        if status == 409:  # a lost answer to the lease call of a retried request: wait it out
            continue
        reported_errors += summary.get("errors", [])
        if status == 200:
            break
    own_stack.gateway.faults.configure(FaultSettings())
    post_run(client, own_stack)  # the next night: repairs any audit row a lost answer left out

    assert {error["mentor_id"] for error in reported_errors} <= expired
    untouched_except(emptied_db, expired)
    history = paused_by_the_job(emptied_db)
    assert set(history) == expired
    assert set(history.values()) == {1}
    assert audited(emptied_db) == dict.fromkeys(expired, 1)


def test_an_audit_that_cannot_be_written_is_repaired_by_the_next_run(emptied_db, client, own_stack):
    expired = seed_expired_and_untouchable(emptied_db, 300)
    own_stack.gateway.faults.configure(FaultSettings(refuse_path="certification_expiry_audit"))
    status, first = post_run(client, own_stack)
    own_stack.gateway.faults.configure(FaultSettings())

    assert status == 500
    assert first["status"] == "failed"
    assert first["paused_count"] == 300  # the transitions happened...
    assert set(paused_by_the_job(emptied_db)) == expired  # ...and are in the history
    assert audited(emptied_db) == {}
    (run_status,) = emptied_db.execute(
        "select status from public.certification_expiry_runs where id = %s", (first["job_run_id"],)
    ).fetchone()
    assert run_status == "failed"

    status, second = post_run(client, own_stack)
    assert status == 200
    assert second["paused_count"] == 0
    assert audited(emptied_db) == dict.fromkeys(expired, 1)
    rows = emptied_db.execute("select distinct job_run_id::text from public.certification_expiry_audit").fetchall()
    assert rows == [(first["job_run_id"],)]  # attributed to the run that made the transitions


def test_a_database_outage_mid_run_leaves_no_half_done_transition(emptied_db, own_stack, monkeypatch):
    # With the default three retries a run rides out an outage of several seconds
    # (docs/testing.md); one retry and ten seconds make some mentors fail.
    client = function_test_client(own_stack, monkeypatch, JOB_MAX_RETRIES="1")
    expired = seed_expired_and_untouchable(emptied_db, 1500)
    own_stack.gateway.faults.configure(FaultSettings(latency_ms=10))
    results = []
    worker = threading.Thread(target=lambda: results.append(post_run(client, own_stack)))
    worker.start()
    deadline = time.monotonic() + 30
    while not paused_by_the_job(emptied_db) and time.monotonic() < deadline:
        time.sleep(0.05)
    emptied_db.close()
    with EventLogged("mentor.failed") as a_mentor_failed:
        own_stack.database.stop()
        # Down until a mentor's attempts are spent: some mentors fail for good.
        assert a_mentor_failed.wait(timeout=120), "no mentor failed while the database was down"
    own_stack.database.start()
    worker.join(timeout=300)
    own_stack.gateway.faults.configure(FaultSettings())
    [(status, summary)] = results

    with psycopg.connect(own_stack.database.dsn, autocommit=True) as conn:
        assert status == 500, summary
        assert summary["error_count"] > 0
        assert {error["mentor_id"] for error in summary["errors"]} <= expired
        history_agrees_with_status(conn)

        status, second = post_run(client, own_stack)
        assert status == 200, second
        history_agrees_with_status(conn)
        untouched_except(conn, expired)
        assert set(paused_by_the_job(conn).values()) == {1}
        assert audited(conn) == dict.fromkeys(expired, 1)


def test_of_five_simultaneous_invocations_one_runs_and_four_get_409(emptied_db, client, own_stack):
    seed_expired_and_untouchable(emptied_db, 300)
    own_stack.gateway.faults.configure(FaultSettings(latency_ms=20))
    barrier = threading.Barrier(5)

    def invoke() -> int:
        barrier.wait()
        return post_run(client, own_stack)[0]

    with ThreadPoolExecutor(5) as pool:
        statuses = sorted(pool.map(lambda _: invoke(), range(5)))
    assert statuses == [200, 409, 409, 409, 409]
    (runs,) = emptied_db.execute("select count(*) from public.certification_expiry_runs").fetchone()
    assert runs == 1
    assert set(paused_by_the_job(emptied_db).values()) == {1}


def test_a_killed_run_leaves_a_lease_that_expires_and_the_next_run_finishes(emptied_db, own_stack, client):
    expired = seed_expired_and_untouchable(emptied_db, 800)
    own_stack.gateway.faults.configure(FaultSettings(latency_ms=20))
    port = free_port()
    environment = {
        **os.environ,
        "SUPABASE_URL": own_stack.url,
        "SUPABASE_SERVICE_ROLE_KEY": own_stack.secret_key,
    }
    server = subprocess.Popen(
        [sys.executable, "-m", "functions_framework", "--target", "certification_expiry_job", "--port", str(port)],
        cwd=PROJECT_ROOT,
        env=environment,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
        start_new_session=True,  # gunicorn's master and its worker, killed together below
    )
    try:
        for _ in range(100):
            try:
                httpx.get(f"http://127.0.0.1:{port}/", timeout=1)
                break
            except httpx.TransportError:
                time.sleep(0.1)

        def call_and_lose_the_answer() -> None:
            with contextlib.suppress(httpx.TransportError):  # the instance dies under it
                httpx.post(
                    f"http://127.0.0.1:{port}/",
                    headers={"Authorization": f"Bearer {own_stack.secret_key}"},
                    timeout=120,
                )

        caller = threading.Thread(target=call_and_lose_the_answer, daemon=True)
        caller.start()
        deadline = time.monotonic() + 30
        while len(paused_by_the_job(emptied_db)) < 50 and time.monotonic() < deadline:
            time.sleep(0.05)
    finally:
        os.killpg(server.pid, signal.SIGKILL)  # the instance dies mid-run
        server.wait()
    own_stack.gateway.faults.configure(FaultSettings())
    done_before = len(paused_by_the_job(emptied_db))
    assert 0 < done_before < 800

    status, refused = post_run(client, own_stack)
    assert status == 409  # the dead run's lease still holds
    assert refused["error"]["code"] == "run_in_progress"

    emptied_db.execute("update public.certification_expiry_runs set lease_expires_at = now() where status = 'running'")
    status, summary = post_run(client, own_stack)  # as it would once the lease has run out
    assert status == 200, summary
    killed = emptied_db.execute(
        "select status from public.certification_expiry_runs where id <> %s", (summary["job_run_id"],)
    )
    assert killed.fetchall() == [("failed",)]
    history = paused_by_the_job(emptied_db)
    assert set(history) == expired
    assert set(history.values()) == {1}
    assert audited(emptied_db) == dict.fromkeys(expired, 1)


def test_a_coordinator_a_mentor_and_the_job_racing_make_one_transition_each(emptied_db, client, own_stack):
    organization = uuid.uuid4()
    coordinator = create_coordinator(emptied_db, organization)
    mentors = {}
    for _ in range(40):
        user = create_user(emptied_db)
        mentors[str(create_mentor(emptied_db, organization, expiry=days_from_today(-3), user_id=user))] = user

    def as_user(user: uuid.UUID):
        supabase = create_client(own_stack.url, own_stack.anon_key)
        supabase.postgrest.auth(user_access_token(DEFAULT_JWT_SECRET, user))
        return supabase

    outcomes: list[str] = []
    barrier = threading.Barrier(3)

    def pause_all(user: uuid.UUID | None) -> None:
        barrier.wait()
        for mentor, mentor_user in mentors.items():
            actor = user or mentor_user
            try:
                as_user(actor).rpc(
                    "update_mentor_status",
                    {"p_mentor_id": mentor, "p_new_status": "paused", "p_actor_id": str(actor), "p_reason": "racing"},
                ).execute()
                outcomes.append("paused")
            except APIError as error:
                outcomes.append(error.code)

    def job() -> None:
        barrier.wait()
        outcomes.append(str(post_run(client, own_stack)[0]))

    with ThreadPoolExecutor(3) as pool:
        for future in [pool.submit(pause_all, coordinator), pool.submit(pause_all, None), pool.submit(job)]:
            future.result()

    rejected = [outcome for outcome in outcomes if outcome in ("P0001", "PT409")]
    assert "200" in outcomes
    assert set(outcomes) <= {"paused", "P0001", "PT409", "200"}
    counts = emptied_db.execute(
        "select mentor_id::text, count(*), min(old_status), min(new_status) from public.mentor_status_history"
        " where mentor_id::text = any(%s) group by 1",
        (list(mentors),),
    ).fetchall()
    assert {mentor for mentor, *_ in counts} == set(mentors)
    assert {tuple(rest) for _, *rest in counts} == {(1, "active", "paused")}
    # Of the 80 user calls, those that lost the race were refused, not applied.
    job_transitions = len(paused_by_the_job(emptied_db))
    assert outcomes.count("paused") + job_transitions == 40
    assert len(rejected) == 80 - outcomes.count("paused")
    history_agrees_with_status(emptied_db)
