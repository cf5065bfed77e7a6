"""`make verify-deployment` against a deployment of our own: healthy, then broken on purpose."""

from __future__ import annotations

import os
import subprocess
import sys
from collections.abc import Iterator

import psycopg
import pytest

from tools.local_function import served_function
from tools.paths import PROJECT_ROOT
from tools.verify_deployment import REGISTRATIONS, Deployment, verify


@pytest.fixture(scope="module")
def deployment(own_stack) -> Iterator[Deployment]:
    environment = {"SUPABASE_URL": own_stack.url, "SUPABASE_SECRET_KEY": own_stack.secret_key}
    with (
        served_function("certification_expiry_job", environment) as job,
        served_function("certification_compliance_check", environment) as compliance,
    ):
        yield Deployment(job, compliance, own_stack.secret_key, own_stack.database.dsn)


def failures(deployment: Deployment) -> dict[str, str]:
    return {result.name: result.detail for result in verify(deployment) if not result.ok}


def test_a_healthy_deployment_passes_every_item(deployment, monkeypatch):
    monkeypatch.delenv("GOOGLE_CLOUD_PROJECT", raising=False)
    results = verify(deployment)
    assert len(results) == 6
    assert [result for result in results if not result.ok] == []
    assert all(result.ms >= 0 for result in results)
    # With no Google Cloud project to read, the registrations are skipped, and say why.
    assert [(r.name, r.detail) for r in results if r.skipped] == [
        (REGISTRATIONS, "skipped: GOOGLE_CLOUD_PROJECT is not set")
    ]


def test_a_wrong_key_is_named(deployment):
    wrong = Deployment(deployment.function_url, deployment.compliance_url, "sb_secret_wrong", deployment.db_url)
    failed = failures(wrong)
    assert set(failed) == {
        "a dry run with the key answers its summary",
        "the compliance check answers with its figures",
    }
    assert "got 401" in failed["a dry run with the key answers its summary"]


def test_a_missing_grant_is_named(deployment):
    function = "public.update_mentor_status(uuid, text, uuid, text, integer, text)"
    with psycopg.connect(deployment.db_url, autocommit=True) as conn:
        conn.execute(f"revoke execute on function {function} from authenticated")
        try:
            failed = failures(deployment)
        finally:
            conn.execute(f"grant execute on function {function} to authenticated")
    assert list(failed) == ["the schema, its security and its grants"]
    assert (
        f"authenticated on {function}: has nothing, should have EXECUTE"
        in failed["the schema, its security and its grants"]
    )


def test_the_command_prints_the_checklist_and_exits_non_zero_on_a_failure(deployment):
    environment = {
        **os.environ,
        "FUNCTION_URL": deployment.function_url,
        "COMPLIANCE_URL": deployment.compliance_url,
        "SUPABASE_SECRET_KEY": "sb_secret_wrong",
    }
    environment.pop("SUPABASE_DB_URL", None)
    environment.pop("GOOGLE_CLOUD_PROJECT", None)
    completed = subprocess.run(
        [sys.executable, "-m", "tools.verify_deployment"],
        cwd=PROJECT_ROOT,
        env=environment,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert completed.returncode == 1, completed.stdout + completed.stderr
    lines = completed.stdout.splitlines()
    assert lines[0].startswith("ok    an unauthenticated call is refused")
    assert lines[1].startswith("FAIL  a dry run with the key answers its summary")
    assert lines[-3].startswith(f"skip  {REGISTRATIONS}")
    assert lines[-1] == "1 ok, 2 failed, 1 skipped"
