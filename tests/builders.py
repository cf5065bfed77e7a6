"""Making test data, and calling the RPCs as PostgREST does: the builders every tier shares.

The database tier calls them inside its rolled-back transaction; the others on
an autocommit connection, so that the gateway sees what they wrote."""

from __future__ import annotations

import contextlib
import uuid
from collections.abc import Iterator
from datetime import date, datetime, timedelta
from typing import Any

import psycopg
from psycopg.rows import tuple_row

from local_supabase.request_context import REQUEST_CONTEXT_SQL, request_context_params

SERVICE_ROLE = {"role": "service_role"}


def user_claims(user_id: uuid.UUID) -> dict[str, Any]:
    return {"role": "authenticated", "sub": str(user_id)}


@contextlib.contextmanager
def acting_as(conn: psycopg.Connection, claims: dict[str, Any]) -> Iterator[psycopg.Connection]:
    """Run the block as PostgREST runs a request with these JWT claims.

    The block is a savepoint, so an error leaves the test's transaction usable; the
    role is dropped afterwards so the test's own checks run as the owner again.
    """
    try:
        with conn.transaction():
            conn.execute(REQUEST_CONTEXT_SQL, request_context_params(claims["role"], claims))
            yield conn
    finally:
        conn.execute("reset role")


def call_rpc(
    conn: psycopg.Connection, claims: dict[str, Any], rpc: str = "update_mentor_status", **params: Any
) -> dict[str, Any]:
    """Call an RPC (update_mentor_status unless told) with named arguments, as the given caller."""
    args = ", ".join(f"{name} => %({name})s" for name in params)
    with acting_as(conn, claims):
        return value_of(conn, f"select public.{rpc}({args})", params)


def value_of(conn: psycopg.Connection, query: str, params: Any) -> Any:
    """The one value the statement returns, whatever rows the connection makes
    (the database tier's are dicts, the other tiers' tuples)."""
    with conn.cursor(row_factory=tuple_row) as cursor:
        (value,) = cursor.execute(query, params).fetchone()
    return value


def days_from_today(days: int) -> date:
    return date.today() + timedelta(days=days)


def record_renewal(conn: psycopg.Connection, claims: dict[str, Any], **params: Any) -> dict[str, Any]:
    """Call record_certification_renewal with named arguments, as the given caller."""
    return call_rpc(conn, claims, "record_certification_renewal", **params)


def create_user(conn: psycopg.Connection) -> uuid.UUID:
    user_id = uuid.uuid4()
    conn.execute("insert into auth.users (id, email) values (%s, %s)", (user_id, f"{user_id}@example.org"))
    return user_id


def create_coordinator(
    conn: psycopg.Connection, organization_id: uuid.UUID, user_id: uuid.UUID | None = None
) -> uuid.UUID:
    """A coordinator of the organisation: a new user, or this one."""
    user_id = user_id or create_user(conn)
    conn.execute(
        "insert into public.organization_coordinators (organization_id, user_id) values (%s, %s)",
        (organization_id, user_id),
    )
    return user_id


def create_mentor(
    conn: psycopg.Connection,
    organization_id: uuid.UUID,
    status: str = "active",
    expiry: date | None = None,
    user_id: uuid.UUID | None = None,
    full_name: str = "Test Mentor",
) -> uuid.UUID:
    return value_of(
        conn,
        "insert into public.peer_mentors (organization_id, user_id, full_name, status, certification_expiry_date)"
        " values (%s, %s, %s, %s, %s) returning id",
        (organization_id, user_id, full_name, status, expiry),
    )


def history_of(conn: psycopg.Connection, mentor_id: uuid.UUID) -> list[dict[str, Any]]:
    return conn.execute(
        "select * from public.mentor_status_history where mentor_id = %s order by id", (mentor_id,)
    ).fetchall()


def make_mentors(
    autocommit_db: psycopg.Connection, count: int, status: str = "active", expired: bool = True
) -> list[str]:
    organization_id = uuid.uuid4()
    rows = autocommit_db.execute(
        "insert into public.peer_mentors (organization_id, full_name, status, certification_expiry_date)"
        " select %s, 'Mentor ' || n, %s, current_date - case when %s then 5 else -5 end"
        " from generate_series(1, %s) n returning id",
        (organization_id, status, expired, count),
    ).fetchall()
    return sorted(str(row[0]) for row in rows)


EXPIRED_ACTIVE = 2500


def seed_expired_and_untouchable(conn: psycopg.Connection, expired_active: int = EXPIRED_ACTIVE) -> set[str]:
    """Expired active mentors, and some of every kind the job must leave alone."""
    today = "(now() at time zone 'Europe/Oslo')::date"
    rows = conn.execute(
        "insert into public.peer_mentors (organization_id, full_name, status, certification_expiry_date)"
        f" select gen_random_uuid(), 'Expired ' || n, 'active', {today} - (1 + n %% 400)"
        " from generate_series(1, %s) n returning id",
        (expired_active,),
    ).fetchall()
    conn.execute(
        "insert into public.peer_mentors (organization_id, full_name, status, certification_expiry_date)"
        f" select gen_random_uuid(), kind, status, {today} + offset_days"
        " from (values ('today', 'active', 0), ('future', 'active', 30), ('none', 'active', null),"
        "             ('paused', 'paused', -10), ('inactive', 'inactive', -10)) as k(kind, status, offset_days),"
        " generate_series(1, 20)"
    )
    return {str(row[0]) for row in rows}


def paused_by_the_job(conn: psycopg.Connection) -> dict[str, int]:
    """mentor id -> number of history rows the job wrote for it."""
    rows = conn.execute(
        "select mentor_id::text, count(*) from public.mentor_status_history"
        " where request_id like 'certification_expiry:%%' group by mentor_id"
    ).fetchall()
    return dict(rows)


def add_mentors(conn: psycopg.Connection, organization_id: uuid.UUID, count: int, expired: bool = True) -> set[str]:
    rows = conn.execute(
        "insert into public.peer_mentors (organization_id, status, certification_expiry_date)"
        " select %s, 'active', current_date + case when %s then -5 else 30 end from generate_series(1, %s)"
        " returning id::text",
        (organization_id, expired, count),
    ).fetchall()
    return {row[0] for row in rows}


def start_run(
    conn: psycopg.Connection,
    run_id: uuid.UUID | None = None,
    *,
    dry_run: bool = False,
    lease_seconds: int = 600,
    actor_id: uuid.UUID | None = None,
    organization_ids: list[uuid.UUID] | None = None,
) -> uuid.UUID:
    """Start a run through the RPC, as the job does (the service role): a full run,
    or a coordinator's of these organisations."""
    run_id = run_id or uuid.uuid4()
    call_rpc(
        conn,
        SERVICE_ROLE,
        "start_certification_expiry_run",
        p_run_id=run_id,
        p_trigger="manual",
        p_dry_run=dry_run,
        p_lease_seconds=lease_seconds,
        p_actor_id=actor_id,
        p_organization_ids=organization_ids,
    )
    return run_id


def finish_run(conn: psycopg.Connection, run_id: uuid.UUID, status: str | None = "failed", *counts: int | None) -> None:
    """Finish the run through the RPC with these counts (candidates, paused, skipped, errors; none by default)."""
    candidates, paused, skipped, errors = counts or (0, 0, 0, 0)
    call_rpc(
        conn,
        SERVICE_ROLE,
        "finish_certification_expiry_run",
        p_run_id=run_id,
        p_status=status,
        p_candidate_count=candidates,
        p_paused_count=paused,
        p_skipped_count=skipped,
        p_error_count=errors,
    )


def add_finished_run(
    conn: psycopg.Connection,
    finished_at: datetime,
    status: str = "succeeded",
    dry_run: bool = False,
    scoped: bool = False,
) -> None:
    """A scheduled run that finished at this time, written as the owner (the RPCs
    take the database's clock): a full run, or one coordinator's organisation's."""
    conn.execute(
        "insert into public.certification_expiry_runs"
        " (id, trigger, dry_run, organization_ids, started_at, finished_at, status, lease_expires_at)"
        " values (%s, 'scheduled', %s, %s, %s - interval '1 minute', %s, %s, %s)",
        (uuid.uuid4(), dry_run, [uuid.uuid4()] if scoped else None, finished_at, finished_at, status, finished_at),
    )


def pause_as_the_job(conn: psycopg.Connection, run_id: uuid.UUID, mentor_id: uuid.UUID, expiry: date) -> int:
    """What a run of the job leaves for one mentor: the pause under the job's request
    id, and its audit row. Returns the history id."""
    transition = call_rpc(
        conn,
        SERVICE_ROLE,
        p_mentor_id=mentor_id,
        p_new_status="paused",
        p_reason="certification_expired",
        p_request_id=f"certification_expiry:{run_id}:{mentor_id}",
    )
    conn.execute(
        "insert into public.certification_expiry_audit"
        " (job_run_id, mentor_id, certification_expiry_date, old_status, new_status, history_id)"
        " values (%s, %s, %s, 'active', 'paused', %s)",
        (run_id, mentor_id, expiry, transition["history_id"]),
    )
    return int(transition["history_id"])
