"""What each log-based metric counts (deploy/log-metrics.json), evaluated with the
Logging query language's own precedence (tests/logging_query.py) against the lines
this project writes in each outcome, captured from runs of the entry points over the
fake store, and against Cloud Scheduler's attempt entries of each outcome."""

from __future__ import annotations

import json
import uuid
from datetime import timedelta
from pathlib import Path

import pytest

from certification_expiry.bodies import JobSummary
from certification_expiry.ports import StoreError, StoreErrorKind
from certification_expiry.records import RunStatus, Trigger
from tests.fake_serving import FakeServing
from tests.fakes import FakeStore, transient
from tests.logging_query import matches

METRICS = {
    m["name"]: m["filter"] for m in json.loads((Path(__file__).parents[2] / "deploy" / "log-metrics.json").read_text())
}
# What Cloud Logging takes out of a structured line into the entry itself.
SPECIAL = ("severity", "httpRequest")


def as_entry(line: dict, resource: str = "cloud_run_revision") -> dict:
    """A JSON line of the function as Cloud Logging stores it."""
    payload = {k: v for k, v in line.items() if k not in SPECIAL and not k.startswith("logging.googleapis.com/")}
    return {"resource": {"type": resource}, "severity": line["severity"], "jsonPayload": payload}


def job_lines(monkeypatch, arrange) -> list[dict]:
    store = FakeStore()
    arrange(store)
    serving = FakeServing(store, monkeypatch)
    serving.post()
    return serving.lines()


def compliance_lines(monkeypatch, arrange) -> list[dict]:
    store = FakeStore()
    arrange(store)
    serving = FakeServing(store, monkeypatch, target="certification_compliance_check")
    serving.post()
    return serving.lines()


def rejected_lines(monkeypatch) -> list[dict]:
    serving = FakeServing(FakeStore(), monkeypatch)
    serving.post("not-the-key")
    return serving.lines()


def succeeded_before(store: FakeStore) -> None:
    run_id = uuid.uuid4()
    store.start_run(run_id, Trigger.SCHEDULED, False, 600, None, None, 0)
    store.finish_run(JobSummary(job_run_id=run_id, status=RunStatus.SUCCEEDED, dry_run=False))


def failing_pause(store: FakeStore) -> None:
    [mentor] = store.add(1)
    store.add(2)
    store.pause_failures[mentor] = [StoreError(StoreErrorKind.PERMANENT, "22023", "refused")]


def failing_audit(store: FakeStore) -> None:
    store.add(3)
    store.audit_failures = [transient()] * 10


def unreachable(store: FakeStore) -> None:
    def down(schedule):
        raise transient("ConnectError")

    store.compliance_status = down  # type: ignore[method-assign]


def overdue(store: FakeStore) -> None:
    store.add(2, expiry=store.today - timedelta(days=5))


def scheduler_entry(job: str, kind: str, status: str | None = None) -> dict:
    """An attempt entry as Cloud Scheduler logs it (cloudscheduler.googleapis.com/executions)."""
    payload = {
        "@type": f"type.googleapis.com/google.cloud.scheduler.logging.{kind}",
        "jobName": f"projects/p/locations/europe-north1/jobs/{job}",
    }
    if status:
        payload["status"] = status
    return {
        "resource": {"type": "cloud_scheduler_job", "labels": {"job_id": job, "location": "europe-north1"}},
        "logName": "projects/p/logs/cloudscheduler.googleapis.com%2Fexecutions",
        "severity": "ERROR" if status else "INFO",
        "jsonPayload": payload,
    }


@pytest.fixture
def entries(monkeypatch) -> dict[str, dict]:
    """One entry per outcome, named; each is the outcome's deciding line."""
    wanted = {
        "run succeeded": (job_lines(monkeypatch, lambda store: store.add(3)), "job.finished"),
        "run partial": (job_lines(monkeypatch, failing_pause), "job.finished"),
        "run failed": (job_lines(monkeypatch, failing_audit), "job.finished"),
        "compliance ok": (compliance_lines(monkeypatch, succeeded_before), "compliance.ok"),
        "compliance breach": (compliance_lines(monkeypatch, overdue), "compliance.breach"),
        "compliance failed": (compliance_lines(monkeypatch, unreachable), "compliance.failed"),
        "request rejected": (rejected_lines(monkeypatch), "request.rejected"),
    }
    found = {}
    for name, (lines, event) in wanted.items():
        [line] = [line for line in lines if line.get("event") == event]
        found[name] = as_entry(line)
    # Every other line of a run: job.started, mentor.failed, mentors.paused, job.progress, ...
    for line in job_lines(monkeypatch, failing_pause):
        if line.get("event") != "job.finished":
            found.setdefault(f"line {line.get('event')}", as_entry(line))
    found |= {
        "nightly attempt started": scheduler_entry("certification-expiry-nightly", "AttemptStarted"),
        "nightly attempt succeeded": scheduler_entry("certification-expiry-nightly", "AttemptFinished"),
        "nightly attempt denied": scheduler_entry(
            "certification-expiry-nightly", "AttemptFinished", "PERMISSION_DENIED"
        ),
        "check attempt failed": scheduler_entry("certification-compliance-check", "AttemptFinished", "INTERNAL"),
        "another job failed": scheduler_entry("some-other-job", "AttemptFinished", "INTERNAL"),
    }
    return found


COUNTED = {
    "certification_compliance_breach": {"compliance breach"},
    "certification_expiry_run_not_succeeded": {"run partial", "run failed", "compliance failed"},
    "certification_compliance_checked": {"compliance ok", "compliance breach", "compliance failed"},
    "certification_scheduler_attempt_failed": {"nightly attempt denied", "check attempt failed"},
}


@pytest.mark.parametrize("metric", COUNTED)
def test_each_metric_counts_exactly_the_lines_its_name_says(entries, metric):
    counted = {name for name, entry in entries.items() if matches(METRICS[metric], entry)}
    assert counted == COUNTED[metric]


def test_the_filter_this_project_first_had_missed_a_failed_compliance_check(entries):
    """OR binds tighter than AND: without parentheses the compliance.failed term was
    ANDed with job.finished, so a check that could not reach the database counted for nothing."""
    first = (
        'jsonPayload.event="job.finished" AND jsonPayload.status!="succeeded" OR jsonPayload.event="compliance.failed"'
    )
    counted = {name for name, entry in entries.items() if matches(first, entry)}
    assert counted == {"run partial", "run failed"}


def test_the_metrics_are_the_four_of_the_design():
    assert set(METRICS) == set(COUNTED)
