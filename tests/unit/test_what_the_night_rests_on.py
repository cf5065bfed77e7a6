"""What a night rests on, held by the deploy gate's tier (cloudbuild.yaml runs
tests/unit before anything ships): each behaviour here broke without a unit test
failing when mutation testing changed it. Both entry points are served by
functions-framework over the in-memory store (tests/fake_serving.py)."""

from __future__ import annotations

import logging
import uuid

import pytest

from certification_expiry import job as job_module
from certification_expiry.bodies import JobRequest
from certification_expiry.http_api import bearer_token
from certification_expiry.job import BACKOFF, FINISH_RETRIES
from certification_expiry.ports import StoreError, StoreErrorKind
from certification_expiry.records import RunStatus, Trigger
from certification_expiry.run_state import RunScope
from certification_expiry.store_errors import _TRANSIENT_POSTGREST, _TRANSIENT_SQLSTATES
from tests.fake_serving import OPERATOR_KEY, FakeServing
from tests.fakes import FakeStore, make_job, transient


def test_a_run_that_did_all_it_should_is_answered_200(monkeypatch):
    store = FakeStore()
    store.add(3)
    status, body = FakeServing(store, monkeypatch).post()
    assert (status, body["status"], body["paused_count"]) == (200, "succeeded", 3)


def test_a_run_with_a_failed_mentor_is_answered_500_so_the_scheduler_retries(monkeypatch):
    store = FakeStore()
    [failing, *_] = store.add(3)
    store.pause_failures[failing] = [StoreError(StoreErrorKind.PERMANENT, "23514", "check violated")]
    status, body = FakeServing(store, monkeypatch).post()
    assert (status, body["status"], body["error_count"]) == (500, "partial", 1)


def test_a_scheduled_run_is_recorded_as_scheduled_and_a_run_by_hand_as_manual(monkeypatch):
    store = FakeStore()
    serving = FakeServing(store, monkeypatch)
    serving.client.post("/", headers={"Authorization": f"Bearer {OPERATOR_KEY}", "X-CloudScheduler-JobName": "n"})
    serving.post()
    assert sorted(run.trigger.value for run in store.runs.values()) == ["manual", "scheduled"]


def test_duplicate_keys_in_the_body_are_refused_and_no_run_starts(monkeypatch):
    store = FakeStore()
    store.add(1)
    serving = FakeServing(store, monkeypatch)
    response = serving.client.post(
        "/",
        data='{"dry_run": true, "dry_run": false}',
        headers={"Authorization": f"Bearer {OPERATOR_KEY}", "Content-Type": "application/json"},
    )
    assert (response.status_code, response.get_json()["error"]["code"]) == (400, "bad_request")
    assert store.runs == {}


@pytest.mark.parametrize("header", ["Basic {key}", "Token {key}", "{key}", "Bearer", "Bearer   "])
def test_only_the_bearer_scheme_carries_a_token(header):
    with pytest.raises(Exception, match="Bearer"):
        bearer_token(header.format(key=OPERATOR_KEY))


def test_the_compliance_check_answers_get_as_the_scheduler_registers_it_and_200_when_all_is_well(monkeypatch):
    store = FakeStore()
    store.add(2)
    FakeServing(store, monkeypatch).post()  # tonight's run pauses them
    serving = FakeServing(store, monkeypatch, "certification_compliance_check")
    response = serving.client.get("/", headers={"Authorization": f"Bearer {OPERATOR_KEY}"})
    assert (response.status_code, response.get_json()["ok"]) == (200, True)


def test_a_breach_is_answered_500_and_logged_at_error(monkeypatch):
    store = FakeStore()
    store.add(2, expiry=store.today.replace(year=store.today.year - 1))  # long expired and never paused
    serving = FakeServing(store, monkeypatch, "certification_compliance_check")
    response = serving.client.get("/", headers={"Authorization": f"Bearer {OPERATOR_KEY}"})
    assert (response.status_code, response.get_json()["ok"]) == (500, False)
    [breach] = serving.events("compliance.breach")
    assert breach["severity"] == "ERROR"


LOGGER = logging.getLogger("test.night")


def test_a_coordinators_pause_keeps_the_coordinator_as_actor():
    store = FakeStore()
    organization = uuid.uuid4()
    store.add(1, organization_id=organization)
    coordinator = uuid.uuid4()
    job = make_job(store, LOGGER)
    job.run(JobRequest(), RunScope(Trigger.MANUAL, actor_id=coordinator, organization_ids=(organization,)))
    assert [row.actor_id for row in store.history] == [coordinator]


def test_skips_and_errors_are_counted_each():
    store = FakeStore()
    mentors = store.add(6)
    for mentor_id in mentors[:3]:
        store.pause_failures[mentor_id] = [StoreError(StoreErrorKind.NOT_ALLOWED, "P0001", "not active")]
    for mentor_id in mentors[3:]:
        store.pause_failures[mentor_id] = [StoreError(StoreErrorKind.PERMANENT, "23514", "check")]
    job = make_job(store, LOGGER)
    summary = job.run(JobRequest(), RunScope(Trigger.MANUAL))
    assert (summary.skipped_count, summary.error_count, summary.status) == (3, 3, RunStatus.PARTIAL)


def test_a_transient_failure_is_retried_after_a_back_off():
    store = FakeStore()
    [mentor_id] = store.add(1)
    store.pause_failures[mentor_id] = [transient(), transient()]
    job = make_job(store, LOGGER)
    summary = job.run(JobRequest(), RunScope(Trigger.MANUAL))
    assert summary.paused_count == 1
    assert len(job.sleeps) == 2
    assert all(seconds > 0 for seconds in job.sleeps)


def test_job_concurrency_bounds_the_pauses_in_flight(monkeypatch):
    seen: list[int] = []
    real = job_module.ThreadPoolExecutor

    def recording(*args: object, **kwargs: object) -> object:
        seen.append(int(kwargs.get("max_workers") or args[0]))  # type: ignore[call-overload]
        return real(*args, **kwargs)  # type: ignore[arg-type]

    monkeypatch.setattr(job_module, "ThreadPoolExecutor", recording)
    store = FakeStore()
    store.add(5)
    job = make_job(store, LOGGER, job_concurrency=3)
    job.run(JobRequest(), RunScope(Trigger.MANUAL))
    assert seen
    assert set(seen) == {3}


def test_one_failed_audit_chunk_does_not_stop_the_others():
    store = FakeStore()
    store.add(25)
    store.audit_failures = [StoreError(StoreErrorKind.PERMANENT, "23503", "foreign key")]
    job = make_job(store, LOGGER, job_audit_chunk_size=10)
    summary = job.run(JobRequest(), RunScope(Trigger.MANUAL))
    assert len(store.audit) == 15
    assert summary.status is not RunStatus.SUCCEEDED


# --- module constants: what they mean, pinned ---------------------------------------------


def test_the_transient_classes_are_the_server_that_could_not_work_right_now():
    assert set(_TRANSIENT_SQLSTATES) == {"08", "53", "57P", "57014", "55P03", "40001", "40P01"}
    assert {"PGRST000", "PGRST001", "PGRST002", "PGRST003"} == _TRANSIENT_POSTGREST


def test_finishing_is_asked_exactly_its_retries_more_times_before_the_run_gives_up(monkeypatch):
    store = FakeStore()
    attempts: list[int] = []

    def unreachable(summary: object) -> None:
        attempts.append(1)
        raise transient()

    monkeypatch.setattr(store, "finish_run", unreachable)
    job = make_job(store, LOGGER)
    summary = job.run(JobRequest(), RunScope(Trigger.MANUAL))
    assert summary.status is RunStatus.FAILED
    assert (len(attempts), len(job.sleeps)) == (FINISH_RETRIES + 1, FINISH_RETRIES)


def test_finishing_is_retried_many_times_and_every_retry_waits_a_bounded_while():
    """A run's outcome must be recorded even through a long database hiccup; the
    waits grow but stay short enough for the scheduler's attempt deadline."""
    assert FINISH_RETRIES >= 5
    waits = [BACKOFF(_Attempt(number)) for number in range(1, 12) for _ in range(20)]
    assert all(0 <= wait <= 5 for wait in waits)
    assert max(waits) > 1


class _Attempt:
    """What tenacity's wait strategies read of a retry: its number."""

    def __init__(self, number: int) -> None:
        self.attempt_number = number
