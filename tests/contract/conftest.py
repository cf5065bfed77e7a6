"""One world per store: the in-memory fake, and the real store on the local stack.

Each contract test arranges its data through `world`, calls the port, and
looks at the outcome through `world` again, so the same test holds both stores
to the same behaviour (procrastinate's habit with its in-memory connector).
"""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from datetime import date, timedelta
from typing import Protocol

import psycopg
import pytest
from psycopg.rows import dict_row
from supabase import create_client

from certification_expiry.records import AuditRow
from certification_expiry.supabase_store import SupabaseMentorStore
from local_supabase.ephemeral import Stack
from local_supabase.postgres import empty_the_tables
from tests.builders import SERVICE_ROLE, create_coordinator, create_mentor, create_user, record_renewal
from tests.fakes import NEGATIVE_INFINITY, FakeMentor, FakeStore

READABLE_DATES = "peer_mentors_certification_expiry_date_readable"


class World(Protocol):
    store: FakeStore | SupabaseMentorStore
    today: date

    def add_mentor(
        self, expiry: date | None, status: str = "active", organization_id: uuid.UUID | None = None
    ) -> uuid.UUID: ...

    def add_coordinator(self, *organization_ids: uuid.UUID) -> uuid.UUID: ...

    def add_unreadable_mentor(self) -> uuid.UUID:
        """An active mentor whose expiry date is '-infinity', which PostgreSQL holds and
        Python's date cannot: as rows from before the readable_expiry_dates migration."""

    def renew(self, mentor_id: uuid.UUID, new_expiry_date: date) -> None:
        """A coordinator's record_certification_renewal, without reactivation."""

    def status_of(self, mentor_id: uuid.UUID) -> tuple[str, int]:
        """The mentor's status and status_version."""

    def audit(self) -> list[AuditRow]: ...

    def run_status(self, run_id: uuid.UUID) -> str: ...

    def age_run(self, run_id: uuid.UUID, hours: float) -> None:
        """Move the run's start, lease and finish this many hours into the past."""


class FakeWorld:
    def __init__(self) -> None:
        self.store = FakeStore()
        self.today = self.store.today

    def add_mentor(
        self, expiry: date | None, status: str = "active", organization_id: uuid.UUID | None = None
    ) -> uuid.UUID:
        mentor = FakeMentor(uuid.uuid4(), status=status, expiry=expiry, organization_id=organization_id or uuid.uuid4())
        self.store.mentors[mentor.id] = mentor
        return mentor.id

    def add_unreadable_mentor(self) -> uuid.UUID:
        mentor = FakeMentor(uuid.uuid4(), expiry=NEGATIVE_INFINITY)
        self.store.mentors[mentor.id] = mentor
        return mentor.id

    def add_coordinator(self, *organization_ids: uuid.UUID) -> uuid.UUID:
        user_id = uuid.uuid4()
        self.store.coordinators[user_id] = set(organization_ids)
        return user_id

    def renew(self, mentor_id: uuid.UUID, new_expiry_date: date) -> None:
        mentor = self.store.mentors[mentor_id]
        mentor.expiry, mentor.version = new_expiry_date, mentor.version + 1

    def status_of(self, mentor_id: uuid.UUID) -> tuple[str, int]:
        mentor = self.store.mentors[mentor_id]
        return mentor.status, mentor.version

    def audit(self) -> list[AuditRow]:
        return sorted(self.store.audit.values(), key=lambda row: row.history_id)

    def run_status(self, run_id: uuid.UUID) -> str:
        return self.store.runs[run_id].status

    def age_run(self, run_id: uuid.UUID, hours: float) -> None:
        run, shift = self.store.runs[run_id], timedelta(hours=hours)
        run.started_at -= shift
        run.lease_expires_at -= shift
        if run.finished_at is not None:
            run.finished_at -= shift


class SupabaseWorld:
    """The real store through supabase-py and the gateway; data arranged with SQL."""

    def __init__(self, stack: Stack, conn: psycopg.Connection) -> None:
        self.store = SupabaseMentorStore(lambda: create_client(stack.url, stack.secret_key))
        self.conn = conn
        self.today = conn.execute("select public.certification_today() as today").fetchone()["today"]

    def add_mentor(
        self, expiry: date | None, status: str = "active", organization_id: uuid.UUID | None = None
    ) -> uuid.UUID:
        return create_mentor(self.conn, organization_id or uuid.uuid4(), status, expiry)

    def add_unreadable_mentor(self) -> uuid.UUID:
        # The constraint that now refuses such dates is lifted for this one row and put
        # back NOT VALID; the fixture validates it again once the tables are empty.
        (definition,) = (
            self.conn.execute(
                "select pg_get_constraintdef(oid) from pg_constraint where conname = %s", (READABLE_DATES,)
            )
            .fetchone()
            .values()
        )
        self.conn.execute(f"alter table public.peer_mentors drop constraint {READABLE_DATES}")
        try:
            return create_mentor(self.conn, uuid.uuid4(), "active", "-infinity")
        finally:
            self.conn.execute(f"alter table public.peer_mentors add constraint {READABLE_DATES} {definition} not valid")

    def add_coordinator(self, *organization_ids: uuid.UUID) -> uuid.UUID:
        user_id = create_user(self.conn)
        for organization_id in organization_ids:
            create_coordinator(self.conn, organization_id, user_id)
        return user_id

    def renew(self, mentor_id: uuid.UUID, new_expiry_date: date) -> None:
        record_renewal(self.conn, SERVICE_ROLE, p_mentor_id=mentor_id, p_new_expiry_date=new_expiry_date)

    def status_of(self, mentor_id: uuid.UUID) -> tuple[str, int]:
        row = self.conn.execute(
            "select status, status_version from public.peer_mentors where id = %s", (mentor_id,)
        ).fetchone()
        return row["status"], row["status_version"]

    def audit(self) -> list[AuditRow]:
        rows = self.conn.execute("select * from public.certification_expiry_audit order by history_id").fetchall()
        return [AuditRow.model_validate(row) for row in rows]

    def run_status(self, run_id: uuid.UUID) -> str:
        return self.conn.execute(
            "select status from public.certification_expiry_runs where id = %s", (run_id,)
        ).fetchone()["status"]

    def age_run(self, run_id: uuid.UUID, hours: float) -> None:
        self.conn.execute(
            "update public.certification_expiry_runs"
            " set started_at = started_at - make_interval(secs => %(s)s),"
            "     lease_expires_at = lease_expires_at - make_interval(secs => %(s)s),"
            "     finished_at = finished_at - make_interval(secs => %(s)s)"
            " where id = %(id)s",
            {"s": hours * 3600, "id": run_id},
        )


@pytest.fixture(params=["fake", "supabase"])
def world(request: pytest.FixtureRequest) -> Iterator[World]:
    if request.param == "fake":
        yield FakeWorld()
        return
    stack: Stack = request.getfixturevalue("stack")
    with psycopg.connect(stack.database.dsn, autocommit=True, row_factory=dict_row) as conn:
        empty_the_tables(conn)
        yield SupabaseWorld(stack, conn)
        empty_the_tables(conn)
        conn.execute(f"alter table public.peer_mentors validate constraint {READABLE_DATES}")
