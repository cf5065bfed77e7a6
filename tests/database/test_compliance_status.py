"""certification_compliance_status: what the compliance check sees, by the database's clock.

The night being judged is today's once its run is due (NIGHTLY_RUN_AT plus
COMPLIANCE_GRACE_MINUTES, in Oslo), yesterday's before. At the boundary, on a
cluster whose clock stands still where each test puts it: a night with no
successful full run is a breach from the moment it is due, and a normal night never
is, on winter and summer nights and on the two nights the clocks change.
"""

from __future__ import annotations

import uuid
from datetime import UTC, date, datetime, timedelta
from zoneinfo import ZoneInfo

import psycopg
import pytest
from psycopg.rows import dict_row

from certification_expiry.config import Settings
from tests.builders import SERVICE_ROLE, acting_as, add_finished_run, create_mentor

OSLO = ZoneInfo("Europe/Oslo")
RUN_AT = Settings.model_fields["nightly_run_at"].default
GRACE = timedelta(minutes=Settings.model_fields["compliance_grace_minutes"].default)
# Due by the wall clock in Oslo, as the database reckons it: 45 minutes after the run
# on the night clocks go forward, 2 h 45 min on the night they go back.
DUE_AT = (datetime.combine(date.min, RUN_AT) + GRACE).time()


def status(tx) -> dict:
    with acting_as(tx, SERVICE_ROLE):
        return tx.execute(
            "select public.certification_compliance_status(%s, %s) as s", (RUN_AT, GRACE.seconds // 60)
        ).fetchone()["s"]


def test_no_run_ever_is_no_recent_success(tx):
    result = status(tx)
    assert result["last_success_at"] is None
    assert result["recent_success"] is False


def test_a_success_before_the_night_began_does_not_keep_it(tx):
    add_finished_run(tx, datetime.now(UTC) - timedelta(hours=60))
    assert status(tx)["recent_success"] is False
    add_finished_run(tx, datetime.now(UTC) - timedelta(minutes=1))
    assert status(tx)["recent_success"] is True


@pytest.mark.parametrize("kind", [{"status": "failed"}, {"status": "partial"}, {"dry_run": True}, {"scoped": True}])
def test_failed_partial_dry_and_coordinator_runs_do_not_count(tx, kind):
    add_finished_run(tx, datetime.now(UTC) - timedelta(minutes=1), **kind)
    assert status(tx)["recent_success"] is False


def test_overdue_mentors_are_counted_with_up_to_twenty_ids(tx, organization_id):
    before = status(tx)["overdue_count"]
    # The earliest expiry there is, so the samples (oldest first) are all these.
    ids = {str(create_mentor(tx, organization_id, expiry=date(1970, 1, 1))) for _ in range(25)}
    result = status(tx)
    assert result["overdue_count"] == before + 25
    assert result["expired_active_count"] >= result["overdue_count"]
    # Every expired active mentor, counted from the other side: active, and hidden by the listing.
    assert result["hidden_active_count"] == result["expired_active_count"]
    assert len(result["sample_mentor_ids"]) == 20
    assert set(result["sample_mentor_ids"]) <= ids


def test_only_the_service_role_may_call_it(tx):
    with pytest.raises(psycopg.errors.InsufficientPrivilege), acting_as(tx, {"role": "authenticated"}):
        tx.execute("select public.certification_compliance_status()")


# --- the boundary, on a clock that stands still ------------------------------------------


def oslo(day: date, at) -> datetime:
    return datetime.combine(day, at, OSLO).astimezone(UTC)


NIGHTS = [
    date(2026, 11, 23),  # winter: Oslo is UTC+1
    date(2026, 7, 1),  # summer: UTC+2
    date(2027, 3, 28),  # clocks go forward from 02:00 to 03:00
    date(2026, 10, 25),  # clocks go back from 03:00 to 02:00
]


def set_clock(conn: psycopg.Connection, clock_file, instant: datetime) -> None:
    clock_file.write_text(instant.strftime("%Y-%m-%d %H:%M:%S"))
    assert conn.execute("select now() as now").fetchone()["now"] == instant


@pytest.mark.parametrize("night", NIGHTS, ids=str)
def test_a_night_without_a_successful_run_is_a_breach_from_when_it_is_due(clock_database, clock_file, night):
    due = oslo(night, DUE_AT)
    assert timedelta(0) < due - oslo(night, RUN_AT) <= timedelta(hours=3)
    with psycopg.connect(clock_database.dsn, row_factory=dict_row, autocommit=True) as conn:
        conn.execute("delete from public.certification_expiry_runs")
        conn.execute("delete from public.peer_mentors")
        add_finished_run(conn, oslo(night - timedelta(days=1), RUN_AT) + timedelta(minutes=5))  # last night's run
        # Expired at the midnight that began this night: tonight's run's to pause.
        backlog = create_mentor(conn, uuid.uuid4(), expiry=night - timedelta(days=1))

        set_clock(conn, clock_file, due - timedelta(seconds=1))
        before = status(conn)
        set_clock(conn, clock_file, due)
        after = status(conn)

    assert (before["night"], before["recent_success"], before["overdue_count"]) == (
        str(night - timedelta(days=1)),
        True,
        0,
    )
    assert before["hidden_active_count"] == 1  # the backlog, hidden by the listing
    assert (after["night"], after["recent_success"], after["overdue_count"]) == (str(night), False, 1)
    assert after["sample_mentor_ids"] == [str(backlog)]


@pytest.mark.parametrize("night", NIGHTS, ids=str)
def test_a_normal_night_is_never_a_breach(clock_database, clock_file, night):
    with psycopg.connect(clock_database.dsn, row_factory=dict_row, autocommit=True) as conn:
        conn.execute("delete from public.certification_expiry_runs")
        conn.execute("delete from public.peer_mentors")
        for day in (night - timedelta(days=1), night):
            add_finished_run(conn, oslo(day, RUN_AT) + timedelta(minutes=5))
        answers = []
        # Hourly from the last midnight to the next, and at the instant the night is due.
        checks = [oslo(night, datetime.min.time()) + timedelta(hours=h, minutes=5) for h in range(24)]
        for instant in [*checks, oslo(night, DUE_AT)]:
            if instant < oslo(night, RUN_AT) + timedelta(minutes=5):
                continue  # before tonight's run finished: judged by last night, kept too
            set_clock(conn, clock_file, instant)
            answers.append(status(conn)["recent_success"])
    assert answers
    assert all(answers)
