"""The project as the Supabase CLI pinned in package.json sees it, and the server
the tests run on: the one new hosted projects run."""

from __future__ import annotations

import psycopg

from local_supabase.postgres import MIGRATIONS_DIR, supabase_cli


def test_the_cli_reads_config_toml_without_a_warning():
    # `seed buckets --local` reads config.toml and, with no bucket configured,
    # needs neither Docker nor a server; the CLI prints `WARN:` for deprecated sections.
    output = supabase_cli("seed", "buckets", "--local")
    assert [line for line in output.splitlines() if "WARN" in line] == []


def test_the_cli_lists_every_migration_as_applied(database):
    output = supabase_cli("migration", "list", "--db-url", f"{database.dsn}?sslmode=disable")
    rows = [line.split("|") for line in output.splitlines() if line.count("|") == 2]
    applied = {local.strip(" `") for local, remote, _ in rows if local.strip() and local.strip() == remote.strip()}
    versions = {path.name.split("_", 1)[0] for path in MIGRATIONS_DIR.glob("*.sql")}
    assert versions <= applied


def test_the_tests_run_on_postgresql_17(database):
    with psycopg.connect(database.dsn) as conn:
        (version,) = conn.execute("show server_version_num").fetchone()
    assert int(version) // 10000 == 17
