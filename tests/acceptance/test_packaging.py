"""What `gcloud functions deploy --source=.` uploads, installed as the Python buildpack
installs it (requirements.txt alone, in a fresh virtual environment), and served.

A runtime import of a package that only requirements-dev.txt brings (psycopg,
starlette, jsonschema…) passes every other test and fails here, as it would on
the first cold start in production.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path

import httpx
import pathspec
import pytest

from local_supabase.postgres import PROJECT_ROOT
from tools.local_function import served_function


def uploaded_files(root: Path) -> list[Path]:
    """The files gcloud would upload from root: everything .gcloudignore does not exclude."""
    spec = pathspec.GitIgnoreSpec.from_lines((root / ".gcloudignore").read_text().splitlines())
    kept = []
    for folder, subfolders, files in os.walk(root):
        relative = Path(folder).relative_to(root)
        # A folder the rules exclude is not descended into, as gcloud does not.
        subfolders[:] = [d for d in subfolders if d != ".git" and not spec.match_file(f"{relative / d}/")]
        kept += [relative / name for name in files if not spec.match_file(str(relative / name))]
    return sorted(kept)


@pytest.fixture(scope="module")
def deployed_tree(tmp_path_factory) -> tuple[Path, str]:
    """The uploaded tree, and the python of a fresh venv holding requirements.txt only."""
    root = tmp_path_factory.mktemp("upload")
    for relative in uploaded_files(PROJECT_ROOT):
        (root / relative).parent.mkdir(parents=True, exist_ok=True)
        shutil.copy2(PROJECT_ROOT / relative, root / relative)
    venv = tmp_path_factory.mktemp("buildpack") / "venv"
    subprocess.run([sys.executable, "-m", "venv", str(venv)], check=True)
    python = str(venv / "bin" / "python")
    subprocess.run(
        [
            python,
            "-m",
            "pip",
            "install",
            "--quiet",
            "--disable-pip-version-check",
            "--require-hashes",
            "-r",
            "requirements.txt",
        ],
        cwd=root,
        check=True,
        timeout=900,
    )
    return root, python


def test_only_the_function_is_uploaded():
    shipped = {str(path) for path in uploaded_files(PROJECT_ROOT)}
    assert {"main.py", "requirements.txt", "certification_expiry/job.py"} <= shipped
    assert {path.split("/")[0] for path in shipped} == {"main.py", "requirements.txt", "certification_expiry"}
    assert not any("__pycache__" in path for path in shipped)


# The install's own subprocess timeout, in the fixture, not pyproject.toml's default, bounds this test.
@pytest.mark.timeout(960)
@pytest.mark.parametrize("target", ["certification_expiry_job", "certification_compliance_check"])
def test_the_uploaded_tree_installs_from_requirements_alone_and_serves(deployed_tree, target):
    root, python = deployed_tree
    environment = {
        "SUPABASE_URL": "http://127.0.0.1:9",
        "SUPABASE_SECRET_KEY": "sb_secret_packaging-test",
        "PYTHONPATH": "",
    }
    with served_function(target, environment, python=python, source=root / "main.py") as url:
        response = httpx.post(url, json={"dry_run": True}, timeout=30)
    assert response.status_code == 401
    assert response.json()["error"]["code"] == "unauthenticated"
