"""Which mentors count as expired: decided by the database clock, in Oslo's calendar."""

from __future__ import annotations

import uuid
from datetime import date

import psycopg
import pytest
from psycopg.rows import dict_row

from tests.builders import create_mentor


def listed(conn: psycopg.Connection, mentor_ids: list[uuid.UUID]) -> set[uuid.UUID]:
    rows = conn.execute("select id from public.expired_active_mentors where id = any(%s)", (mentor_ids,)).fetchall()
    return {row["id"] for row in rows}


def on_the_listing(conn: psycopg.Connection, mentor_ids: list[uuid.UUID]) -> set[uuid.UUID]:
    rows = conn.execute("select id from public.listed_peer_mentors where id = any(%s)", (mentor_ids,)).fetchall()
    return {row["id"] for row in rows}


def test_expiry_boundary_on_the_real_clock(tx, organization_id):
    today = tx.execute("select (now() at time zone 'Europe/Oslo')::date as today").fetchone()["today"]
    yesterday = today.fromordinal(today.toordinal() - 1)
    expired = create_mentor(tx, organization_id, expiry=yesterday)
    expires_today = create_mentor(tx, organization_id, expiry=today)
    untracked = create_mentor(tx, organization_id, expiry=None)
    paused = create_mentor(tx, organization_id, status="paused", expiry=yesterday)
    inactive = create_mentor(tx, organization_id, status="inactive", expiry=date(2000, 1, 1))

    assert listed(tx, [expired, expires_today, untracked, paused, inactive]) == {expired}
    # The listing: active, and valid through today or not tracked; never the expired one.
    paused_valid = create_mentor(tx, organization_id, status="paused", expiry=today)
    inactive_untracked = create_mentor(tx, organization_id, status="inactive", expiry=None)
    everyone = [expired, expires_today, untracked, paused, inactive, paused_valid, inactive_untracked]
    assert on_the_listing(tx, everyone) == {expires_today, untracked}


def test_the_callers_session_time_zone_changes_nothing(tx, organization_id):
    today = tx.execute("select (now() at time zone 'Europe/Oslo')::date as today").fetchone()["today"]
    expires_today = create_mentor(tx, organization_id, expiry=today)
    for zone in ("Pacific/Kiritimati", "Pacific/Pago_Pago", "UTC"):
        tx.execute(f"set local time zone '{zone}'")
        assert listed(tx, [expires_today]) == set()


@pytest.mark.parametrize(
    ("utc_instant", "oslo_today"),
    [
        # Winter, Oslo is UTC+1.
        ("2026-11-22 22:59:59", date(2026, 11, 22)),
        ("2026-11-22 23:00:00", date(2026, 11, 23)),
        # Summer, Oslo is UTC+2: a UTC date alone would be a day behind here.
        ("2026-06-30 21:59:59", date(2026, 6, 30)),
        ("2026-06-30 22:00:00", date(2026, 7, 1)),
    ],
)
def test_expiry_flips_at_midnight_in_oslo(clock_database, clock_file, utc_instant, oslo_today):
    with psycopg.connect(clock_database.dsn, row_factory=dict_row, autocommit=True) as conn:
        organization_id = uuid.uuid4()
        day_before = oslo_today.fromordinal(oslo_today.toordinal() - 1)
        expired_yesterday = create_mentor(conn, organization_id, expiry=day_before)
        expires_today = create_mentor(conn, organization_id, expiry=oslo_today)
        untracked = create_mentor(conn, organization_id, expiry=None)
        mentors = [expired_yesterday, expires_today, untracked]

        clock_file.write_text(utc_instant)  # a frozen clock at exactly that instant
        assert conn.execute("select now()::text as now").fetchone()["now"].startswith(utc_instant)
        assert listed(conn, mentors) == {expired_yesterday}
        # The job never ran on this cluster: the listing alone drops the mentor at midnight.
        assert on_the_listing(conn, mentors) == {expires_today, untracked}


@pytest.mark.parametrize("day", ["-infinity", "infinity", "0044-03-15 BC", "10000-01-01"])
def test_an_expiry_date_the_job_cannot_read_is_refused_where_it_enters(tx, organization_id, day):
    with pytest.raises(psycopg.errors.CheckViolation), tx.transaction():
        create_mentor(tx, organization_id, expiry=day)


@pytest.mark.parametrize("day", [date(1, 1, 1), date(9999, 12, 31)])
def test_every_date_python_can_hold_is_accepted(tx, organization_id, day):
    create_mentor(tx, organization_id, expiry=day)
