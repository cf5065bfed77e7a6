"""Every run that took the lease records its outcome, whatever goes wrong after it,
and no row the job cannot read stops the others: through the entry point, over the
fake store, so that the JSON answer is checked as Cloud Scheduler receives it."""

from __future__ import annotations

import uuid

import pytest

from certification_expiry.records import Trigger
from tests.fake_serving import FakeServing
from tests.fakes import NEGATIVE_INFINITY, FakeStore, fail

STAGES = {
    "repair": ("repair_audit", "failed"),
    "count": ("count_expired_active", "failed"),
    "a page": ("expired_active_mentors", "failed"),
    "a pause": ("pause", "partial"),  # one mentor's failure, the others paused
    "the audit": ("write_audit", "failed"),
    "the finish": ("finish_run", "failed"),
}


@pytest.mark.parametrize("stage", STAGES)
def test_an_unexpected_exception_at_any_stage_still_records_releases_logs_and_answers(monkeypatch, stage):
    method, outcome = STAGES[stage]
    store = FakeStore()
    store.add(12)
    fail(store, method, RuntimeError(f"injected into {method}"), times=1)
    serving = FakeServing(store, monkeypatch)

    status, body = serving.post()

    assert status == 500
    assert body["status"] == outcome
    [run] = store.runs.values()
    assert run.status == outcome  # the run row records it: the lease is released
    store.start_run(uuid.uuid4(), Trigger.SCHEDULED, False, 600, None, None, 0)  # the next run is not refused
    [finished] = serving.events("job.finished")
    assert (finished["status"], finished["severity"]) == (outcome, "ERROR" if outcome == "failed" else "INFO")


def test_a_row_the_job_cannot_read_is_that_mentors_failure_and_the_others_are_paused(monkeypatch):
    store = FakeStore()
    ordinary = store.add(9, expiry=store.today.replace(year=store.today.year - 1))
    [unreadable] = store.add(1, expiry=NEGATIVE_INFINITY)
    serving = FakeServing(store, monkeypatch)

    status, body = serving.post()

    assert status == 500  # partial: Cloud Scheduler's retry applies, and the alert
    assert body["status"] == "partial"
    assert set(body["paused_mentor_ids"]) == {str(mentor) for mentor in ordinary}
    assert [(error["mentor_id"], error["code"]) for error in body["errors"]] == [(str(unreadable), "unreadable_row")]
    [failed] = serving.events("mentor.failed")
    assert failed["mentor_id"] == str(unreadable)
