"""`make rehearse-deploy`: cloudbuild.yaml run as Cloud Build runs it, with the gcloud
installed on this machine, against Google's APIs stood in for on loopback
(tools/google_stand_in.py).

1. `gcloud builds submit --async` uploads the source as the operator's command does
   (deploy/build.gcloudignore), and the stand-in keeps the tarball and the build
   gcloud sent: its steps, its substitutions.
2. The tarball is unpacked into a workspace, and each step runs there in `waitFor`
   order with its entrypoint and arguments, after Cloud Build's substitutions:
   built-in and user values, dynamic ones expanded, `$$` escapes left as `$`.
   cloud-sdk steps run the installed gcloud, which the build's image tag must name;
   the deploy gate's Python step runs with the project's locked environment.
3. The stand-in then holds what the deploy made: each function with the zip gcloud
   uploaded, the scheduler jobs, the log-based metrics, the alert policy.

Run alone, it rehearses a first deploy, then drift (a paused scheduler job, a
metric with another filter, a disabled policy) named by `make verify-deployment`'s
registration checks, then the redeploy that puts it right, and exits non-zero when
any of it fails. What a rehearsal cannot prove is in docs/deploying.md.
"""

from __future__ import annotations

import io
import json
import os
import re
import subprocess
import sys
import tarfile
import tempfile
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml

from tools import registrations
from tools.google_stand_in import PROJECT_NUMBER, GoogleStandIn, Json
from tools.paths import PROJECT_ROOT

CLOUD_SDK_IMAGE = "gcr.io/google.com/cloudsdktool/cloud-sdk"
SUBSTITUTIONS = {
    "_SUPABASE_URL": "https://rehearsal.supabase.co",
    "_NOTIFICATION_CHANNEL": "projects/rehearsal-project/notificationChannels/1",
}
LOCATION = yaml.safe_load((PROJECT_ROOT / "cloudbuild.yaml").read_text())["substitutions"]["_REGION"]


class StepFailed(Exception):
    """A step of the build exited non-zero: its id, and the end of its output."""


def installed_gcloud_version() -> str:
    completed = subprocess.run(["gcloud", "version", "--format=json"], capture_output=True, text=True, check=True)
    return str(json.loads(completed.stdout)["Google Cloud SDK"])


def pinned_image() -> str:
    """The cloud-sdk image that runs the gcloud installed here."""
    return f"{CLOUD_SDK_IMAGE}:{installed_gcloud_version()}-slim"


@dataclass
class Rehearsal:
    stand_in: GoogleStandIn
    workspace: Path
    build: Json
    config_dir: str
    uploaded: list[str] = field(default_factory=list)  # the files of the tarball gcloud uploaded

    @property
    def environment(self) -> dict[str, str]:
        return {**os.environ, **self.stand_in.gcloud_environment(self.config_dir)}

    def gcloud(self, *args: str) -> str:
        """A gcloud command against the stand-in, as an operator would type it."""
        completed = subprocess.run(
            ["gcloud", *args], env=self.environment, capture_output=True, text=True, stdin=subprocess.DEVNULL
        )
        if completed.returncode != 0:
            raise StepFailed(f"gcloud {' '.join(args[:3])}: {completed.stderr.strip()[-1500:]}")
        return completed.stdout


def submit(stand_in: GoogleStandIn, substitutions: dict[str, str], workspace_parent: Path) -> Rehearsal:
    """`gcloud builds submit`, as docs/deploying.md gives it, with --async: the steps run here."""
    config_dir = tempfile.mkdtemp(prefix="gcloud-config-", dir=workspace_parent)
    rehearsal = Rehearsal(stand_in, workspace_parent / "workspace", {}, config_dir)
    given = ",".join(f"{name}={value}" for name, value in substitutions.items())
    completed = subprocess.run(
        [
            *("gcloud", "builds", "submit", "--async", "--config=cloudbuild.yaml"),
            *("--ignore-file=deploy/build.gcloudignore", f"--substitutions={given}", "."),
        ],
        cwd=PROJECT_ROOT,
        env=rehearsal.environment,
        capture_output=True,
        text=True,
        stdin=subprocess.DEVNULL,
    )
    if completed.returncode != 0:
        raise StepFailed(f"gcloud builds submit: {completed.stderr.strip()[-1500:]}")
    rehearsal.build = stand_in.state.builds[-1]
    source = rehearsal.build["source"]["storageSource"]
    tarball = stand_in.state.objects[f"{source['bucket']}/{source['object']}"]
    rehearsal.workspace.mkdir()
    with tarfile.open(fileobj=io.BytesIO(tarball)) as archive:
        rehearsal.uploaded = sorted(member.name for member in archive.getmembers() if member.isfile())
        archive.extractall(rehearsal.workspace, filter="data")
    return rehearsal


def resolved_substitutions(build: Json, project: str) -> dict[str, str]:
    """Cloud Build's built-in values and the build's own; with dynamicSubstitutions,
    a value's ${NAME} references are expanded, as bash would."""
    values = {
        "PROJECT_ID": project,
        "PROJECT_NUMBER": PROJECT_NUMBER,
        "BUILD_ID": build["id"],
        "LOCATION": "global",
        **build.get("substitutions", {}),
    }
    if build.get("options", {}).get("dynamicSubstitutions"):
        for _ in range(len(values)):
            values = {name: substitute(value, values, strict=False) for name, value in values.items()}
    return values


REFERENCE = re.compile(r"\$(\$|\{([A-Za-z_][A-Za-z0-9_]*)\}|([A-Za-z_][A-Za-z0-9_]*))")


def substitute(text: str, values: dict[str, str], strict: bool = True) -> str:
    """$NAME and ${NAME} replaced by their values, $$ left as one $. Cloud Build refuses
    a build that names a substitution it does not have; so does this, when strict."""

    def replace(match: re.Match[str]) -> str:
        if match.group(1) == "$":
            return "$"
        name = match.group(2) or match.group(3)
        if name in values:
            return values[name]
        if strict:
            raise StepFailed(f"the build names ${name}, which is neither built in nor a substitution")
        return match.group(0)

    return REFERENCE.sub(replace, text)


def in_wait_for_order(steps: list[Json]) -> Iterator[Json]:
    """The steps in an order Cloud Build could run them: a step without waitFor waits
    for every step before it; `-` starts at once; otherwise after the steps named."""
    done: set[str] = set()
    pending = list(enumerate(steps))
    while pending:
        for position, (index, step) in enumerate(pending):
            wait_for = step.get("waitFor")
            before = {s.get("id", str(i)) for i, s in enumerate(steps[:index])}
            needed = before if wait_for is None else set() if wait_for == ["-"] else set(wait_for)
            if needed <= done:
                pending.pop(position)
                done.add(step.get("id", str(index)))
                yield step
                break
        else:
            raise StepFailed(f"steps wait for steps that never run: {[s.get('id') for _, s in pending]}")


def run_steps(rehearsal: Rehearsal) -> list[str]:
    """Every step of the build, in order; the ids of the steps that ran."""
    values = resolved_substitutions(rehearsal.build, rehearsal.stand_in.state.project)
    image = pinned_image()
    ran = []
    for step in in_wait_for_order(rehearsal.build["steps"]):
        name = substitute(step["name"], values)
        entrypoint = substitute(step.get("entrypoint", ""), values)
        args = [substitute(arg, values) for arg in step.get("args", [])]
        environment = rehearsal.environment
        if name.startswith(CLOUD_SDK_IMAGE):
            if name != image:
                raise StepFailed(f"step {step.get('id')} runs {name}, not {image}, the gcloud rehearsed here")
        else:
            # The deploy gate's Python image: this project's locked environment stands in for it.
            environment["PATH"] = f"{Path(sys.executable).parent}{os.pathsep}{environment['PATH']}"
        command = [entrypoint or "bash", *args]
        completed = subprocess.run(
            command,
            cwd=rehearsal.workspace / step.get("dir", ""),
            env=environment,
            capture_output=True,
            text=True,
            stdin=subprocess.DEVNULL,
            timeout=900,
        )
        if completed.returncode != 0:
            output = (completed.stdout + completed.stderr).strip()[-2000:]
            raise StepFailed(f"step {step.get('id')} exited {completed.returncode}:\n{output}")
        ran.append(step.get("id", ""))
    return ran


def rehearse(stand_in: GoogleStandIn, workspace_parent: Path, substitutions: dict[str, str] | None = None) -> Rehearsal:
    rehearsal = submit(stand_in, substitutions or SUBSTITUTIONS, workspace_parent)
    run_steps(rehearsal)
    return rehearsal


# --- checking what a deploy made, with make verify-deployment's own checks ------------


def registration_problems(stand_in: GoogleStandIn) -> dict[str, str]:
    """What `make verify-deployment` says of the stand-in's registrations: item -> failure."""
    project = stand_in.state.project
    base = f"https://{LOCATION}-{project}.cloudfunctions.net"
    invoker = registrations.BUILD["substitutions"]["_SCHEDULER_SERVICE_ACCOUNT"].replace("${PROJECT_ID}", project)
    google = registrations.GoogleProject(
        project, LOCATION, f"{base}/certification-expiry-job", f"{base}/certification-compliance-check", [invoker]
    )
    return registrations.failures(google, stand_in.clients())


def drift(stand_in: GoogleStandIn) -> None:
    """What a live project can hold between deploys: a scheduler job paused by hand,
    a metric whose filter was edited in the console, the alert policy disabled."""
    state = stand_in.state
    state.jobs["certification-expiry-nightly"]["state"] = "PAUSED"
    state.metrics["certification_compliance_breach"]["filter"] = 'jsonPayload.event="something.else"'
    for policy in state.policies.values():
        policy["enabled"] = False


def main() -> int:
    stand_in = GoogleStandIn()
    stand_in.start()
    try:
        with tempfile.TemporaryDirectory(prefix="rehearse-deploy-") as folder:
            first = Path(folder) / "first"
            first.mkdir()
            rehearse(stand_in, first)
            print(f"first deploy: every step of cloudbuild.yaml ran; {summary(stand_in)}")
            report("after the first deploy", registration_problems(stand_in))
            drift(stand_in)
            named = registration_problems(stand_in)
            report("after drift", named)
            again = Path(folder) / "again"
            again.mkdir()
            rehearse(stand_in, again)
            print(f"redeploy: every step ran again; {summary(stand_in)}")
            problems = registration_problems(stand_in)
            report("after the redeploy", problems)
            return 1 if problems or len(named) < 3 else 0
    except StepFailed as error:
        print(f"FAILED: {error}", file=sys.stderr)
        return 1
    finally:
        stand_in.stop()


def summary(stand_in: GoogleStandIn) -> str:
    state = stand_in.state
    return (
        f"{len(state.functions)} functions, {len(state.jobs)} scheduler jobs, {len(state.metrics)} metrics,"
        f" {len(state.policies)} alert policy"
    )


def report(when: str, problems: dict[str, Any]) -> None:
    print(f"verify-deployment's registrations {when}: " + ("all ok" if not problems else ""))
    for item, problem in problems.items():
        print(f"  FAIL {item}: {problem}")


if __name__ == "__main__":
    sys.exit(main())
