"""The compliance check and coordinators' manual runs, through their entry points on the local stack."""

from __future__ import annotations

import collections
import logging
import re
import threading
import time
import uuid
from concurrent.futures import ThreadPoolExecutor
from datetime import UTC, datetime, timedelta

import psycopg
import pytest

from local_supabase.postgres import free_port
from tests.builders import add_finished_run, add_mentors, create_coordinator, create_user
from tests.function_client import function_test_client

OSLO, BERGEN = uuid.uuid4(), uuid.uuid4()


@pytest.fixture
def compliance(own_stack, monkeypatch):
    return function_test_client(own_stack, monkeypatch, target="certification_compliance_check")


def check(compliance, stack, method: str = "get") -> tuple[int, dict]:
    response = getattr(compliance, method)("/", headers={"Authorization": f"Bearer {stack.secret_key}"})
    return response.status_code, response.get_json()


def events(caplog: pytest.LogCaptureFixture, name: str) -> list[logging.LogRecord]:
    """The job's log records of one event (their JSON shape is checked in the unit tests)."""
    return [record for record in caplog.records if getattr(record, "json_fields", {}).get("event") == name]


# --- the compliance check ----------------------------------------------------------------------


def test_clean_state_after_a_real_run_is_ok(caplog, emptied_db, client, compliance, own_stack):
    add_mentors(emptied_db, OSLO, 5)
    add_mentors(emptied_db, OSLO, 5, expired=False)
    assert client.post("/", headers={"Authorization": f"Bearer {own_stack.secret_key}"}).status_code == 200

    for method in ("get", "post"):
        status, body = check(compliance, own_stack, method)
        assert status == 200, body
        assert body["ok"] is True
        assert body["expired_active_count"] == 0
        assert body["last_success_at"] is not None
    assert events(caplog, "compliance.breach") == []
    assert len(events(caplog, "compliance.ok")) == 2


def test_expired_mentors_still_active_are_a_breach(caplog, emptied_db, compliance, own_stack):
    add_finished_run(emptied_db, datetime.now(UTC) - timedelta(hours=1))
    expired = add_mentors(emptied_db, OSLO, 25)
    status, body = check(compliance, own_stack)

    assert status == 500
    assert body["ok"] is False
    assert body["expired_active_count"] == 25
    assert body["hidden_active_count"] == 25  # the job's backlog, already off every listing
    assert len(body["sample_mentor_ids"]) == 20
    assert set(body["sample_mentor_ids"]) <= expired
    [breach] = events(caplog, "compliance.breach")
    assert breach.levelno == logging.ERROR
    assert breach.json_fields["expired_active_count"] == 25


def test_no_run_ever_is_a_breach(emptied_db, compliance, own_stack):
    status, body = check(compliance, own_stack)
    assert (status, body["ok"], body["last_success_at"]) == (500, False, None)
    assert any("no full certification expiry run" in reason for reason in body["reasons"])


def test_a_stale_last_run_is_a_breach(emptied_db, compliance, own_stack):
    add_finished_run(emptied_db, datetime.now(UTC) - timedelta(hours=30))
    status, body = check(compliance, own_stack)
    assert (status, body["ok"]) == (500, False)
    assert body["last_success_at"] is not None


def test_an_unreachable_database_is_a_clear_503_never_ok(caplog, emptied_db, own_stack, monkeypatch):
    nowhere = function_test_client(
        own_stack, monkeypatch, target="certification_compliance_check", SUPABASE_URL=f"http://127.0.0.1:{free_port()}"
    )
    response = nowhere.get("/", headers={"Authorization": f"Bearer {own_stack.secret_key}"})
    assert response.status_code == 503
    body = response.get_json()
    assert body["error"]["code"] == "database_unavailable"
    assert "ok" not in body
    assert events(caplog, "compliance.failed")


def test_the_compliance_check_authenticates_like_the_job(emptied_db, compliance, own_stack):
    assert compliance.get("/").status_code == 401
    coordinator = create_coordinator(emptied_db, OSLO)
    token = own_stack.user_token(coordinator)
    assert compliance.get("/", headers={"Authorization": f"Bearer {token}"}).status_code == 403
    assert compliance.put("/", headers={"Authorization": f"Bearer {own_stack.secret_key}"}).status_code == 405


# --- coordinators' manual runs -----------------------------------------------------------------


def test_a_coordinator_runs_only_its_organisations_as_the_actor(caplog, emptied_db, client, own_stack):
    oslo = add_mentors(emptied_db, OSLO, 12)
    bergen = add_mentors(emptied_db, BERGEN, 7)
    coordinator = create_coordinator(emptied_db, OSLO)
    token = own_stack.user_token(coordinator)  # ES256, verified against the stack's JWKS

    response = client.post("/", headers={"Authorization": f"Bearer {token}"})
    assert response.status_code == 200, response.get_json()
    summary = response.get_json()
    assert set(summary["paused_mentor_ids"]) == oslo

    actors = emptied_db.execute(
        "select distinct actor_id from public.mentor_status_history where mentor_id::text = any(%s)", (list(oslo),)
    ).fetchall()
    assert actors == [(coordinator,)]
    (bergen_active,) = emptied_db.execute(
        "select count(*) from public.expired_active_mentors where id::text = any(%s)", (list(bergen),)
    ).fetchone()
    assert bergen_active == 7
    run = emptied_db.execute(
        "select trigger, actor_id, organization_ids from public.certification_expiry_runs where id = %s",
        (summary["job_run_id"],),
    ).fetchone()
    assert run == ("manual", coordinator, [OSLO])
    [started] = events(caplog, "job.started")
    assert started.json_fields["invoked_by"] == f"user:{coordinator}"


def test_a_user_who_coordinates_nothing_gets_403_and_nothing_happens(emptied_db, client, own_stack):
    add_mentors(emptied_db, OSLO, 3)
    outsider = create_user(emptied_db)
    response = client.post("/", headers={"Authorization": f"Bearer {own_stack.user_token(outsider)}"})
    assert response.status_code == 403
    assert response.get_json()["error"]["code"] == "forbidden"
    (runs,) = emptied_db.execute("select count(*) from public.certification_expiry_runs").fetchone()
    (history,) = emptied_db.execute("select count(*) from public.mentor_status_history").fetchone()
    assert (runs, history) == (0, 0)


def test_a_coordinators_es256_token_is_verified_locally_with_no_call_to_supabase_auth(
    emptied_db, own_stack, monkeypatch
):
    oslo = add_mentors(emptied_db, OSLO, 4)
    coordinator = create_coordinator(emptied_db, OSLO)
    client = function_test_client(own_stack, monkeypatch, COORDINATOR_RUN_INTERVAL_SECONDS="0")
    own_stack.gateway.requests.clear()

    for _ in range(3):
        response = client.post("/", headers={"Authorization": f"Bearer {own_stack.user_token(coordinator)}"})
        assert response.status_code == 200, response.get_json()
        oslo -= set(response.get_json()["paused_mentor_ids"])
    assert oslo == set()

    auth_requests = {path: n for path, n in own_stack.gateway.requests.items() if "/auth/v1/" in path}
    # The public keys once, for every run; never a round trip per token.
    assert auth_requests == {"GET /auth/v1/.well-known/jwks.json": 1}


def test_with_both_key_systems_set_the_secret_key_talks_to_the_database_and_both_are_accepted(
    caplog, emptied_db, own_stack, monkeypatch
):
    client = function_test_client(own_stack, monkeypatch, SUPABASE_SERVICE_ROLE_KEY=own_stack.service_role_key)
    for key in (own_stack.secret_key, own_stack.service_role_key):
        response = client.post("/", headers={"Authorization": f"Bearer {key}"}, json={"dry_run": True})
        assert response.status_code == 200, response.get_json()
    [configured] = events(caplog, "runtime.configured")
    assert configured.json_fields["database_key"] == "SUPABASE_SECRET_KEY"
    assert configured.json_fields["operator_keys"] == {"secret_key": 1, "service_role_key": 1}
    invoked_by = [record.json_fields["invoked_by"] for record in events(caplog, "job.started")]
    assert invoked_by == ["secret_key", "service_role_key"]


def test_during_a_rotation_every_listed_secret_key_is_accepted_and_others_are_not(emptied_db, own_stack, monkeypatch):
    old = "sb_secret_the-old-key-being-rotated-out"
    client = function_test_client(own_stack, monkeypatch, SUPABASE_SECRET_KEY=f"{own_stack.secret_key}, {old}")
    for key, status in ((own_stack.secret_key, 200), (old, 200), ("sb_secret_revoked", 401)):
        response = client.post("/", headers={"Authorization": f"Bearer {key}"}, json={"dry_run": True})
        assert response.status_code == status, response.get_json()


# --- coordinators' runs and the nightly run ------------------------------------------------------

UUID_OR_TIME = re.compile(r"[0-9a-f]{8}-[0-9a-f]{4}|\d{2}:\d{2}|\d{4}-\d{2}-\d{2}")
SCHEDULER = {"X-CloudScheduler-JobName": "certification-expiry-nightly"}


def hold_the_lease(emptied_db: psycopg.Connection, organization_ids: list[uuid.UUID] | None) -> None:
    """A run that works now (a coordinator's when organisations are given)."""
    emptied_db.execute(
        "insert into public.certification_expiry_runs (id, trigger, actor_id, organization_ids, lease_expires_at)"
        " values (gen_random_uuid(), 'manual', null, %s, now() + interval '10 minutes')",
        (organization_ids,),
    )


def test_a_working_coordinators_run_never_refuses_the_scheduler(emptied_db, client, own_stack):
    add_mentors(emptied_db, OSLO, 3)
    hold_the_lease(emptied_db, [OSLO])
    response = client.post("/", headers={"Authorization": f"Bearer {own_stack.secret_key}", **SCHEDULER})
    assert response.status_code == 200, response.get_json()
    assert response.get_json()["paused_count"] == 3


def test_a_coordinators_run_waits_for_a_run_covering_its_organisations_and_the_409_names_nothing(
    emptied_db, client, own_stack
):
    coordinator = create_coordinator(emptied_db, OSLO)
    hold_the_lease(emptied_db, None)
    response = client.post("/", headers={"Authorization": f"Bearer {own_stack.user_token(coordinator)}"})
    assert response.status_code == 409
    body = response.get_data(as_text=True)
    assert response.get_json()["error"]["code"] == "run_in_progress"
    assert not UUID_OR_TIME.search(body), body


def test_a_coordinators_runs_are_limited_per_kind_with_retry_after_and_the_429_names_nothing(
    emptied_db, client, own_stack
):
    add_mentors(emptied_db, OSLO, 2)
    coordinator = create_coordinator(emptied_db, OSLO)
    headers = {"Authorization": f"Bearer {own_stack.user_token(coordinator)}"}
    assert client.post("/", headers=headers, json={"dry_run": True}).status_code == 200
    again = client.post("/", headers=headers, json={"dry_run": True})
    assert again.status_code == 429
    assert 0 < int(again.headers["Retry-After"]) <= 300
    assert again.get_json()["error"]["code"] == "too_many_runs"
    assert not UUID_OR_TIME.search(again.get_data(as_text=True))
    # The real run may follow the dry run at once; then it too waits its turn.
    assert client.post("/", headers=headers).status_code == 200
    assert client.post("/", headers=headers).status_code == 429
    (runs,) = emptied_db.execute("select count(*) from public.certification_expiry_runs").fetchone()
    assert runs == 2


def test_a_full_run_and_a_coordinators_run_on_the_same_mentors_pause_each_once(emptied_db, own_stack, monkeypatch):
    mentors = add_mentors(emptied_db, OSLO, 300)
    coordinator = create_coordinator(emptied_db, OSLO)
    client = function_test_client(own_stack, monkeypatch, JOB_PAGE_SIZE="50")

    def post(token: str) -> dict:
        response = client.post("/", headers={"Authorization": f"Bearer {token}"})
        assert response.status_code == 200, response.get_json()
        return response.get_json()

    def coordinators_run_working() -> bool:
        query = "select count(*) from public.mentor_status_history h where h.actor_id = %s"
        return emptied_db.execute(query, (coordinator,)).fetchone()[0] > 0

    # The coordinator's run first, and the scheduler's while it works: both go on.
    with ThreadPoolExecutor(2) as pool:
        first = pool.submit(post, own_stack.user_token(coordinator))
        deadline = time.monotonic() + 20
        while not coordinators_run_working() and time.monotonic() < deadline:
            time.sleep(0.01)
        second = pool.submit(post, own_stack.secret_key)
        summaries = [first.result(), second.result()]

    paused = [set(summary["paused_mentor_ids"]) for summary in summaries]
    assert all(paused)  # both worked on the organisation's mentors
    assert paused[0].isdisjoint(paused[1])
    assert paused[0] | paused[1] == mentors
    history = emptied_db.execute(
        "select mentor_id::text, count(*) from public.mentor_status_history group by mentor_id"
    ).fetchall()
    assert {mentor for mentor, _ in history} == mentors
    assert {count for _, count in history} == {1}
    (audited,) = emptied_db.execute(
        "select count(distinct mentor_id) from public.certification_expiry_audit"
    ).fetchone()
    assert audited == len(mentors)


def test_eight_loops_of_coordinators_runs_never_keep_the_scheduler_out(emptied_db, own_stack, monkeypatch):
    """Eight hostile coordinators, each looping dry runs back to back with the rate limit
    lifted (its worst case), while the scheduler attempts the nightly run: every attempt
    gets through at once."""
    add_mentors(emptied_db, OSLO, 20)
    client = function_test_client(own_stack, monkeypatch, COORDINATOR_RUN_INTERVAL_SECONDS="0")
    tokens = [
        own_stack.user_token(create_coordinator(emptied_db, organization)) for organization in [OSLO] * 4 + [BERGEN] * 4
    ]
    stop = threading.Event()
    # Each coordinator's answers so far, for the scheduler to wait on; every key is
    # there from the start, so that the loops only ever update their own.
    answered = collections.Counter(dict.fromkeys(tokens, 0))

    def loop(token: str) -> collections.Counter[int]:
        answers: collections.Counter[int] = collections.Counter()
        while not stop.is_set():
            answers[
                client.post("/", headers={"Authorization": f"Bearer {token}"}, json={"dry_run": True}).status_code
            ] += 1
            answered[token] += 1
        return answers

    def every_loop_answered_again() -> None:
        """Wait until every coordinator has had another answer: the loops are at full tilt."""
        before = dict(answered)
        deadline = time.monotonic() + 30
        while any(answered[token] <= before.get(token, 0) for token in tokens) and time.monotonic() < deadline:
            time.sleep(0.01)

    with ThreadPoolExecutor(len(tokens)) as pool:
        loops = [pool.submit(loop, token) for token in tokens]
        scheduler = []
        for _ in range(5):
            every_loop_answered_again()
            response = client.post(
                "/", headers={"Authorization": f"Bearer {own_stack.secret_key}", **SCHEDULER}, json={"dry_run": True}
            )
            scheduler.append(response.status_code)
        stop.set()
        coordinators = sum((future.result() for future in loops), collections.Counter())

    assert scheduler == [200] * 5
    assert coordinators[200] > 0
    assert set(coordinators) <= {200, 409}
