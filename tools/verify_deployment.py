"""`make verify-deployment`: a deployment checked end to end, as a checklist.

With no settings it checks the local one: the stack (`make stack`) and both
functions served by functions-framework as `make run` serves them. With
FUNCTION_URL, COMPLIANCE_URL and SUPABASE_SECRET_KEY (or the legacy
SUPABASE_SERVICE_ROLE_KEY) it checks a deployed one; given SUPABASE_DB_URL too,
it checks the schema (functions, views, tables, grants) and, where the pg_cron
fallback is in use, its job. Given GOOGLE_CLOUD_PROJECT (and SCHEDULER_LOCATION,
else cloudbuild.yaml's region), it checks the Google Cloud registrations too
(tools/registrations.py); without it, that item is printed as skipped. It changes
nothing but a dry run's run row. Each item prints ok, FAIL or skip with the reason
and how long it took; the exit code is 1 when any item failed.
"""

from __future__ import annotations

import contextlib
import functools
import os
import sys
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass

import httpx
import psycopg
from google.api_core.exceptions import GoogleAPIError

from tools import privileges, registrations
from tools.registrations import Failed

SUMMARY_KEYS = {
    "job_run_id",
    "status",
    "dry_run",
    "candidate_count",
    "paused_count",
    "skipped_count",
    "error_count",
    "paused_mentor_ids",
    "errors",
    "duration_ms",
}
COMPLIANCE_KEYS = {"ok", "reasons", "night", "expired_active_count", "overdue_count", "last_success_at"}
VIEWS = (
    "public.expired_active_mentors",
    "public.listed_peer_mentors",
    "public.certification_expiry_pauses",
    "public.certifications_expiring_soon",
)
FALLBACK_JOB = "certification-expiry-fallback"


@dataclass(frozen=True)
class Deployment:
    function_url: str
    compliance_url: str
    key: str
    db_url: str | None


@dataclass(frozen=True)
class Result:
    name: str
    ok: bool
    detail: str
    ms: int
    skipped: bool = False


def unauthenticated_is_refused(deployment: Deployment) -> str:
    response = httpx.post(deployment.function_url, json={"dry_run": True}, timeout=30)
    if response.status_code != 401:
        raise Failed(f"expected 401, got {response.status_code}")
    try:
        code = response.json()["error"]["code"]
    except (ValueError, KeyError, TypeError) as error:
        raise Failed(f"401 without the JSON error body: {response.text[:100]!r}") from error
    return f"401 {code}"


def dry_run_succeeds(deployment: Deployment) -> str:
    response = httpx.post(
        deployment.function_url,
        json={"dry_run": True},
        headers={"Authorization": f"Bearer {deployment.key}"},
        timeout=120,
    )
    if response.status_code != 200:
        reason = response.json().get("error", {}).get("message", "") if response.content else ""
        raise Failed(f"expected 200, got {response.status_code} {reason}".strip())
    summary = response.json()
    missing = SUMMARY_KEYS - set(summary)
    if missing or summary["dry_run"] is not True:
        raise Failed(f"summary incomplete: missing {sorted(missing)}, dry_run={summary.get('dry_run')}")
    return f"{summary['candidate_count']} candidates, run {summary['job_run_id']}"


def compliance_answers(deployment: Deployment) -> str:
    response = httpx.get(deployment.compliance_url, headers={"Authorization": f"Bearer {deployment.key}"}, timeout=60)
    if response.status_code not in (200, 500):
        raise Failed(f"expected 200 or 500 with the figures, got {response.status_code}")
    report = response.json()
    missing = COMPLIANCE_KEYS - set(report)
    if missing:
        raise Failed(f"answer without {sorted(missing)}: {response.text[:120]}")
    state = "ok" if report["ok"] else "BREACH: " + "; ".join(report["reasons"])
    return f"{state} (expired still active: {report['expired_active_count']})"


def schema_and_grants(deployment: Deployment) -> str:
    """Every right of the API roles is docs/database.md's table, no more and no less;
    the RPC runs with its owner's rights and the views with their reader's."""
    assert deployment.db_url is not None
    documented = privileges.documented_matrix()
    problems = privileges.differences(privileges.catalog_matrix(deployment.db_url), documented)
    with psycopg.connect(deployment.db_url, connect_timeout=10) as conn:
        definer = conn.execute(
            "select prosecdef from pg_proc where oid = to_regprocedure(%s)",
            ("public.update_mentor_status(uuid, text, uuid, text, integer, text)",),
        ).fetchone()
        invokers = conn.execute(
            "select c.oid::regclass::text from pg_class c"
            " where c.oid = any(%s::regclass[]) and 'security_invoker=true' <> all(coalesce(c.reloptions, '{}'))"
            " and 'security_invoker=on' <> all(coalesce(c.reloptions, '{}'))",
            (list(VIEWS),),
        ).fetchall()
    problems += [
        *(["update_mentor_status is not SECURITY DEFINER"] if not (definer and definer[0]) else []),
        *(f"{view} is not security_invoker" for (view,) in invokers),
    ]
    if problems:
        raise Failed("; ".join(problems))
    return f"{len(documented)} objects, each with exactly the rights docs/database.md gives"


def fallback_job(deployment: Deployment) -> str:
    assert deployment.db_url is not None
    with psycopg.connect(deployment.db_url, connect_timeout=10) as conn:
        missing = conn.execute("select to_regclass('cron.job') is null").fetchone()
        if missing and missing[0]:
            return "pg_cron not installed: the fallback is not in use"
        job = conn.execute("select jobid from cron.job where jobname = %s", (FALLBACK_JOB,)).fetchone()
        if job is None:
            return f"no {FALLBACK_JOB} job: the fallback is not in use"
        last = conn.execute(
            "select status, return_message from cron.job_run_details where jobid = %s order by start_time desc limit 1",
            (job[0],),
        ).fetchone()
    if last is None:
        return f"{FALLBACK_JOB} registered, not run yet"
    if last[0] != "succeeded":
        raise Failed(f"{FALLBACK_JOB}'s last run {last[0]}: {last[1]}")
    return f"{FALLBACK_JOB} registered, last run succeeded"


def checklist(deployment: Deployment) -> list[tuple[str, Callable[[Deployment], str]]]:
    items: list[tuple[str, Callable[[Deployment], str]]] = [
        ("an unauthenticated call is refused", unauthenticated_is_refused),
        ("a dry run with the key answers its summary", dry_run_succeeds),
        ("the compliance check answers with its figures", compliance_answers),
    ]
    if deployment.db_url:
        items += [
            ("the schema, its security and its grants", schema_and_grants),
            ("the pg_cron fallback", fallback_job),
        ]
    return items


REGISTRATIONS = "the Cloud Scheduler jobs, log-based metrics and alert policy"


def verify(deployment: Deployment, clients: registrations.Clients | None = None) -> list[Result]:
    items: list[tuple[str, Callable[[], str]]] = [
        (name, functools.partial(check, deployment)) for name, check in checklist(deployment)
    ]
    google = registrations.GoogleProject.from_environment(deployment.function_url, deployment.compliance_url)
    skipped = []
    if google is None:
        skipped.append(Result(REGISTRATIONS, True, "skipped: GOOGLE_CLOUD_PROJECT is not set", 0, skipped=True))
    else:
        items += registrations.checks(google, clients or registrations.Clients.default())
    results = []
    for name, check in items:
        started = time.perf_counter()
        try:
            detail, ok = check(), True
        except (Failed, httpx.HTTPError, psycopg.Error, ValueError, GoogleAPIError) as error:
            detail, ok = str(error) or type(error).__name__, False
        results.append(Result(name, ok, detail, int((time.perf_counter() - started) * 1000)))
    return results + skipped


@contextlib.contextmanager
def local_deployment() -> Iterator[Deployment]:
    """The local stack, started if needed, and both functions served on loopback."""
    from local_supabase.stack import up
    from tools.local_function import served_function

    stack = up()
    environment = {"SUPABASE_URL": stack["SUPABASE_URL"], "SUPABASE_SECRET_KEY": stack["SUPABASE_SECRET_KEY"]}
    with (
        served_function("certification_expiry_job", environment) as job,
        served_function("certification_compliance_check", environment) as compliance,
    ):
        yield Deployment(job, compliance, stack["SUPABASE_SECRET_KEY"], stack["SUPABASE_DB_URL"])


def deployment_from_environment() -> Deployment | None:
    """The deployment named by the environment, or None for the local one."""
    function_url = os.environ.get("FUNCTION_URL")
    if not function_url:
        return None
    key = (os.environ.get("SUPABASE_SECRET_KEY") or "").split(",")[0] or os.environ.get("SUPABASE_SERVICE_ROLE_KEY")
    compliance_url = os.environ.get("COMPLIANCE_URL")
    if not key or not compliance_url:
        raise SystemExit("set COMPLIANCE_URL and SUPABASE_SECRET_KEY (or SUPABASE_SERVICE_ROLE_KEY) with FUNCTION_URL")
    return Deployment(function_url, compliance_url, key, os.environ.get("SUPABASE_DB_URL"))


def report(results: list[Result]) -> int:
    for result in results:
        mark = "skip" if result.skipped else "ok  " if result.ok else "FAIL"
        print(f"{mark}  {result.name} ({result.ms} ms): {result.detail}")
    failed = [result for result in results if not result.ok]
    skipped = [result for result in results if result.skipped]
    print(f"\n{len(results) - len(failed) - len(skipped)} ok, {len(failed)} failed, {len(skipped)} skipped")
    return 1 if failed else 0


def main() -> int:
    deployment = deployment_from_environment()
    if deployment is not None:
        return report(verify(deployment))
    with local_deployment() as local:
        print(f"Checking the local deployment: {local.function_url}, {local.compliance_url}\n")
        return report(verify(local))


if __name__ == "__main__":
    sys.exit(main())
