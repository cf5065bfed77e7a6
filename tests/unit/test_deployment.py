"""The deployment files, checked for the mistakes that would only show in a failed deploy."""

from __future__ import annotations

import ast
import itertools
import json
import re
from datetime import UTC, date, datetime, time, timedelta
from pathlib import Path
from zoneinfo import ZoneInfo

import pytest
import yaml
from croniter import croniter
from google.cloud import monitoring_v3

from certification_expiry.config import Settings
from tools import rehearse_deploy as rehearsal

ROOT = Path(__file__).resolve().parents[2]
BUILD = yaml.safe_load((ROOT / "cloudbuild.yaml").read_text())
POLICY_TEXT = (ROOT / "deploy" / "alert-policy.json").read_text()
METRICS = json.loads((ROOT / "deploy" / "log-metrics.json").read_text())
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
    """As Cloud Build substitutes, with what an operator passes (docs/deploying.md)."""
    build = {"id": "build", "substitutions": {**BUILD["substitutions"], **rehearsal.SUBSTITUTIONS}}
    build["options"] = BUILD["options"]
    return rehearsal.substitute(text, rehearsal.resolved_substitutions(build, "my-project"))


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
    calls = {name: uri for name, uri, _ in re.findall(r'upsert_job (\S+) "[^"]+" "[^"]+" (\S+) (GET|POST)', script)}
    assert set(calls) == {"certification-expiry-nightly", "certification-compliance-check"}
    for args in deploy_steps():
        audience = dict(pair.split("=", 1) for pair in substitute(flag(args, "set-env-vars")).split(","))[
            "OIDC_AUDIENCE"
        ]
        assert audience in calls.values()


SCHEDULES = {
    "certification-expiry-nightly": ("_JOB_SCHEDULE", "_JOB_TIME_ZONE"),
    "certification-compliance-check": ("_CHECK_SCHEDULE", "_CHECK_TIME_ZONE"),
}


def wall_clock_times(schedule: str) -> list[time]:
    """The times of day a daily cron fires at, on the calendar alone."""
    assert schedule.split()[2:] == ["*", "*", "*"], "a schedule that fires every day"
    midnight = datetime(2026, 1, 1)
    fires = croniter(schedule, midnight - timedelta(seconds=1))
    times = []
    while (at := fires.get_next(datetime)) < midnight + timedelta(days=1):
        times.append(at.time())
    return times


def exists_once(day: date, at: time, zone: ZoneInfo) -> bool:
    """The wall-clock time neither falls in a daylight-saving jump nor is repeated."""
    local = datetime.combine(day, at)
    first, second = local.replace(tzinfo=zone, fold=0), local.replace(tzinfo=zone, fold=1)
    round_trip = first.astimezone(UTC).astimezone(zone).replace(tzinfo=None)
    return first.utcoffset() == second.utcoffset() and round_trip == local


@pytest.mark.parametrize("job", SCHEDULES)
def test_every_scheduled_time_exists_exactly_once_on_every_day_of_the_next_ten_years(job):
    schedule_key, zone_key = SCHEDULES[job]
    subs = BUILD["substitutions"]
    schedule, zone = subs[schedule_key], ZoneInfo(subs[zone_key])
    assert croniter.is_valid(schedule)
    assert len(schedule.split()) == 5, "Cloud Scheduler takes unix-cron: five fields, no seconds"
    times = wall_clock_times(schedule)
    start = datetime.now(UTC).date()
    missing = [
        (day, at)
        for day in (start + timedelta(days=n) for n in range(366 * 10))
        for at in times
        if not exists_once(day, at, zone)
    ]
    assert missing == []


def test_the_check_walks_the_days_that_trouble_oslo():
    """The check above would catch the schedule this project first had."""
    oslo = ZoneInfo("Europe/Oslo")
    assert not exists_once(date(2027, 3, 28), time(2, 0), oslo)  # skipped
    assert not exists_once(date(2026, 10, 25), time(2, 30), oslo)  # twice
    assert exists_once(date(2026, 10, 25), time(1, 15), oslo)


def test_the_nightly_run_is_after_midnight_in_oslo_and_the_check_runs_every_hour():
    subs = BUILD["substitutions"]
    assert subs["_JOB_TIME_ZONE"] == "Europe/Oslo"
    [nightly] = wall_clock_times(subs["_JOB_SCHEDULE"])
    assert nightly == Settings.model_fields["nightly_run_at"].default  # what the check judges by
    checks = wall_clock_times(subs["_CHECK_SCHEDULE"])
    gaps = [b.hour * 60 + b.minute - a.hour * 60 - a.minute for a, b in itertools.pairwise(checks)]
    assert len(checks) >= 24
    assert max(gaps, default=0) <= 60
    script = step("schedule")["args"][-1]
    for job, (schedule_key, zone_key) in SCHEDULES.items():
        assert f'upsert_job {job} "${{{schedule_key}}}" "${{{zone_key}}}"' in script


def test_the_attempt_deadline_fits_the_job_and_its_time_budget():
    script = step("schedule")["args"][-1]
    deadline = int(re.search(r"--attempt-deadline=(\d+)s", script).group(1))
    timeout = int(BUILD["substitutions"]["_TIMEOUT"].rstrip("s"))
    assert deadline <= 1800  # Cloud Scheduler's maximum for HTTP targets
    assert Settings.model_fields["job_time_budget_seconds"].default < deadline <= timeout


def test_the_alert_policy_is_a_valid_alert_policy_watching_the_metrics_the_build_creates():
    policy = monitoring_v3.AlertPolicy.from_json(POLICY_TEXT)  # the API's own schema: unknown fields fail
    raw = json.loads(POLICY_TEXT)
    assert "deploy/log-metrics.json" in step("alerting")["args"][-1]
    created = {metric["name"] for metric in METRICS}
    watched = set(re.findall(r"logging.googleapis.com/user/(\w+)", POLICY_TEXT))
    assert (
        watched
        == created
        == {
            "certification_compliance_breach",
            "certification_expiry_run_not_succeeded",
            "certification_compliance_checked",
            "certification_scheduler_attempt_failed",
        }
    )
    assert policy.enabled
    assert policy.combiner == monitoring_v3.AlertPolicy.ConditionCombinerType.OR
    log_match = any("conditionMatchedLog" in condition for condition in raw["conditions"])
    # notificationRateLimit is required on log-match policies and refused on the others.
    assert ("notificationRateLimit" in raw.get("alertStrategy", {})) == log_match
    assert "docs/runbook.md" in policy.documentation.content


def test_the_metric_filters_name_events_the_code_logs():
    schema = json.loads((ROOT / "certification_expiry" / "log_line.schema.json").read_text())
    events = set(schema["properties"]["event"]["enum"])
    filtered = set(re.findall(r'jsonPayload\.event="([\w.]+)"', " ".join(m["filter"] for m in METRICS)))
    assert filtered
    assert filtered <= events


def test_the_watcher_is_watched_the_compliance_checks_absence_for_two_hours_alerts():
    [absent] = [c for c in monitoring_v3.AlertPolicy.from_json(POLICY_TEXT).conditions if c.condition_absent]
    condition = absent.condition_absent
    assert "certification_compliance_checked" in condition.filter
    # Google's bounds on an absence: at least 120 s, at most 23.5 hours.
    assert condition.duration.total_seconds() == 2 * 3600
    checks_per_day = len(wall_clock_times(BUILD["substitutions"]["_CHECK_SCHEDULE"]))
    assert condition.duration.total_seconds() >= 2 * 24 * 3600 / checks_per_day  # two checks missed, not one


def test_each_metric_condition_watches_the_resource_its_lines_come_from():
    conditions = {
        re.search(
            r"user/(\w+)",
            c["conditionThreshold"]["filter"] if "conditionThreshold" in c else c["conditionAbsent"]["filter"],
        ).group(1): c
        for c in json.loads(POLICY_TEXT)["conditions"]
    }
    for name, condition in conditions.items():
        body = condition.get("conditionThreshold") or condition["conditionAbsent"]
        resource = "cloud_scheduler_job" if "scheduler" in name else "cloud_run_revision"
        assert f'resource.type="{resource}"' in body["filter"], name


def test_each_function_runs_more_threads_than_cloud_run_sends_it_requests():
    """A slow client holds a gunicorn thread (tests/acceptance/test_slow_clients.py):
    with more threads than --concurrency, every request Cloud Run admits finds one."""
    for args in deploy_steps():
        environment = dict(item.split("=", 1) for item in flag(args, "set-env-vars").split(","))
        assert int(environment["THREADS"]) > int(flag(args, "concurrency"))
