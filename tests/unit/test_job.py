"""The job loop against a fake store: no network, no database."""

from __future__ import annotations

import io
import json
import logging
import re
import uuid
from pathlib import Path

import jsonschema
import pytest

from certification_expiry.bodies import JobRequest
from certification_expiry.errors import LeaseHeldError
from certification_expiry.ports import StoreError, StoreErrorKind
from certification_expiry.records import RunStatus, Trigger
from certification_expiry.request_ids import request_id_for
from certification_expiry.run_state import RunScope
from certification_expiry.structured_logging import configure_logging, resolve_format
from tests.fakes import FakeClock, FakeStore, make_job, transient

SCHEDULED = RunScope(Trigger.SCHEDULED)
SCHEMA = json.loads((Path(__file__).parents[2] / "certification_expiry" / "log_line.schema.json").read_text())


@pytest.fixture
def log_stream() -> io.StringIO:
    return io.StringIO()


@pytest.fixture
def logger(log_stream) -> logging.Logger:
    return configure_logging(log_stream)


def our_log_lines(stream: io.StringIO) -> list[dict]:
    lines = [json.loads(line) for line in stream.getvalue().splitlines() if line.strip()]
    ours = "certification_expiry"
    return [line for line in lines if line["logging.googleapis.com/labels"].get("python_logger") == ours]


def test_pauses_every_expired_active_mentor_across_pages(logger):
    store = FakeStore()
    expired = store.add(23)
    store.add(2, expiry=store.today)  # valid through today
    store.add(2, expiry=None)  # not tracked
    store.add(2, status="paused")
    summary = make_job(store, logger).run(JobRequest(), SCHEDULED)

    assert summary.status is RunStatus.SUCCEEDED
    assert (summary.candidate_count, summary.paused_count, summary.error_count) == (23, 23, 0)
    assert sorted(summary.paused_mentor_ids) == sorted(expired)
    assert len(store.page_requests) == 4  # pages of 7: 7, 7, 7, 2
    assert store.runs[summary.job_run_id].status == "succeeded"


def test_a_mentor_no_longer_active_is_skipped_not_an_error(logger):
    store = FakeStore()
    [mentor] = store.add(1)
    # It is paused by someone else after the page was read: the RPC says P0001.
    store.pause_failures[mentor] = [StoreError(StoreErrorKind.NOT_ALLOWED, "P0001", "cannot go from paused")]
    summary = make_job(store, logger).run(JobRequest(), SCHEDULED)
    assert (summary.skipped_count, summary.error_count, summary.paused_mentor_ids) == (1, 0, [])
    assert summary.status is RunStatus.SUCCEEDED


def test_a_failed_rpc_counts_as_an_error_and_the_others_go_on(logger):
    store = FakeStore()
    broken, *others = store.add(5)
    store.pause_failures[broken] = [StoreError(StoreErrorKind.PERMANENT, "22023", "something odd")]
    summary = make_job(store, logger).run(JobRequest(), SCHEDULED)

    assert summary.error_count == 1
    assert summary.errors[0].model_dump() == {"mentor_id": broken, "code": "22023", "message": "something odd"}
    assert sorted(summary.paused_mentor_ids) == sorted(others)
    assert broken not in summary.paused_mentor_ids
    assert summary.status is RunStatus.PARTIAL


def test_an_unexpected_exception_stays_with_its_mentor(logger):
    store = FakeStore()
    broken, *_ = store.add(3)
    store.pause_failures[broken] = [RuntimeError("bug")]  # type: ignore[list-item]
    summary = make_job(store, logger).run(JobRequest(), SCHEDULED)
    assert summary.error_count == 1
    assert summary.errors[0].code == "RuntimeError"
    assert summary.paused_count == 2


def test_audit_rows_carry_every_field_and_are_written_in_chunks(logger):
    store = FakeStore()
    store.add(23)
    summary = make_job(store, logger).run(JobRequest(), SCHEDULED)

    assert [len(chunk) for chunk in store.audit_writes] == [10, 10, 3]  # one request per chunk
    assert len(store.audit) == 23
    for (run_id, mentor_id), row in store.audit.items():
        assert run_id == summary.job_run_id
        mentor = store.mentors[mentor_id]
        [history] = [h for h in store.history if h.mentor_id == mentor_id]
        assert row.certification_expiry_date == mentor.expiry
        assert (row.old_status, row.new_status) == ("active", "paused")
        assert row.history_id == history.transition.history_id


def test_a_second_run_pauses_nothing(logger):
    store = FakeStore()
    store.add(9)
    job = make_job(store, logger)
    job.run(JobRequest(), SCHEDULED)
    second = job.run(JobRequest(), SCHEDULED)
    assert (second.candidate_count, second.paused_count) == (0, 0)
    assert len(store.history) == 9


def test_transient_failures_are_retried_with_the_same_request_id(logger):
    store = FakeStore()
    [mentor] = store.add(1)
    store.pause_failures[mentor] = [transient(), transient("503")]
    job = make_job(store, logger)
    summary = job.run(JobRequest(), SCHEDULED)

    assert summary.paused_mentor_ids == [mentor]
    request_ids = {request_id for _, request_id, _ in store.pause_calls}
    assert request_ids == {request_id_for(summary.job_run_id, mentor)}
    assert len(store.pause_calls) == 3
    assert len(job.sleeps) == 2
    assert all(0 <= pause <= 5 for pause in job.sleeps)


def test_a_retry_after_a_lost_answer_comes_back_replayed_and_counts_as_paused(logger, log_stream):
    store = FakeStore()
    [mentor] = store.add(1)
    original_pause = store.pause

    def commit_then_lose_the_answer(candidate, request_id, actor_id):
        original_pause(candidate, request_id, actor_id)
        store.pause = original_pause  # only the first answer is lost
        raise transient("RemoteProtocolError")

    store.pause = commit_then_lose_the_answer
    summary = make_job(store, logger).run(JobRequest(), SCHEDULED)
    assert summary.paused_mentor_ids == [mentor]
    assert len(store.history) == 1
    assert len(store.audit) == 1
    [paused] = [line for line in our_log_lines(log_stream) if line["event"] == "mentors.paused"]
    assert paused["replayed_mentor_ids"] == paused["mentor_ids"] == [str(mentor)]


def test_permanent_failures_are_not_retried_and_retries_are_bounded(logger):
    store = FakeStore()
    permanent, flaky = store.add(2)
    store.pause_failures[permanent] = [StoreError(StoreErrorKind.PERMANENT, "42501", "denied")]
    store.pause_failures[flaky] = [transient() for _ in range(10)]
    summary = make_job(store, logger, job_max_retries=3).run(JobRequest(), SCHEDULED)

    calls = [mentor for mentor, _, _ in store.pause_calls]
    assert calls.count(permanent) == 1
    assert calls.count(flaky) == 4  # the first attempt and three retries
    assert {error.mentor_id for error in summary.errors} == {permanent, flaky}


def test_a_version_conflict_reads_the_mentor_again_and_retries_with_its_new_version(logger):
    store = FakeStore()
    [mentor] = store.add(1)
    store.pause_failures[mentor] = [StoreError(StoreErrorKind.CONFLICT, "PT409", "stale")]
    store.mentors[mentor].version = 4  # changed (and changed back to active) since the page was read
    summary = make_job(store, logger).run(JobRequest(), SCHEDULED)
    assert summary.paused_mentor_ids == [mentor]
    assert store.pause_calls[-1][2] == 4


def test_a_conflict_on_a_mentor_that_is_no_longer_expired_is_a_skip(logger):
    store = FakeStore()
    [mentor] = store.add(1)
    original_pause = store.pause

    def renewed_meanwhile(candidate, request_id, actor_id):
        store.mentors[mentor].expiry = store.today.replace(year=store.today.year + 1)
        store.mentors[mentor].version += 1
        store.pause = original_pause
        return original_pause(candidate, request_id, actor_id)

    store.pause = renewed_meanwhile
    summary = make_job(store, logger).run(JobRequest(), SCHEDULED)
    assert (summary.skipped_count, summary.paused_count, summary.error_count) == (1, 0, 0)


def test_an_audit_that_cannot_be_written_fails_the_run_and_names_the_mentors(logger, log_stream):
    store = FakeStore()
    paused = store.add(4)
    store.audit_failures = [transient() for _ in range(4)]  # every attempt of the only chunk
    summary = make_job(store, logger).run(JobRequest(), SCHEDULED)

    assert summary.status is RunStatus.FAILED
    assert summary.paused_count == 4  # the transitions happened and are in the history
    [failure] = [line for line in our_log_lines(log_stream) if line["event"] == "audit.failed"]
    assert failure["severity"] == "ERROR"
    assert sorted(failure["mentor_ids"]) == sorted(str(mentor) for mentor in paused)


def test_no_mentor_is_started_after_the_time_budget(logger):
    store = FakeStore()
    store.add(20)
    clock = FakeClock()
    # One mentor at a time, so that the clock moves in one thread and the count is exact.
    job = make_job(store, logger, clock=clock, job_time_budget_seconds=60, job_concurrency=1)
    original_pause = store.pause

    def slow_pause(candidate, request_id, actor_id):
        clock.now += 10  # each mentor takes ten seconds
        return original_pause(candidate, request_id, actor_id)

    store.pause = slow_pause
    summary = job.run(JobRequest(), SCHEDULED)
    assert summary.status is RunStatus.PARTIAL
    assert summary.paused_count == 6  # started at 0, 10, ... 50 seconds; none at 60
    assert (summary.skipped_count, summary.error_count) == (0, 0)
    assert summary.candidate_count > summary.paused_count


def test_dry_run_reports_candidates_and_changes_nothing(logger):
    store = FakeStore()
    store.add(15)
    summary = make_job(store, logger).run(JobRequest(dry_run=True), SCHEDULED)
    assert (summary.candidate_count, summary.paused_count) == (15, 0)
    assert store.pause_calls == []
    assert store.audit_writes == []
    assert store.runs[summary.job_run_id].dry_run is True


def test_max_mentors_caps_the_run(logger):
    store = FakeStore()
    store.add(30)
    summary = make_job(store, logger).run(JobRequest(max_mentors=10), SCHEDULED)
    assert (summary.candidate_count, summary.paused_count) == (10, 10)
    assert max(store.page_requests) <= 7


def test_a_held_lease_is_refused_and_nothing_is_touched(logger):
    store = FakeStore()
    store.add(1)
    store.lease_held = True
    job = make_job(store, logger)
    with pytest.raises(LeaseHeldError):
        job.run(JobRequest(), SCHEDULED)
    assert job.sleeps == []  # asked once: a held lease is not worth retrying
    assert store.pause_calls == []
    assert store.page_requests == []


def test_reading_candidates_failing_for_good_fails_the_run(logger):
    store = FakeStore()
    store.add(3)
    store.page_failures = [transient() for _ in range(4)]
    summary = make_job(store, logger).run(JobRequest(), SCHEDULED)
    assert summary.status is RunStatus.FAILED
    assert store.runs[summary.job_run_id].status == "failed"


def test_log_lines_follow_the_schema(logger, log_stream):
    store = FakeStore()
    _, failing, skipped = store.add(3)
    store.pause_failures[failing] = [StoreError(StoreErrorKind.PERMANENT, "22023", "bad")]
    store.pause_failures[skipped] = [StoreError(StoreErrorKind.NOT_ALLOWED, "P0001", "not active")]
    make_job(store, logger).run(JobRequest(), SCHEDULED)

    lines = our_log_lines(log_stream)
    events = [line["event"] for line in lines]
    expected = {"job.started", "mentors.paused", "mentor.failed", "mentor.skipped", "audit.written", "job.finished"}
    assert expected <= set(events)
    for line in lines:
        jsonschema.validate(line, SCHEMA, format_checker=jsonschema.FormatChecker())
    [finished] = [line for line in lines if line["event"] == "job.finished"]
    assert (finished["paused_count"], finished["error_count"], finished["skipped_count"]) == (1, 1, 1)


@pytest.mark.parametrize(
    "line",
    [
        {"event": "mentors.paused", "count": 1, "mentor_ids": [str(uuid.uuid4())]},  # no job_run_id
        {"event": "mentors.paused", "job_run_id": str(uuid.uuid4()), "count": 0},  # no mentor_ids
        {"event": "mentor.failed", "job_run_id": str(uuid.uuid4())},  # no mentor_id
    ],
)
def test_the_schema_rejects_a_line_without_its_context(line):
    with pytest.raises(jsonschema.ValidationError):
        jsonschema.validate({"severity": "INFO", "message": "m", **line}, SCHEMA)


def test_one_line_per_page_names_the_mentors_it_paused_and_each_exception_has_its_own(logger, log_stream):
    store = FakeStore()
    mentors = store.add(24)
    failing, skipped = mentors[3], mentors[10]  # wherever they fall, every page pauses someone
    store.pause_failures[failing] = [StoreError(StoreErrorKind.PERMANENT, "22023", "bad")]
    store.pause_failures[skipped] = [StoreError(StoreErrorKind.NOT_ALLOWED, "P0001", "not active")]
    summary = make_job(store, logger).run(JobRequest(), SCHEDULED)

    lines = our_log_lines(log_stream)
    paused_lines = [line for line in lines if line["event"] == "mentors.paused"]
    assert len(paused_lines) == 4  # pages of 7: 7, 7, 7, 3
    assert [line["count"] for line in paused_lines] == [len(line["mentor_ids"]) for line in paused_lines]
    named = [mentor for line in paused_lines for mentor in line["mentor_ids"]]
    assert len(named) == 22
    assert sorted(named) == sorted(str(mentor) for mentor in summary.paused_mentor_ids)
    assert all(line["replayed_mentor_ids"] == [] for line in paused_lines)
    assert [line["mentor_id"] for line in lines if line["event"] == "mentor.failed"] == [str(failing)]
    assert [line["mentor_id"] for line in lines if line["event"] == "mentor.skipped"] == [str(skipped)]


# --- what the operator reads ---------------------------------------------------------------


@pytest.mark.parametrize(("mentors", "truncated"), [(1000, False), (1001, True)])
def test_the_response_lists_at_most_a_thousand_paused_mentors(logger, mentors, truncated):
    store = FakeStore()
    store.add(mentors)
    summary = make_job(store, logger, job_page_size=500, job_audit_chunk_size=500).run(JobRequest(), SCHEDULED)
    assert summary.paused_count == mentors
    assert len(summary.paused_mentor_ids) == 1000
    assert summary.paused_mentor_ids_truncated is truncated
    assert len(store.audit) == mentors  # the complete list is the run's audit rows


def test_a_progress_line_after_every_page_says_how_far_and_what_is_left(logger, log_stream):
    store = FakeStore()
    store.add(23)
    clock = FakeClock()
    store_page = store.expired_active_mentors

    def slow_page(*args, **kwargs):
        clock.now += 0.5  # each page takes half a second
        return store_page(*args, **kwargs)

    store.expired_active_mentors = slow_page
    make_job(store, logger, clock=clock).run(JobRequest(), SCHEDULED)
    progress = [line for line in our_log_lines(log_stream) if line["event"] == "job.progress"]
    assert [line["processed"] for line in progress] == [7, 14, 21, 23]
    assert [line["remaining"] for line in progress] == [16, 9, 2, 0]
    assert [line["paused"] for line in progress] == [7, 14, 21, 23]
    assert [line["elapsed_ms"] for line in progress] == [500, 1000, 1500, 2000]
    assert progress[0]["rate_per_s"] == 14.0
    assert progress[0]["eta_s"] == 1  # 16 left at 14 a second
    for line in progress:
        assert {"skipped", "errors"} <= set(line)
        jsonschema.validate(line, SCHEMA)


TEXT_LINE = re.compile(r"\d\d:\d\d:\d\d (INFO|WARNING|ERROR) +[a-z]+\.[a-z]+ +run=[0-9a-f]{8}( [a-z_]+=\S+)*")


def test_the_text_format_is_one_short_line_per_event_from_the_same_calls(log_stream):
    store = FakeStore()
    store.add(9)
    make_job(store, configure_logging(log_stream, "text")).run(JobRequest(), SCHEDULED)
    lines = log_stream.getvalue().splitlines()
    events = [line.split()[2] for line in lines]
    assert events.count("mentors.paused") == 2  # one per page of 7
    assert events[0] == "job.started"
    assert events[-1] == "job.finished"
    assert "job.progress" in events
    for line in lines:
        assert TEXT_LINE.fullmatch(line), line
        assert len(line) < 200, line
        assert not re.search(r"[0-9a-f]{8}-[0-9a-f]{4}-", line), "ids are cut to 8 characters"
    assert "paused_count=9" in lines[-1]


class Terminal(io.StringIO):
    def isatty(self) -> bool:
        return True


@pytest.mark.parametrize(
    ("log_format", "stream", "k_service", "expected"),
    [
        (None, Terminal(), None, "text"),
        (None, io.StringIO(), None, "json"),  # not a terminal: piped, or a log collector
        (None, Terminal(), "certification-expiry-job", "json"),  # on Cloud Run
        ("json", Terminal(), None, "json"),
        ("text", io.StringIO(), "certification-expiry-job", "text"),
    ],
)
def test_the_log_format_follows_log_format_then_cloud_run_then_the_terminal(
    monkeypatch, log_format, stream, k_service, expected
):
    if k_service:
        monkeypatch.setenv("K_SERVICE", k_service)
    else:
        monkeypatch.delenv("K_SERVICE", raising=False)
    assert resolve_format(log_format, stream) == expected
