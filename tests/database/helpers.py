"""Calling the RPC as PostgREST does, and making test data, inside a test's transaction."""

from __future__ import annotations

import contextlib
import uuid
from collections.abc import Iterator
from datetime import date
from typing import Any

import psycopg

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
        row = conn.execute(f"select public.{rpc}({args}) as result", params).fetchone()
    return row["result"]


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
) -> uuid.UUID:
    return conn.execute(
        "insert into public.peer_mentors (organization_id, user_id, full_name, status, certification_expiry_date)"
        " values (%s, %s, 'Test Mentor', %s, %s) returning id",
        (organization_id, user_id, status, expiry),
    ).fetchone()["id"]


def history_of(conn: psycopg.Connection, mentor_id: uuid.UUID) -> list[dict[str, Any]]:
    return conn.execute(
        "select * from public.mentor_status_history where mentor_id = %s order by id", (mentor_id,)
    ).fetchall()
