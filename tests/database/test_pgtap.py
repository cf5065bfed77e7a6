"""supabase/tests/database/*.test.sql, the pgTAP tests `supabase test db` runs, run
here with pg_prove against the session's throwaway cluster."""

from __future__ import annotations

import os
import subprocess

from local_supabase.postgres import PASSWORD
from tools.paths import PROJECT_ROOT

TESTS = sorted((PROJECT_ROOT / "supabase" / "tests" / "database").glob("*.test.sql"))


def test_the_pgtap_files_pass_under_pg_prove(database):
    assert len(TESTS) >= 3
    completed = subprocess.run(
        [
            *("pg_prove", "--host", database.host, "--port", str(database.port)),
            *("--username", "postgres", "--dbname", "postgres", "--verbose"),
            *map(str, TESTS),
        ],
        env={**os.environ, "PGPASSWORD": PASSWORD},
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert completed.returncode == 0, completed.stdout[-4000:] + completed.stderr[-2000:]
    assert "All tests successful." in completed.stdout
    assert f"Files={len(TESTS)}," in completed.stdout
