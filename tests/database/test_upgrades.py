"""Every migration applied to a database that already holds data, as the
organisation's live project will: for each migration, a database migrated up to
just before it holds what the earlier migrations allowed (mentors in every state,
dates later refused, history, runs of every outcome including counts the ledger
later refuses, audit rows, renewals once they exist), then takes that migration and
every later one; the data is still there and readable through the views."""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from datetime import date, timedelta

import psycopg
import pytest
from psycopg import sql
from psycopg.rows import dict_row

from local_supabase.postgres import BOOTSTRAP_SQL, MIGRATIONS_DIR

MIGRATIONS = sorted(MIGRATIONS_DIR.glob("*.sql"))
TODAY = date.today()
EXPIRED, VALID = TODAY - timedelta(days=30), TODAY + timedelta(days=10)


def columns(conn: psycopg.Connection, table: str) -> set[str]:
    rows = conn.execute(
        "select column_name from information_schema.columns where table_schema = 'public' and table_name = %s",
        (table,),
    ).fetchall()
    return {row["column_name"] for row in rows}


def has_constraint(conn: psycopg.Connection, name: str) -> bool:
    return conn.execute("select count(*) as n from pg_constraint where conname = %s", (name,)).fetchone()["n"] > 0


def insert(conn: psycopg.Connection, table: str, key: str = "id", **row: object) -> dict | None:
    """The new row's id, with the columns this version of the schema has; None without the table."""
    present = columns(conn, table)
    if not present:
        return None
    row = {name: value for name, value in row.items() if name in present}
    statement = sql.SQL("insert into {} ({}) values ({}) returning {}").format(
        sql.Identifier("public", table),
        sql.SQL(", ").join(map(sql.Identifier, row)),
        sql.SQL(", ").join(sql.Placeholder() * len(row)),
        sql.Identifier(key),
    )
    return conn.execute(statement, list(row.values())).fetchone()


def seed(conn: psycopg.Connection) -> dict[str, uuid.UUID]:
    """What a live project can hold at this version of the schema, as its owner wrote it."""
    organization, coordinator, mentor_user = uuid.uuid4(), uuid.uuid4(), uuid.uuid4()
    for user in (coordinator, mentor_user):
        conn.execute("insert into auth.users (id) values (%s)", (user,))
    conn.execute("insert into public.organization_coordinators values (%s, %s)", (organization, coordinator))
    mentors = {
        "active expired": ("active", EXPIRED, None),
        "active valid": ("active", VALID, mentor_user),
        "active untracked": ("active", None, None),
        "paused": ("paused", EXPIRED, None),
        "inactive": ("inactive", EXPIRED, None),
    }
    if not has_constraint(conn, "peer_mentors_certification_expiry_date_readable"):
        # Dates PostgreSQL holds and the job cannot read, allowed until then.
        mentors |= {"active -infinity": ("active", "-infinity", None), "active infinity": ("active", "infinity", None)}
    ids = {}
    for label, (status, expiry, user) in mentors.items():
        row = insert(
            conn,
            "peer_mentors",
            organization_id=organization,
            user_id=user,
            full_name=label,
            status=status,
            certification_expiry_date=expiry,
            status_version=1 if status != "active" else 0,
        )
        assert row is not None
        ids[label] = row["id"]
    pause = insert(
        conn,
        "mentor_status_history",
        mentor_id=ids["paused"],
        old_status="active",
        new_status="paused",
        reason="certification_expired",
        status_version=1,
    )
    # A history row under the job's prefix that no run can have made, as a mentor
    # could write one before the prefix was reserved to the job.
    insert(
        conn,
        "mentor_status_history",
        mentor_id=ids["inactive"],
        old_status="active",
        new_status="inactive",
        request_id="certification_expiry:not-a-uuid:x",
    )
    ledger_is_strict = has_constraint(conn, "certification_expiry_runs_counts_check")
    now = conn.execute("select now() as now").fetchone()["now"]
    runs = {
        "succeeded": dict(status="succeeded", finished_at=now, candidate_count=1, paused_count=1),
        "partial": dict(status="partial", finished_at=now, candidate_count=3, paused_count=1, error_count=2),
        "failed": dict(status="failed", finished_at=now, candidate_count=0),
        "running, lease expired": dict(status="running", finished_at=None, lease_expires_at=now - timedelta(hours=1)),
    }
    if not ledger_is_strict:
        # Counts the ledger later refuses: more outcomes than candidates, a negative one.
        runs["impossible counts"] = dict(status="succeeded", finished_at=now, candidate_count=1, paused_count=4)
        runs["negative count"] = dict(status="failed", finished_at=now, candidate_count=-1)
    for label, values in runs.items():
        row = insert(
            conn,
            "certification_expiry_runs",
            **{"id": uuid.uuid4(), "trigger": "scheduled", "lease_expires_at": now, **values},
        )
        if row is not None:
            ids[f"run {label}"] = row["id"]
    if pause is not None and "run succeeded" in ids:
        insert(
            conn,
            "certification_expiry_audit",
            key="history_id",
            job_run_id=ids["run succeeded"],
            mentor_id=ids["paused"],
            certification_expiry_date=EXPIRED,
            old_status="active",
            new_status="paused",
            history_id=pause["id"],
        )
    insert(
        conn,
        "certification_renewals",
        mentor_id=ids["active valid"],
        old_expiry_date=EXPIRED,
        new_expiry_date=VALID,
        actor_id=coordinator,
        status="active",
        status_version=1,
    )
    return ids


def apply(conn: psycopg.Connection, migrations: list) -> None:
    for path in migrations:
        with conn.transaction():
            conn.execute(path.read_text())


@pytest.fixture
def blank(database) -> Iterator[psycopg.Connection]:
    """A database of its own in the session's cluster, with only what Supabase has before any migration."""
    name = f"upgrade_{uuid.uuid4().hex[:12]}"
    with psycopg.connect(database.dsn, autocommit=True) as admin:
        admin.execute(sql.SQL("create database {}").format(sql.Identifier(name)))
        try:
            with psycopg.connect(
                database.dsn.rsplit("/", 1)[0] + f"/{name}", autocommit=True, row_factory=dict_row
            ) as conn:
                conn.execute(BOOTSTRAP_SQL.read_text())
                yield conn
        finally:
            admin.execute(sql.SQL("drop database {} with (force)").format(sql.Identifier(name)))


@pytest.mark.parametrize("first_new", range(1, len(MIGRATIONS)), ids=lambda k: MIGRATIONS[k].stem)
def test_each_migration_and_every_later_one_apply_to_a_database_holding_data(blank, first_new):
    apply(blank, MIGRATIONS[:first_new])
    seeded = seed(blank)

    apply(blank, MIGRATIONS[first_new:])

    mentors = {row["full_name"]: row for row in blank.execute("select * from public.peer_mentors").fetchall()}
    assert set(mentors) == {label for label in seeded if not label.startswith("run ")}
    expired = {
        row["full_name"]
        for row in blank.execute(
            "select m.full_name from public.expired_active_mentors e join public.peer_mentors m using (id)"
        ).fetchall()
    }
    listed = {
        row["full_name"]
        for row in blank.execute(
            "select m.full_name from public.listed_peer_mentors l join public.peer_mentors m using (id)"
        ).fetchall()
    }
    assert expired == {"active expired"} | ({"active -infinity"} & set(mentors))
    assert listed == {"active valid", "active untracked"} | ({"active infinity"} & set(mentors))
    blank.execute("select * from public.certification_expiry_pauses").fetchall()
    blank.execute("select * from public.certifications_expiring_soon").fetchall()
    status = blank.execute("select public.certification_compliance_status() as s").fetchone()["s"]
    assert status["expired_active_count"] == len(expired)
    runs = blank.execute("select count(*) as n from public.certification_expiry_runs").fetchone()["n"]
    assert runs == len([label for label in seeded if label.startswith("run ")])
    invalid = blank.execute("select conname from pg_constraint where not convalidated").fetchall()
    assert invalid == []
