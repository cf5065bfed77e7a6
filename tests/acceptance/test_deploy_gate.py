"""The deploy gate covers the security code: the tier cloudbuild.yaml runs before it
deploys (`pytest tests/unit`, needing no database) exercises auth.py's decisions,
measured as line coverage of the module from that tier alone."""

from __future__ import annotations

import os
import subprocess
import sys
import tempfile
from pathlib import Path

import yaml

from tools.paths import PROJECT_ROOT

AUTH = "certification_expiry/auth.py"
MINIMUM_PERCENT = 90


def test_the_gate_runs_the_unit_tier_which_covers_auth_py():
    gate = yaml.safe_load((PROJECT_ROOT / "cloudbuild.yaml").read_text())["steps"][0]
    assert gate["id"] == "unit-tests"
    assert gate["args"][-1].endswith("python -m pytest -q tests/unit")
    with tempfile.TemporaryDirectory() as folder:
        data = str(Path(folder) / ".coverage")
        environment = {**os.environ, "COVERAGE_FILE": data}
        run = subprocess.run(
            [
                sys.executable,
                "-m",
                "coverage",
                "run",
                f"--include={AUTH}",
                "-m",
                "pytest",
                "-q",
                "-p",
                "no:cacheprovider",
                "tests/unit",
            ],
            cwd=PROJECT_ROOT,
            env=environment,
            capture_output=True,
            text=True,
            timeout=300,
        )
        assert run.returncode == 0, run.stdout[-3000:] + run.stderr[-2000:]
        report = subprocess.run(
            [sys.executable, "-m", "coverage", "report", "--format=total", f"--include={AUTH}"],
            cwd=PROJECT_ROOT,
            env=environment,
            capture_output=True,
            text=True,
            timeout=60,
        )
    assert report.returncode == 0, report.stderr
    assert int(report.stdout.strip()) >= MINIMUM_PERCENT
