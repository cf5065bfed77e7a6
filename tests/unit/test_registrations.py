"""`make verify-deployment`'s Google Cloud items (tools/registrations.py), through
Google's own clients against tools/google_stand_in.py, the stand-in the deployment
rehearsal deploys to: Cloud Scheduler's and Cloud Logging's REST APIs on loopback
HTTP, and Cloud Monitoring's API over a loopback gRPC channel (its Python client
speaks gRPC only). Healthy resources pass; each broken one is named.
"""

from __future__ import annotations

import copy
from collections.abc import Iterator

import pytest

from tools import registrations
from tools.google_stand_in import GoogleStandIn
from tools.verify_deployment import REGISTRATIONS, Deployment, verify

PROJECT, LOCATION = "my-project", "europe-north1"
JOB_URL = f"https://{LOCATION}-{PROJECT}.cloudfunctions.net/certification-expiry-job"
CHECK_URL = f"https://{LOCATION}-{PROJECT}.cloudfunctions.net/certification-compliance-check"
SCHEDULER = f"certification-scheduler@{PROJECT}.iam.gserviceaccount.com"
SUBSTITUTIONS = registrations.BUILD["substitutions"]
POLICY = f"projects/{PROJECT}/alertPolicies/1"


def healthy() -> dict:
    def job(job_id: str, uri: str, method: str, schedule: str, zone: str) -> dict:
        return {
            "name": f"projects/{PROJECT}/locations/{LOCATION}/jobs/{job_id}",
            "httpTarget": {
                "uri": uri,
                "httpMethod": method,
                "oidcToken": {"serviceAccountEmail": SCHEDULER, "audience": uri},
            },
            "schedule": SUBSTITUTIONS[schedule],
            "timeZone": SUBSTITUTIONS[zone],
            "state": "ENABLED",
            "status": {},
            "lastAttemptTime": "2026-12-01T00:15:00Z",
        }

    return {
        "jobs": {
            "certification-expiry-nightly": job(
                "certification-expiry-nightly", JOB_URL, "POST", "_JOB_SCHEDULE", "_JOB_TIME_ZONE"
            ),
            "certification-compliance-check": job(
                "certification-compliance-check", CHECK_URL, "GET", "_CHECK_SCHEDULE", "_CHECK_TIME_ZONE"
            ),
        },
        "metrics": {name: {"name": name, "filter": query} for name, query in registrations.METRICS.items()},
        "policies": {
            POLICY: {
                "name": POLICY,
                "displayName": registrations.POLICY_NAME,
                "enabled": True,
                "conditions": [{"displayName": "c"}] * 4,
            }
        },
    }


def hold(stand_in: GoogleStandIn, resources: dict) -> None:
    stand_in.state.jobs = resources["jobs"]
    stand_in.state.metrics = resources["metrics"]
    stand_in.state.policies = resources["policies"]


@pytest.fixture
def google(monkeypatch) -> Iterator[GoogleStandIn]:
    monkeypatch.setenv("GOOGLE_CLOUD_PROJECT", PROJECT)
    monkeypatch.setenv("SCHEDULER_LOCATION", LOCATION)
    monkeypatch.delenv("ALLOWED_INVOKERS", raising=False)
    stand_in = GoogleStandIn(PROJECT)
    hold(stand_in, healthy())
    stand_in.start()
    yield stand_in
    stand_in.stop()


def registration_failures(stand_in: GoogleStandIn) -> dict[str, str]:
    google = registrations.GoogleProject.from_environment(JOB_URL, CHECK_URL)
    assert google is not None
    return registrations.failures(google, stand_in.clients())


def test_healthy_registrations_pass_every_item(google):
    assert registration_failures(google) == {}


NIGHTLY = "the Cloud Scheduler job certification-expiry-nightly"
CHECK = "the Cloud Scheduler job certification-compliance-check"


def breaking(path: list, value) -> callable:
    def apply(resources: dict) -> None:
        target = resources
        for key in path[:-1]:
            target = target[key]
        if value is None:
            del target[path[-1]]
        else:
            target[path[-1]] = value

    return apply


BROKEN = [
    ("a paused job", ["jobs", "certification-expiry-nightly", "state"], "PAUSED", NIGHTLY, "state is 'PAUSED'"),
    ("a job never registered", ["jobs", "certification-compliance-check"], None, CHECK, "is not registered"),
    (
        "a wrong URL",
        ["jobs", "certification-expiry-nightly", "httpTarget", "uri"],
        "https://elsewhere.example/",
        NIGHTLY,
        "target URL",
    ),
    (
        "a service account not allowed",
        ["jobs", "certification-compliance-check", "httpTarget", "oidcToken", "serviceAccountEmail"],
        "intruder@my-project.iam.gserviceaccount.com",
        CHECK,
        "not one of ALLOWED_INVOKERS",
    ),
    (
        "a failed last attempt",
        ["jobs", "certification-expiry-nightly", "status"],
        {"code": 7, "message": "PERMISSION_DENIED"},
        NIGHTLY,
        "last attempt failed: code 7",
    ),
    (
        "a schedule in the daylight-saving hour",
        ["jobs", "certification-expiry-nightly", "schedule"],
        "0 2 * * *",
        NIGHTLY,
        "schedule is '0 2 * * *'",
    ),
    (
        "a metric with a different filter",
        ["metrics", "certification_expiry_run_not_succeeded", "filter"],
        'jsonPayload.event="job.finished" AND jsonPayload.status!="succeeded" OR jsonPayload.event="compliance.failed"',
        "the log-based metrics",
        "certification_expiry_run_not_succeeded's filter",
    ),
    (
        "a metric missing",
        ["metrics", "certification_compliance_checked"],
        None,
        "the log-based metrics",
        "certification_compliance_checked does not exist",
    ),
    ("a disabled policy", ["policies", POLICY, "enabled"], False, "the alert policy", "is disabled"),
    ("no policy", ["policies", POLICY], None, "the alert policy", "no alert policy named"),
]


@pytest.mark.parametrize(("path", "value", "item", "named"), [b[1:] for b in BROKEN], ids=[b[0] for b in BROKEN])
def test_each_broken_registration_is_named(google, path, value, item, named):
    resources = copy.deepcopy(healthy())
    breaking(path, value)(resources)
    hold(google, resources)
    failed = registration_failures(google)
    assert set(failed) == {item}
    assert named in failed[item]


def test_verify_deployment_reports_the_registrations_as_items_of_its_checklist(google, monkeypatch):
    monkeypatch.setattr("tools.verify_deployment.checklist", lambda deployment: [])
    results = verify(Deployment(JOB_URL, CHECK_URL, "unused", None), google.clients())
    assert [(r.name, r.ok) for r in results] == [
        (name, True)
        for name, _ in registrations.checks(
            registrations.GoogleProject.from_environment(JOB_URL, CHECK_URL), google.clients()
        )
    ]


def test_without_a_project_the_registrations_are_skipped_with_the_reason(monkeypatch):
    monkeypatch.delenv("GOOGLE_CLOUD_PROJECT", raising=False)
    monkeypatch.setattr("tools.verify_deployment.checklist", lambda deployment: [])
    [result] = verify(Deployment(JOB_URL, CHECK_URL, "unused", None))
    assert (result.name, result.ok, result.skipped) == (REGISTRATIONS, True, True)
    assert "GOOGLE_CLOUD_PROJECT is not set" in result.detail
