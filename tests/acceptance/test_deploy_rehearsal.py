"""cloudbuild.yaml rehearsed with the installed gcloud against Google's APIs stood in
for on loopback (tools/rehearse_deploy.py, tools/google_stand_in.py): a first deploy
from nothing and a redeploy over drift both end with exactly the resources
../shared/design.md describes, and the zip gcloud uploads for each function,
installed as Google's Python buildpack installs it, pauses the demo mentors.
"""

from __future__ import annotations

import copy
import io
import json
import os
import subprocess
import sys
import zipfile
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import psycopg
import pytest
import yaml

from local_supabase.ephemeral import running_gateway, throwaway_cluster, wait_until
from local_supabase.postgres import free_port, push_migrations
from tools.google_stand_in import GoogleStandIn, GoogleState
from tools.paths import PROJECT_ROOT
from tools.rehearse_deploy import (
    CLOUD_SDK_IMAGE,
    LOCATION,
    SUBSTITUTIONS,
    Rehearsal,
    drift,
    pinned_image,
    registration_problems,
    rehearse,
)

BUILD = yaml.safe_load((PROJECT_ROOT / "cloudbuild.yaml").read_text())
METRICS = json.loads((PROJECT_ROOT / "deploy" / "log-metrics.json").read_text())
POLICY = json.loads((PROJECT_ROOT / "deploy" / "alert-policy.json").read_text())
FUNCTION_FILES = {"main.py", "requirements.txt"} | {
    str(path.relative_to(PROJECT_ROOT))
    for path in (PROJECT_ROOT / "certification_expiry").iterdir()
    if path.is_file() and path.suffix in (".py", ".json")
}


def expected_resources(project: str) -> dict[str, Any]:
    """The resources the design describes, in the shape `resources()` reads them."""
    url = f"https://{LOCATION}-{project}.cloudfunctions.net"
    function_account = f"certification-expiry@{project}.iam.gserviceaccount.com"
    scheduler_account = f"certification-scheduler@{project}.iam.gserviceaccount.com"

    def function(name: str, entry_point: str, memory: str, timeout: int) -> dict[str, Any]:
        return {
            "runtime": "python311",
            "entry_point": entry_point,
            "memory": memory,
            "cpu": "1",
            "concurrency": 8,
            "timeout": timeout,
            "account": function_account,
            "environment": {
                "SUPABASE_URL": SUBSTITUTIONS["_SUPABASE_URL"],
                "OIDC_AUDIENCE": f"{url}/{name}",
                "ALLOWED_INVOKERS": scheduler_account,
                "THREADS": "16",
            },
            "secrets": [("SUPABASE_SECRET_KEY", "supabase-secret-key", "latest")],
            "invokers": ["allUsers"],
        }

    def job(uri: str, method: str, schedule: str, zone: str) -> dict[str, Any]:
        return {
            "state": "ENABLED",
            "schedule": schedule,
            "time_zone": zone,
            "uri": uri,
            "method": method,
            "oidc": (scheduler_account, uri),
            "attempt_deadline": "1800s",
            "retries": 3,
        }

    return {
        "functions": {
            "certification-expiry-job": function("certification-expiry-job", "certification_expiry_job", "512Mi", 1800),
            "certification-compliance-check": function(
                "certification-compliance-check", "certification_compliance_check", "256Mi", 300
            ),
        },
        "jobs": {
            "certification-expiry-nightly": job(f"{url}/certification-expiry-job", "POST", "15 1 * * *", "Europe/Oslo"),
            "certification-compliance-check": job(
                f"{url}/certification-compliance-check", "GET", "5 * * * *", "Etc/UTC"
            ),
        },
        "metrics": {metric["name"]: metric["filter"] for metric in METRICS},
        "policies": [
            {
                "display_name": POLICY["displayName"],
                "enabled": True,
                "conditions": len(POLICY["conditions"]),
                "channels": [SUBSTITUTIONS["_NOTIFICATION_CHANNEL"]],
            }
        ],
    }


def resources(state: GoogleState) -> dict[str, Any]:
    def function(held: dict[str, Any]) -> dict[str, Any]:
        build, service = held["buildConfig"], held["serviceConfig"]
        return {
            "runtime": build["runtime"],
            "entry_point": build["entryPoint"],
            "memory": service["availableMemory"],
            "cpu": service.get("availableCpu"),
            "concurrency": service.get("maxInstanceRequestConcurrency"),
            "timeout": service.get("timeoutSeconds"),
            "account": service.get("serviceAccountEmail"),
            "environment": service.get("environmentVariables"),
            "secrets": [(s["key"], s["secret"], s["version"]) for s in service.get("secretEnvironmentVariables", [])],
            "invokers": state.invokers.get(held["name"].rsplit("/", 1)[1]),
        }

    def job(held: dict[str, Any]) -> dict[str, Any]:
        target = held["httpTarget"]
        return {
            "state": held["state"],
            "schedule": held["schedule"],
            "time_zone": held["timeZone"],
            "uri": target["uri"],
            "method": target["httpMethod"],
            "oidc": (target["oidcToken"]["serviceAccountEmail"], target["oidcToken"]["audience"]),
            "attempt_deadline": held.get("attemptDeadline"),
            "retries": held.get("retryConfig", {}).get("retryCount"),
        }

    return {
        "functions": {name: function(held) for name, held in state.functions.items()},
        "jobs": {name: job(held) for name, held in state.jobs.items()},
        "metrics": {name: held["filter"] for name, held in state.metrics.items()},
        "policies": [
            {
                "display_name": held["displayName"],
                "enabled": held.get("enabled"),
                "conditions": len(held.get("conditions", [])),
                "channels": held.get("notificationChannels", []),
            }
            for held in state.policies.values()
        ],
    }


@pytest.fixture(scope="module")
def stand_in() -> Iterator[GoogleStandIn]:
    served = GoogleStandIn()
    served.start()
    yield served
    served.stop()


@dataclass
class Deployed:
    rehearsal: Rehearsal
    state: GoogleState  # what the stand-in held once the build's steps had run
    named_before: dict[str, str]  # what verify-deployment's registration checks named before the build
    named_after: dict[str, str]  # and after it


@pytest.fixture(scope="module")
def first_deploy(stand_in, tmp_path_factory) -> Deployed:
    """A deploy to a project that holds nothing yet."""
    rehearsal = rehearse(stand_in, tmp_path_factory.mktemp("first-deploy"))
    return Deployed(rehearsal, copy.deepcopy(stand_in.state), {}, registration_problems(stand_in))


@pytest.fixture(scope="module")
def redeploy(first_deploy, stand_in, tmp_path_factory) -> Deployed:
    """The same deploy again, over a project that drifted since."""
    drift(stand_in)
    named = registration_problems(stand_in)
    rehearsal = rehearse(stand_in, tmp_path_factory.mktemp("redeploy"))
    return Deployed(rehearsal, copy.deepcopy(stand_in.state), named, registration_problems(stand_in))


def test_every_cloud_sdk_step_runs_the_gcloud_installed_and_rehearsed_here():
    images = {step["name"] for step in BUILD["steps"] if step["name"].startswith(CLOUD_SDK_IMAGE)}
    assert images == {pinned_image()}


def test_a_first_deploy_ends_with_exactly_the_described_resources(first_deploy):
    assert resources(first_deploy.state) == expected_resources(first_deploy.state.project)
    assert first_deploy.named_after == {}


def test_a_redeploy_over_drift_ends_with_exactly_the_described_resources(redeploy):
    named = redeploy.named_before
    assert set(named) == {
        "the Cloud Scheduler job certification-expiry-nightly",
        "the log-based metrics",
        "the alert policy",
    }
    assert "PAUSED" in named["the Cloud Scheduler job certification-expiry-nightly"]
    assert "certification_compliance_breach" in named["the log-based metrics"]
    assert "disabled" in named["the alert policy"]
    assert resources(redeploy.state) == expected_resources(redeploy.state.project)
    assert redeploy.named_after == {}


@pytest.mark.parametrize("function_id", ["certification-expiry-job", "certification-compliance-check"])
def test_each_upload_holds_the_function_and_nothing_else(first_deploy, function_id):
    with zipfile.ZipFile(io.BytesIO(first_deploy.state.function_sources[function_id])) as archive:
        files = {name for name in archive.namelist() if not name.endswith("/")}
    assert files == FUNCTION_FILES


def test_the_build_tarball_holds_what_the_steps_need_and_no_local_state(first_deploy):
    files = first_deploy.rehearsal.uploaded
    ignored = subprocess.run(
        ["git", "check-ignore", "--no-index", "--stdin"],
        input="\n".join(files),
        cwd=PROJECT_ROOT,
        capture_output=True,
        text=True,
    ).stdout.split()
    assert ignored == []
    assert {"cloudbuild.yaml", "requirements-dev.txt", "deploy/log-metrics.json", "deploy/alert-policy.json"} <= set(
        files
    )


# --- the uploaded function, built as Google's Python buildpack builds it -----------------


def buildpack_install(source: Path, venv: Path) -> Path:
    """What GoogleCloudPlatform/buildpacks' python buildpacks do with a function's source:
    compile it, pip-install requirements.txt with their flags (the hashes in the file
    turn hash checking on), check the result; the web process is `functions-framework`."""
    subprocess.run([sys.executable, "-m", "venv", str(venv)], check=True)
    python = venv / "bin" / "python"
    subprocess.run([str(python), "-m", "compileall", "-f", "-q", "."], cwd=source, check=True)
    pip_install = [str(python), "-m", "pip", "install", "--requirement", "requirements.txt", "--upgrade"]
    pip_install += ["--upgrade-strategy", "only-if-needed", "--no-warn-script-location", "--no-warn-conflicts"]
    pip_install += ["--force-reinstall", "--no-compile", "--disable-pip-version-check", "--no-cache-dir", "--quiet"]
    subprocess.run(pip_install, cwd=source, check=True, timeout=900)
    subprocess.run([str(python), "-m", "pip", "check"], cwd=source, check=True)
    return venv / "bin" / "functions-framework"


@pytest.mark.timeout(1200)
def test_the_function_installed_from_gclouds_upload_pauses_the_demo_mentors(first_deploy, tmp_path):
    source = tmp_path / "source"
    with zipfile.ZipFile(io.BytesIO(first_deploy.state.function_sources["certification-expiry-job"])) as archive:
        archive.extractall(source)
    functions_framework = buildpack_install(source, tmp_path / "venv")

    with throwaway_cluster() as cluster, running_gateway(cluster) as stack:
        push_migrations(cluster.dsn, seed=True)
        with psycopg.connect(cluster.dsn) as conn:
            (expired,) = conn.execute("select count(*) from public.expired_active_mentors").fetchone()
        port = free_port()
        environment = {
            "PATH": os.environ["PATH"],
            "PORT": str(port),
            "FUNCTION_TARGET": "certification_expiry_job",
            "FUNCTION_SIGNATURE_TYPE": "http",
            "SUPABASE_URL": stack.url,
            "SUPABASE_SECRET_KEY": stack.secret_key,
        }
        server = subprocess.Popen([str(functions_framework)], cwd=source, env=environment)
        try:
            assert wait_until(lambda: _answers(port), gave_up=lambda: server.poll() is not None, timeout=60)
            answer = httpx.post(
                f"http://127.0.0.1:{port}/", headers={"Authorization": f"Bearer {stack.secret_key}"}, timeout=60
            )
        finally:
            server.terminate()
            server.wait(timeout=10)
        with psycopg.connect(cluster.dsn) as conn:
            (left,) = conn.execute("select count(*) from public.expired_active_mentors").fetchone()
    assert expired > 0
    assert answer.status_code == 200, answer.text
    assert (answer.json()["status"], answer.json()["paused_count"], left) == ("succeeded", expired, 0)


def _answers(port: int) -> bool:
    try:
        httpx.get(f"http://127.0.0.1:{port}/", timeout=1)
    except httpx.HTTPError:
        return False
    return True
