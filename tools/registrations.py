"""The Google Cloud side of a deployment, read with Google's own clients: both Cloud
Scheduler jobs, the four log-based metrics and the alert policy, against what
cloudbuild.yaml and deploy/ say they must be. `make verify-deployment` runs these
when GOOGLE_CLOUD_PROJECT and SCHEDULER_LOCATION are set.

A schedule that never fires writes no log line, so no metric can say so: the
registration itself is what is checked here, after every deploy.
"""

from __future__ import annotations

import functools
import json
import os
import re
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import yaml
from google.api_core import exceptions as google_errors

ROOT = Path(__file__).resolve().parents[1]
BUILD = yaml.safe_load((ROOT / "cloudbuild.yaml").read_text())
METRICS = {m["name"]: m["filter"] for m in json.loads((ROOT / "deploy" / "log-metrics.json").read_text())}
POLICY_NAME = json.loads((ROOT / "deploy" / "alert-policy.json").read_text())["displayName"]
# job id -> the substitutions that hold its schedule and time zone, and its HTTP method.
JOBS = {
    "certification-expiry-nightly": ("_JOB_SCHEDULE", "_JOB_TIME_ZONE", "POST"),
    "certification-compliance-check": ("_CHECK_SCHEDULE", "_CHECK_TIME_ZONE", "GET"),
}


class Failed(Exception):
    """A checklist item that did not hold, here or in verify_deployment.py; the message
    says what was found."""


@dataclass(frozen=True)
class GoogleProject:
    project: str
    location: str
    job_url: str
    compliance_url: str
    allowed_invokers: list[str]

    @classmethod
    def from_environment(cls, job_url: str, compliance_url: str) -> GoogleProject | None:
        """None when GOOGLE_CLOUD_PROJECT is unset: the registrations are then not checked."""
        project = os.environ.get("GOOGLE_CLOUD_PROJECT")
        if not project:
            return None
        default_invoker = BUILD["substitutions"]["_SCHEDULER_SERVICE_ACCOUNT"].replace("${PROJECT_ID}", project)
        invokers = os.environ.get("ALLOWED_INVOKERS") or default_invoker
        return cls(
            project,
            os.environ.get("SCHEDULER_LOCATION") or BUILD["substitutions"]["_REGION"],
            job_url,
            compliance_url,
            [email.strip() for email in invokers.split(",") if email.strip()],
        )


@dataclass(eq=False)  # hashed by identity, for the per-project cache below
class Clients:
    """Google's clients, each built on first use; tests point them at local servers."""

    make_scheduler: Callable[[], Any]
    make_logging: Callable[[str], Any]
    make_monitoring: Callable[[], Any]

    @functools.cached_property
    def scheduler(self) -> Any:
        return self.make_scheduler()

    @functools.cached_property
    def monitoring(self) -> Any:
        return self.make_monitoring()

    @functools.cache  # noqa: B019 - one logging client per project, for the tool's one run
    def logging(self, project: str) -> Any:
        return self.make_logging(project)

    @classmethod
    def default(cls) -> Clients:
        from google.cloud import logging as cloud_logging
        from google.cloud import monitoring_v3, scheduler_v1

        return cls(
            scheduler_v1.CloudSchedulerClient,
            lambda project: cloud_logging.Client(project=project, _use_grpc=False),  # type: ignore[no-untyped-call]
            monitoring_v3.AlertPolicyServiceClient,
        )


def scheduler_job(google: GoogleProject, clients: Clients, job_id: str) -> str:
    schedule_key, zone_key, method = JOBS[job_id]
    uri = google.job_url if method == "POST" else google.compliance_url
    name = f"projects/{google.project}/locations/{google.location}/jobs/{job_id}"
    try:
        job = clients.scheduler.get_job(name=name)
    except google_errors.NotFound as error:
        raise Failed(f"{job_id} is not registered in {google.location}") from error
    target = job.http_target
    expected = {
        "state": ("ENABLED", job.state.name),
        "schedule": (BUILD["substitutions"][schedule_key], job.schedule),
        "time zone": (BUILD["substitutions"][zone_key], job.time_zone),
        "target URL": (uri, target.uri),
        "method": (method, target.http_method.name),
        "OIDC audience": (uri, target.oidc_token.audience),
    }
    problems = [f"{what} is {found!r}, not {wanted!r}" for what, (wanted, found) in expected.items() if wanted != found]
    account = target.oidc_token.service_account_email
    if account not in google.allowed_invokers:
        problems.append(f"its service account {account!r} is not one of ALLOWED_INVOKERS")
    if job.status.code != 0:
        problems.append(f"its last attempt failed: code {job.status.code} {job.status.message}".rstrip())
    if problems:
        raise Failed(f"{job_id}: " + "; ".join(problems))
    last = job.last_attempt_time
    return f"{job_id}: ENABLED, {job.schedule} {job.time_zone}" + (
        f", last attempt {last:%Y-%m-%d %H:%M} UTC ok" if last else ", not attempted yet"
    )


def log_metrics(google: GoogleProject, clients: Clients) -> str:
    logging_client = clients.logging(google.project)
    problems = []
    for name, wanted in METRICS.items():
        metric = logging_client.metric(name)
        if not metric.exists():
            problems.append(f"{name} does not exist")
        else:
            metric.reload()
            if re.sub(r"\s+", " ", metric.filter_.strip()) != wanted:
                problems.append(f"{name}'s filter is {metric.filter_!r}, not deploy/log-metrics.json's")
    if problems:
        raise Failed("; ".join(problems))
    return f"{len(METRICS)} log-based metrics with their filters"


def alert_policy(google: GoogleProject, clients: Clients) -> str:
    policies = list(
        clients.monitoring.list_alert_policies(
            request={"name": f"projects/{google.project}", "filter": f'display_name="{POLICY_NAME}"'}
        )
    )
    if not policies:
        raise Failed(f"no alert policy named {POLICY_NAME!r}")
    disabled = [policy.name for policy in policies if not policy.enabled]
    if disabled:
        raise Failed(f"{POLICY_NAME!r} is disabled: {', '.join(disabled)}")
    conditions = len(policies[0].conditions)
    return f"{POLICY_NAME!r} enabled, {conditions} conditions"


def checks(google: GoogleProject, clients: Clients) -> list[tuple[str, Callable[[], str]]]:
    """The checklist items, each a name and what checks it."""
    return [
        *(
            (f"the Cloud Scheduler job {job_id}", lambda job_id=job_id: scheduler_job(google, clients, job_id))
            for job_id in JOBS
        ),
        ("the log-based metrics", lambda: log_metrics(google, clients)),
        ("the alert policy", lambda: alert_policy(google, clients)),
    ]


def failures(google: GoogleProject, clients: Clients) -> dict[str, str]:
    """Each registration item that does not hold, with what was found."""
    failed = {}
    for name, check in checks(google, clients):
        try:
            check()
        except Failed as error:
            failed[name] = str(error)
    return failed
