"""The runbook's pg_cron fallback, run exactly as written in docs/runbook.md.

pg_cron is real (Debian's postgresql-15-cron), so this module's cluster is Debian's
PostgreSQL 15, the one server here that has it; the rest of the tests run on 17.
The test runs wherever pg_cron exists. pg_net is not packaged for Debian,
so `net.http_post` and Supabase Vault are stand-ins with their real signatures:
the request is recorded instead of sent, and checked.
"""

from __future__ import annotations

import re
from collections.abc import Iterator

import psycopg
import pytest

from local_supabase.ephemeral import throwaway_cluster
from local_supabase.postgres import DEBIAN_POSTGRES_15, Cluster
from tools.paths import PROJECT_ROOT

RUNBOOK = (PROJECT_ROOT / "docs" / "runbook.md").read_text()
KEY = "sb_secret_from-vault"

STAND_INS = """
create schema net;
create table net.sent (url text, body jsonb, params jsonb, headers jsonb, timeout_milliseconds integer);
-- pg_net's signature: a request id back, the request made later by its worker.
create function net.http_post(
  url text, body jsonb default '{}'::jsonb, params jsonb default '{}'::jsonb,
  headers jsonb default '{"Content-Type": "application/json"}'::jsonb, timeout_milliseconds integer default 5000
) returns bigint language sql as $$
  insert into net.sent values (url, body, params, headers, timeout_milliseconds);
  select count(*) from net.sent;
$$;
create schema vault;
create table vault.secrets (id uuid primary key default gen_random_uuid(), name text unique, secret text);
create view vault.decrypted_secrets as select id, name, secret as decrypted_secret from vault.secrets;
create function vault.create_secret(
  new_secret text, new_name text default null, new_description text default '', new_key_id uuid default null
) returns uuid language sql as $$
  insert into vault.secrets (name, secret) values (new_name, new_secret) returning id;
$$;
"""


def runbook_sql(marker: str) -> str:
    block = re.search(rf"<!-- {marker}: begin -->\s*```sql\n(.*?)```\s*<!-- {marker}: end -->", RUNBOOK, re.S)
    assert block, f"docs/runbook.md has no {marker} block"
    return block.group(1)


@pytest.fixture(scope="module")
def cron_database() -> Iterator[Cluster]:
    settings = {"shared_preload_libraries": "pg_cron", "cron.database_name": "postgres"}
    with throwaway_cluster(extra_settings=settings, bindir=DEBIAN_POSTGRES_15) as cluster:
        with psycopg.connect(cluster.dsn, autocommit=True) as conn:
            conn.execute("create extension pg_cron")
            conn.execute(STAND_INS)
        yield cluster


def test_the_fallback_schedule_registers_and_calls_the_function_with_the_vault_key(cron_database):
    with psycopg.connect(cron_database.dsn, autocommit=True) as conn:
        conn.execute("select vault.create_secret(%s, 'certification_expiry_secret_key')", (KEY,))
        conn.execute(runbook_sql("fallback-schedule"))

        schedule, command, active = conn.execute(
            "select schedule, command, active from cron.job where jobname = 'certification-expiry-fallback'"
        ).fetchone()
        assert (schedule, active) == ("45 0 * * *", True)

        conn.execute(command)  # what pg_cron's worker will run at 00:45 UTC
        url, body, headers, timeout = conn.execute(
            "select url, body, headers, timeout_milliseconds from net.sent"
        ).fetchone()
    assert url.endswith(".cloudfunctions.net/certification-expiry-job")
    assert headers["Authorization"] == f"Bearer {KEY}"
    assert body == {}
    assert timeout >= 1_500_000  # longer than a run's time budget


def test_the_fallback_unschedules(cron_database):
    with psycopg.connect(cron_database.dsn, autocommit=True) as conn:
        if not conn.execute("select 1 from cron.job where jobname = 'certification-expiry-fallback'").fetchone():
            conn.execute(runbook_sql("fallback-schedule"))
        conn.execute(runbook_sql("fallback-unschedule"))
        assert conn.execute("select count(*) from cron.job").fetchone() == (0,)
