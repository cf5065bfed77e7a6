"""The deployment files, checked for the mistakes that would only show in a failed deploy."""

from __future__ import annotations

import ast
import json
import re
from datetime import datetime
from pathlib import Path
from zoneinfo import ZoneInfo

import pytest
import yaml
from croniter import croniter
from google.cloud import monitoring_v3

from certification_expiry.config import Settings

ROOT = Path(__file__).resolve().parents[2]
BUILD = yaml.safe_load((ROOT / "cloudbuild.yaml").read_text())
POLICY_TEXT = (ROOT / "deploy" / "alert-policy.json").read_text()
# https://cloud.google.com/build/docs/configuring-builds/substitute-variable-values
BUILT_IN = {"PROJECT_ID", "PROJECT_NUMBER", "BUILD_ID", "LOCATION", "TRIGGER_NAME", "COMMIT_SHA", "SHORT_SHA"}
SECRETS = {"SUPABASE_SECRET_KEY"}
# Read by functions-framework itself (its gunicorn's thread count), not by Settings.
SERVER_VARIABLES = {"THREADS"}


def step(step_id: str) -> dict:
    [found] = [s for s in BUILD["steps"] if s.get("id") == step_id]
    return found


def flag(args: list[str], name: str) -> str:
    [value] = [a.split("=", 1)[1] for a in args if a.startswith(f"--{name}=")]
    return value


def substitute(text: str) -> str:
    values = {**BUILD["substitutions"], "PROJECT_ID": "my-project"}
    for _ in range(3):  # substitutions may refer to others, e.g. ${PROJECT_ID}
        text = re.sub(r"\$\{(\w+)\}", lambda m: str(values[m.group(1)]), text)
    return text


def deploy_steps() -> list[list[str]]:
    return [s["args"] for s in BUILD["steps"] if s.get("args", [])[:2] == ["functions", "deploy"]]


def test_cloudbuild_parses_and_runs_the_unit_tests_before_deploying():
    ids = [s["id"] for s in BUILD["steps"]]
    assert ids[0] == "unit-tests"
    assert "pytest" in " ".join(step("unit-tests")["args"])
    for args in deploy_steps():
        deploying = next(s for s in BUILD["steps"] if s.get("args") == args)
        assert deploying["waitFor"] == ["unit-tests"]


def test_every_substitution_used_is_declared_and_shell_variables_are_escaped():
    # Cloud Build expands $NAME and ${NAME} in the configuration (comments aside);
    # a shell variable must be written $$NAME or the build is refused.
    used = set(re.findall(r"(?<!\$)\$\{?([A-Za-z_][A-Za-z0-9_]*)", json.dumps(BUILD)))
    assert used - BUILT_IN - set(BUILD["substitutions"]) == set()
    assert all(name.startswith("_") for name in BUILD["substitutions"])


def test_every_deployed_entry_point_exists_in_main():
    tree = ast.parse((ROOT / "main.py").read_text())
    functions = {node.name for node in tree.body if isinstance(node, ast.FunctionDef)}
    deployed = {flag(args, "entry-point") for args in deploy_steps()}
    assert deployed == {"certification_expiry_job", "certification_compliance_check"}
    assert deployed <= functions


@pytest.mark.parametrize("args", deploy_steps(), ids=lambda args: args[2])
def test_every_required_variable_is_set_and_secrets_come_from_secret_manager(args):
    env_vars = dict(pair.split("=", 1) for pair in substitute(flag(args, "set-env-vars")).split(","))
    secrets = dict(pair.split("=", 1) for pair in flag(args, "set-secrets").split(","))
    assert not set(env_vars) & set(secrets)
    assert set(secrets) >= SECRETS, "secrets must come from Secret Manager"
    assert not SECRETS & set(env_vars), "a secret must never be set inline"
    assert all(re.fullmatch(r"[\w${}-]+:(latest|\d+)", ref) for ref in secrets.values())

    fields = {name.upper() for name in Settings.model_fields}
    required = {name.upper() for name, info in Settings.model_fields.items() if info.is_required()}
    assert required <= set(env_vars) | set(secrets)
    assert set(env_vars) | set(secrets) <= fields | SERVER_VARIABLES, "a variable the code does not read: a typo?"
    # What the deploy sets must be a valid configuration.
    Settings(
        **{name.lower(): value for name, value in env_vars.items() if name not in SERVER_VARIABLES},
        supabase_secret_key="sb_secret_from-secret-manager",
    )
    assert "--gen2" in args


def test_the_oidc_audience_is_the_url_the_scheduler_calls():
    script = substitute(step("schedule")["args"][-1])
    calls = {name: uri for name, uri, _ in re.findall(r'upsert_job (\S+) "[^"]+" (\S+) (GET|POST)', script)}
    assert set(calls) == {"certification-expiry-nightly", "certification-compliance-check"}
    for args in deploy_steps():
        audience = dict(pair.split("=", 1) for pair in substitute(flag(args, "set-env-vars")).split(","))[
            "OIDC_AUDIENCE"
        ]
        assert audience in calls.values()


def test_schedules_are_valid_cron_in_oslo_and_the_check_follows_the_job_by_thirty_minutes():
    subs = BUILD["substitutions"]
    zone = ZoneInfo(subs["_TIME_ZONE"])
    assert subs["_TIME_ZONE"] == "Europe/Oslo"
    assert '--time-zone="${_TIME_ZONE}"' in step("schedule")["args"][-1]
    for schedule in (subs["_JOB_SCHEDULE"], subs["_CHECK_SCHEDULE"]):
        assert croniter.is_valid(schedule), schedule
        assert len(schedule.split()) == 5, "Cloud Scheduler takes unix-cron: five fields, no seconds"
    start = datetime(2026, 11, 22, 12, 0, tzinfo=zone)
    job = croniter(subs["_JOB_SCHEDULE"], start).get_next(datetime)
    check = croniter(subs["_CHECK_SCHEDULE"], start).get_next(datetime)
    assert (job.hour, job.minute) == (2, 0)
    assert (check - job).total_seconds() == 30 * 60


def test_the_attempt_deadline_fits_the_job_and_its_time_budget():
    script = step("schedule")["args"][-1]
    deadline = int(re.search(r"--attempt-deadline=(\d+)s", script).group(1))
    timeout = int(BUILD["substitutions"]["_TIMEOUT"].rstrip("s"))
    assert deadline <= 1800  # Cloud Scheduler's maximum for HTTP targets
    assert Settings.model_fields["job_time_budget_seconds"].default < deadline <= timeout


def test_the_alert_policy_is_a_valid_alert_policy_watching_the_metrics_the_build_creates():
    policy = monitoring_v3.AlertPolicy.from_json(POLICY_TEXT)  # the API's own schema: unknown fields fail
    raw = json.loads(POLICY_TEXT)
    created = set(re.findall(r"upsert_metric (\w+)", step("alerting")["args"][-1]))
    watched = set(re.findall(r"logging.googleapis.com/user/(\w+)", POLICY_TEXT))
    assert watched == created == {"certification_compliance_breach", "certification_expiry_run_not_succeeded"}
    assert policy.conditions
    log_match = any("conditionMatchedLog" in condition for condition in raw["conditions"])
    # notificationRateLimit is required on log-match policies and refused on the others.
    assert ("notificationRateLimit" in raw.get("alertStrategy", {})) == log_match
    assert "docs/runbook.md" in policy.documentation.content


def test_the_metric_filters_name_events_the_code_logs():
    schema = json.loads((ROOT / "certification_expiry" / "log_line.schema.json").read_text())
    events = set(schema["properties"]["event"]["enum"])
    filtered = set(re.findall(r'jsonPayload\.event="([\w.]+)"', step("alerting")["args"][-1]))
    assert filtered
    assert filtered <= events


def test_each_function_runs_more_threads_than_cloud_run_sends_it_requests():
    """A slow client holds a gunicorn thread (tests/acceptance/test_slow_clients.py):
    with more threads than --concurrency, every request Cloud Run admits finds one."""
    for args in deploy_steps():
        environment = dict(item.split("=", 1) for item in flag(args, "set-env-vars").split(","))
        assert int(environment["THREADS"]) > int(flag(args, "concurrency"))
