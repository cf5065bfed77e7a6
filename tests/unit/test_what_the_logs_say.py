"""Every line the job logs, exactly: its event, severity, message and fields, for each
way a run goes. The log-based metrics and the alert policy count these events
(deploy/), and the runbook tells operators what each says, so a changed word here
is a changed contract."""

from __future__ import annotations

import logging
import uuid
from collections.abc import Iterator
from typing import Any

import pytest

from certification_expiry import run_state
from certification_expiry.bodies import JobRequest
from certification_expiry.errors import DatabaseUnavailableError, LeaseHeldError, RunRateLimitedError
from certification_expiry.ports import StoreError, StoreErrorKind
from certification_expiry.records import AuditRepair, RunStatus, Trigger
from certification_expiry.run_state import RunScope
from tests.fakes import FakeClock, FakeStore, fail, make_job
from tests.log_capture import CapturedLines, captured

SYSTEM = RunScope(Trigger.SCHEDULED, invoked_by="secret_key")


LOGGER = logging.getLogger("test.what_the_logs_say")


@pytest.fixture
def lines() -> Iterator[CapturedLines]:
    with captured(LOGGER) as handler:
        yield handler


def pauses_take(store: FakeStore, clock: FakeClock, seconds: float) -> None:
    """Each pause moves the clock on by `seconds`."""
    original = store.pause

    def slow(*args: Any) -> Any:
        clock.now += seconds
        return original(*args)

    store.pause = slow  # type: ignore[method-assign]


def ids(mentors: list[uuid.UUID]) -> list[str]:
    return [str(mentor) for mentor in mentors]


# --- the start and the finish -------------------------------------------------------------


def test_the_start_names_who_started_what(lines):
    organization, coordinator = uuid.uuid4(), uuid.uuid4()
    scope = RunScope(Trigger.MANUAL, actor_id=coordinator, organization_ids=(organization,), invoked_by="user:x")
    make_job(FakeStore(), LOGGER).run(JobRequest(dry_run=True, max_mentors=5), scope)
    assert lines.of("job.started") == [
        (
            "INFO",
            "certification expiry run started",
            {
                "trigger": "manual",
                "invoked_by": "user:x",
                "dry_run": True,
                "max_mentors": 5,
                "actor_id": str(coordinator),
                "organization_ids": [str(organization)],
            },
        )
    ]


def test_the_finish_carries_the_counts_and_how_long_the_run_took(lines):
    store, clock = FakeStore(), FakeClock()
    store.add(3)
    pauses_take(store, clock, 0.5)
    summary = make_job(store, LOGGER, clock, job_concurrency=1).run(JobRequest(), SYSTEM)
    assert summary.duration_ms == 1500
    [(severity, message, fields)] = lines.of("job.finished")
    assert (severity, message) == ("INFO", "certification expiry run succeeded")
    assert fields == {
        "out_of_time": False,
        "status": "succeeded",
        "dry_run": False,
        "candidate_count": 3,
        "paused_count": 3,
        "skipped_count": 0,
        "error_count": 0,
        "paused_mentor_ids_truncated": False,
        "errors_truncated": False,
        "duration_ms": 1500,
    }


def test_a_failed_run_finishes_at_error(lines):
    store = FakeStore()
    store.page_failures = [StoreError(StoreErrorKind.PERMANENT, "42501", "permission denied")]
    make_job(store, LOGGER).run(JobRequest(), SYSTEM)
    [(severity, message, fields)] = lines.of("job.finished")
    assert (severity, message, fields["status"]) == ("ERROR", "certification expiry run failed", "failed")


@pytest.mark.parametrize(
    ("error", "raised", "message"),
    [
        (
            StoreError(StoreErrorKind.LEASE_HELD, "PT409", "run 1 holds it"),
            LeaseHeldError,
            "another certification expiry run covering these organisations is working; try again later",
        ),
        (
            StoreError(StoreErrorKind.RATE_LIMITED, "PT429", "too soon", 42),
            RunRateLimitedError,
            "a run like this one started a short while ago; try again later",
        ),
        (
            StoreError(StoreErrorKind.TRANSIENT, "08006", "connection lost"),
            DatabaseUnavailableError,
            "could not start the run: the database did not answer",
        ),
    ],
)
def test_start_failures_are_told_apart_generically_for_the_caller_with_the_databases_words_for_the_log(
    lines, monkeypatch, error, raised, message
):
    store = FakeStore()
    fail(store, "start_run", error)
    with pytest.raises(raised) as caught:
        make_job(store, LOGGER, job_max_retries=0).run(JobRequest(), SYSTEM)
    assert caught.value.message == message
    assert error.message in (caught.value.detail or "")
    if raised is RunRateLimitedError:
        assert caught.value.retry_after_seconds == 42  # the database's own figure
    assert lines.of("job.started") == []


def test_a_rate_limited_start_without_the_seconds_waits_the_configured_interval(monkeypatch):
    store = FakeStore()
    fail(store, "start_run", StoreError(StoreErrorKind.RATE_LIMITED, "PT429", "too soon"))
    with pytest.raises(RunRateLimitedError) as caught:
        make_job(store, LOGGER, coordinator_run_interval_seconds=77).run(JobRequest(), SYSTEM)
    assert caught.value.retry_after_seconds == 77


def test_the_start_asks_for_the_configured_lease_and_interval(monkeypatch):
    store = FakeStore()
    asked: list[tuple[Any, ...]] = []
    original = store.start_run
    monkeypatch.setattr(store, "start_run", lambda *args: asked.append(args) or original(*args))
    scope = RunScope(Trigger.MANUAL, actor_id=uuid.uuid4(), organization_ids=(uuid.uuid4(),))
    job = make_job(store, LOGGER, coordinator_run_interval_seconds=45)
    job.run(JobRequest(dry_run=True), scope)
    [(_, trigger, dry_run, lease, actor, organizations, interval)] = asked
    assert (trigger, dry_run, lease, actor, organizations, interval) == (
        Trigger.MANUAL,
        True,
        job.settings.lease_seconds,
        scope.actor_id,
        scope.organization_ids,
        45,
    )


# --- a run that stops -------------------------------------------------------------------------


def test_reading_the_candidates_failing_for_good_says_so(lines):
    store = FakeStore()
    store.page_failures = [StoreError(StoreErrorKind.PERMANENT, "42501", "permission denied")]
    make_job(store, LOGGER).run(JobRequest(), SYSTEM)
    assert lines.of("job.failed") == [
        (
            "ERROR",
            "the run stopped: reading the candidates failed",
            {"code": "42501", "reason": "permission denied"},
        )
    ]


def test_an_unexpected_error_reading_the_candidates_is_named_by_its_type(lines, monkeypatch):
    store = FakeStore()
    store.add(1)
    fail(store, "expired_active_mentors", KeyError("id"))
    make_job(store, LOGGER).run(JobRequest(), SYSTEM)
    assert lines.of("job.failed") == [
        ("ERROR", "the run stopped on an unexpected error", {"code": "KeyError", "reason": "'id'"})
    ]


def test_an_audit_that_fails_unexpectedly_at_the_end_says_so(lines, monkeypatch):
    store = FakeStore()
    store.add(1)
    fail(store, "write_audit", ValueError("bad row"))
    summary = make_job(store, LOGGER).run(JobRequest(), SYSTEM)
    assert summary.status is RunStatus.FAILED
    assert lines.of("job.failed") == [
        ("ERROR", "the audit stopped on an unexpected error", {"code": "ValueError", "reason": "bad row"})
    ]


def test_an_outcome_that_cannot_be_recorded_says_so_and_the_answer_is_failed(lines, monkeypatch):
    store = FakeStore()
    fail(store, "finish_run", StoreError(StoreErrorKind.TRANSIENT, "08006", "gone"))
    summary = make_job(store, LOGGER, job_max_retries=0).run(JobRequest(), SYSTEM)
    assert summary.status is RunStatus.FAILED
    assert lines.of("job.failed") == [
        ("ERROR", "could not record the run's outcome", {"code": "08006", "reason": "gone"})
    ]


def test_an_outcome_that_fails_unexpectedly_is_recorded_once_more_as_failed(lines, monkeypatch):
    store = FakeStore()
    recorded: list[RunStatus] = []
    original = store.finish_run

    def once_unreadable(summary: Any) -> None:
        recorded.append(summary.status)
        if len(recorded) == 1:
            raise TypeError("not serialisable")
        original(summary)

    monkeypatch.setattr(store, "finish_run", once_unreadable)
    summary = make_job(store, LOGGER).run(JobRequest(), SYSTEM)
    assert recorded == [RunStatus.SUCCEEDED, RunStatus.FAILED]
    assert summary.status is RunStatus.FAILED
    assert lines.of("job.failed") == [
        (
            "ERROR",
            "recording the run's outcome failed unexpectedly",
            {"code": "TypeError", "reason": "not serialisable"},
        )
    ]


def test_an_outcome_that_fails_unexpectedly_twice_says_both(lines, monkeypatch):
    store = FakeStore()
    fail(store, "finish_run", TypeError("not serialisable"))
    summary = make_job(store, LOGGER).run(JobRequest(), SYSTEM)
    assert summary.status is RunStatus.FAILED
    assert [(message, fields) for _, message, fields in lines.of("job.failed")] == [
        ("recording the run's outcome failed unexpectedly", {"code": "TypeError", "reason": "not serialisable"}),
        ("could not record the run's outcome", {"code": "TypeError", "reason": "not serialisable"}),
    ]


# --- mentors --------------------------------------------------------------------------------


def test_each_skip_and_failure_has_its_line_and_the_pauses_one_per_page(lines):
    store = FakeStore()
    skipped, failed, *paused = store.add(5)
    store.pause_failures[skipped] = [StoreError(StoreErrorKind.NOT_FOUND, "PT404", "mentor gone")]
    store.pause_failures[failed] = [StoreError(StoreErrorKind.PERMANENT, "23514", "check violated")]
    make_job(store, LOGGER, job_page_size=50).run(JobRequest(), SYSTEM)
    assert lines.of("mentor.skipped") == [
        ("INFO", "mentor skipped: no longer active", {"mentor_id": str(skipped), "reason": "mentor gone"})
    ]
    assert lines.of("mentor.failed") == [
        (
            "ERROR",
            "could not pause mentor",
            {"mentor_id": str(failed), "code": "23514", "reason": "check violated"},
        )
    ]
    [(severity, message, fields)] = lines.of("mentors.paused")
    assert (severity, message) == ("INFO", "mentors paused: certification expired")
    assert (fields["count"], sorted(fields["mentor_ids"]), fields["replayed_mentor_ids"]) == (
        3,
        sorted(ids(paused)),
        [],
    )


def test_a_conflict_on_a_mentor_no_longer_expired_is_skipped_with_that_reason(lines, monkeypatch):
    store = FakeStore()
    [mentor] = store.add(1)

    def changed_meanwhile(*args: Any) -> None:
        store.mentors[mentor].status = "paused"  # as whoever changed it left it
        raise StoreError(StoreErrorKind.CONFLICT, "PT409", "version moved")

    monkeypatch.setattr(store, "pause", changed_meanwhile)
    summary = make_job(store, LOGGER).run(JobRequest(), SYSTEM)
    assert summary.skipped_count == 1
    assert lines.of("mentor.skipped") == [
        (
            "INFO",
            "mentor skipped: no longer active",
            {"mentor_id": str(mentor), "reason": "no longer active or expired"},
        )
    ]


def test_an_unexpected_error_with_one_mentor_is_named_by_its_type(lines, monkeypatch):
    store = FakeStore()
    [mentor] = store.add(1)
    fail(store, "pause", ZeroDivisionError("division by zero"))
    make_job(store, LOGGER).run(JobRequest(), SYSTEM)
    assert lines.of("mentor.failed") == [
        (
            "ERROR",
            "could not pause mentor",
            {"mentor_id": str(mentor), "code": "ZeroDivisionError", "reason": "division by zero"},
        )
    ]


def test_the_answer_lists_at_most_the_limit_of_errors(monkeypatch):
    monkeypatch.setattr(run_state, "RESPONSE_LIST_LIMIT", 2)
    store = FakeStore()
    for mentor in store.add(3):
        store.pause_failures[mentor] = [StoreError(StoreErrorKind.PERMANENT, "23514", "check")]
    summary = make_job(store, LOGGER).run(JobRequest(), SYSTEM)
    assert (summary.error_count, len(summary.errors), summary.errors_truncated) == (3, 2, True)


def test_a_mentor_whose_turn_comes_exactly_at_the_deadline_is_not_started():
    store, clock = FakeStore(), FakeClock()
    store.add(2)
    pauses_take(store, clock, 10)
    summary = make_job(store, LOGGER, clock, job_concurrency=1, job_time_budget_seconds=10).run(JobRequest(), SYSTEM)
    assert (summary.paused_count, summary.status) == (1, RunStatus.PARTIAL)


# --- progress -------------------------------------------------------------------------------


def test_progress_says_how_far_how_fast_and_what_is_left(lines):
    store, clock = FakeStore(), FakeClock()
    store.add(5)
    pauses_take(store, clock, 0.375)
    make_job(store, LOGGER, clock, job_concurrency=1, job_page_size=3).run(JobRequest(), SYSTEM)
    [first, last] = lines.of("job.progress")
    assert first == (
        "INFO",
        "certification expiry run in progress",
        {
            "processed": 3,
            "paused": 3,
            "skipped": 0,
            "errors": 0,
            "elapsed_ms": 1125,
            "rate_per_s": 2.7,
            "remaining": 2,
            "eta_s": 1,
        },
    )
    assert (last[2]["processed"], last[2]["remaining"], last[2]["eta_s"]) == (5, 0, 0)


def test_progress_before_any_time_has_passed_claims_no_rate(lines):
    store = FakeStore()
    store.add(5)
    make_job(store, LOGGER, job_page_size=3).run(JobRequest(dry_run=True), SYSTEM)
    first = lines.of("job.progress")[0][2]
    assert (first["elapsed_ms"], first["rate_per_s"], first["remaining"], first["eta_s"]) == (0, 0.0, 2, 0)


def test_progress_counts_only_this_runs_organisations_and_its_cap(lines):
    store = FakeStore()
    ours = uuid.uuid4()
    store.add(4, organization_id=ours)
    store.add(6)
    scope = RunScope(Trigger.MANUAL, actor_id=uuid.uuid4(), organization_ids=(ours,))
    make_job(store, LOGGER, job_page_size=3).run(JobRequest(dry_run=True), scope)
    assert [fields["remaining"] for _, _, fields in lines.of("job.progress")] == [1, 0]
    lines.records.clear()
    make_job(store, LOGGER, job_page_size=3).run(JobRequest(dry_run=True, max_mentors=4), SYSTEM)
    assert [fields["remaining"] for _, _, fields in lines.of("job.progress")] == [1, 0]


# --- the audit ------------------------------------------------------------------------------


def test_a_repair_that_fails_is_logged_and_the_run_goes_on(lines, monkeypatch):
    store = FakeStore()
    store.add(1)
    fail(store, "repair_audit", StoreError(StoreErrorKind.PERMANENT, "42501", "denied"))
    summary = make_job(store, LOGGER).run(JobRequest(), SYSTEM)
    assert (summary.status, summary.paused_count) == (RunStatus.SUCCEEDED, 1)
    assert lines.of("audit.failed") == [
        ("ERROR", "could not repair missing audit rows", {"mentor_ids": [], "code": "42501", "reason": "denied"})
    ]


def test_what_the_repair_wrote_and_what_it_could_not_credit_are_logged(lines, monkeypatch):
    store = FakeStore()
    monkeypatch.setattr(
        store, "repair_audit", lambda: AuditRepair(repaired=2, skipped=3, skipped_history_ids=[7, 8, 9])
    )
    make_job(store, LOGGER).run(JobRequest(), SYSTEM)
    assert lines.of("audit.repaired") == [("WARNING", "wrote audit rows missing from earlier runs", {"rows": 2})]
    assert lines.of("audit.unattributed") == [
        (
            "WARNING",
            "history rows carry the job's request-id prefix but no run made them: not audited",
            {"rows": 3, "history_ids": [7, 8, 9]},
        )
    ]


def test_a_repair_with_nothing_to_do_logs_nothing(lines):
    make_job(FakeStore(), LOGGER).run(JobRequest(), SYSTEM)
    assert lines.of("audit.repaired") == lines.of("audit.unattributed") == lines.of("audit.failed") == []


def test_each_chunk_written_or_not_has_its_line(lines):
    store = FakeStore()
    store.add(12)
    store.audit_failures = [StoreError(StoreErrorKind.PERMANENT, "23503", "foreign key")]
    make_job(store, LOGGER, job_page_size=50, job_audit_chunk_size=5).run(JobRequest(), SYSTEM)
    [(severity, message, fields)] = lines.of("audit.failed")
    assert (severity, message) == ("ERROR", "audit rows could not be written: these transitions have no audit row")
    assert (len(fields["mentor_ids"]), fields["code"], fields["reason"]) == (5, "23503", "foreign key")
    assert lines.of("audit.written") == [
        ("INFO", "audit rows written", {"rows": 5}),
        ("INFO", "audit rows written", {"rows": 2}),
    ]
    assert set(fields["mentor_ids"]).isdisjoint(str(row.mentor_id) for row in store.audit.values())


def test_full_chunks_are_written_before_the_next_page_even_after_a_failed_one(monkeypatch):
    store = FakeStore()
    store.add(9)
    store.audit_failures = [StoreError(StoreErrorKind.PERMANENT, "23503", "foreign key")]
    calls: list[str] = []
    pause, write = store.pause, store.write_audit
    monkeypatch.setattr(store, "pause", lambda *args: calls.append("pause") or pause(*args))
    monkeypatch.setattr(store, "write_audit", lambda rows: calls.append(f"write {len(rows)}") or write(rows))
    make_job(store, LOGGER, job_concurrency=1, job_page_size=6, job_audit_chunk_size=3).run(JobRequest(), SYSTEM)
    # The first page's two chunks (the first refused), then the second page's one.
    assert calls == ["pause"] * 6 + ["write 3", "write 3"] + ["pause"] * 3 + ["write 3"]
