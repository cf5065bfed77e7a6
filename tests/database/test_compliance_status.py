"""certification_compliance_status: what the compliance check sees, by the database's clock."""

from __future__ import annotations

import uuid
from datetime import date

import psycopg
import pytest

from .helpers import SERVICE_ROLE, acting_as, create_mentor


def status(db, window_hours: int = 26) -> dict:
    with acting_as(db, SERVICE_ROLE):
        return db.execute("select public.certification_compliance_status(%s) as s", (window_hours,)).fetchone()["s"]


def add_run(db, hours_ago: float, status_: str = "succeeded", dry_run: bool = False, scoped: bool = False) -> None:
    db.execute(
        "insert into public.certification_expiry_runs"
        " (id, trigger, dry_run, organization_ids, started_at, finished_at, status, lease_expires_at)"
        " values (%s, 'scheduled', %s, %s, now() - make_interval(secs => %s * 3600 + 60),"
        "         now() - make_interval(secs => %s * 3600), %s, now())",
        (uuid.uuid4(), dry_run, [uuid.uuid4()] if scoped else None, hours_ago, hours_ago, status_),
    )


@pytest.fixture(autouse=True)
def empty_runs(db):
    # Runs of other tests are in the shared database: start each test from none.
    db.execute("delete from public.certification_expiry_runs")


def test_no_run_ever_is_no_recent_success(db):
    result = status(db)
    assert result["last_success_at"] is None
    assert result["recent_success"] is False


def test_a_success_inside_the_window_counts_and_one_outside_does_not(db):
    add_run(db, hours_ago=30)
    assert status(db)["recent_success"] is False
    add_run(db, hours_ago=2)
    result = status(db)
    assert result["recent_success"] is True
    assert status(db, window_hours=1)["recent_success"] is False


@pytest.mark.parametrize("kind", [{"status_": "failed"}, {"status_": "partial"}, {"dry_run": True}, {"scoped": True}])
def test_failed_partial_dry_and_coordinator_runs_do_not_count(db, kind):
    add_run(db, hours_ago=1, **kind)
    assert status(db)["recent_success"] is False


def test_expired_active_mentors_are_counted_with_up_to_twenty_ids(db, organization_id):
    before = status(db)["expired_active_count"]
    # The earliest expiry there is, so the samples (oldest first) are all these.
    ids = {str(create_mentor(db, organization_id, expiry=date(1970, 1, 1))) for _ in range(25)}
    result = status(db)
    assert result["expired_active_count"] == before + 25
    # The same mentors, counted from the other side: active, and hidden by the listing.
    assert result["hidden_active_count"] == result["expired_active_count"]
    assert len(result["sample_mentor_ids"]) == 20
    assert set(result["sample_mentor_ids"]) <= ids


def test_only_the_service_role_may_call_it(db):
    with pytest.raises(psycopg.errors.InsufficientPrivilege), acting_as(db, {"role": "authenticated"}):
        db.execute("select public.certification_compliance_status(26)")
