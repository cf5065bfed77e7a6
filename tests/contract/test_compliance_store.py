"""The compliance port (ComplianceStore): the same answer from the fake and from the real store.

Two schedules bracket any time of day: one whose run is due from midnight (tonight is
judged), one whose grace runs past the next midnight (last night is judged all day). The boundary itself, by the
database's clock, is in tests/database/test_compliance_status.py.
"""

from __future__ import annotations

import uuid
from datetime import time, timedelta

from certification_expiry.bodies import JobSummary
from certification_expiry.config import NightlySchedule
from certification_expiry.records import RunStatus, Trigger

TONIGHT_DUE = NightlySchedule(time(0, 0), grace_minutes=0)
NOT_YET_DUE = NightlySchedule(time(23, 59), grace_minutes=24 * 60 - 1)


def run(world, status=RunStatus.SUCCEEDED, dry_run=False, organization_ids=None) -> uuid.UUID:
    run_id = uuid.uuid4()
    world.store.start_run(run_id, Trigger.SCHEDULED, dry_run, 600, None, organization_ids, 0)
    world.store.finish_run(JobSummary(job_run_id=run_id, status=status, dry_run=dry_run))
    return run_id


def test_expired_active_mentors_are_counted_and_the_overdue_ones_sampled(world):
    today = world.today
    due = [world.add_mentor(today - timedelta(days=1 + n % 7)) for n in range(25)]
    world.add_mentor(today)
    world.add_mentor(today - timedelta(days=1), status="paused")

    status = world.store.compliance_status(TONIGHT_DUE)

    assert (status.night, status.expired_active_count, status.overdue_count) == (today, len(due), len(due))
    assert status.hidden_active_count == len(due)
    first = [c.id for c in world.store.expired_active_mentors(None, 20, None)]
    assert status.sample_mentor_ids == first


def test_before_the_run_is_due_last_midnights_expiries_are_backlog_not_overdue(world):
    today = world.today
    backlog = {world.add_mentor(today - timedelta(days=1)) for _ in range(3)}
    overdue = world.add_mentor(today - timedelta(days=2))
    status = world.store.compliance_status(NOT_YET_DUE)
    assert status.night == today - timedelta(days=1)
    assert (status.expired_active_count, status.overdue_count, status.hidden_active_count) == (4, 1, 4)
    assert status.sample_mentor_ids == [overdue]
    assert world.store.compliance_status(TONIGHT_DUE).overdue_count == len(backlog) + 1


def test_nothing_due_and_no_run_is_no_recent_success(world):
    status = world.store.compliance_status(TONIGHT_DUE)
    assert (status.expired_active_count, status.sample_mentor_ids, status.hidden_active_count) == (0, [], 0)
    assert (status.recent_success, status.last_success_at) == (False, None)


def test_only_a_full_successful_run_counts(world):
    run(world, dry_run=True)
    run(world, organization_ids=[uuid.uuid4()])
    run(world, status=RunStatus.PARTIAL)
    run(world, status=RunStatus.FAILED)
    assert not world.store.compliance_status(TONIGHT_DUE).recent_success

    run(world)
    status = world.store.compliance_status(TONIGHT_DUE)
    assert status.recent_success
    assert status.last_success_at is not None


def test_a_success_before_the_midnight_that_began_the_night_does_not_keep_it(world):
    old = run(world)
    world.age_run(old, hours=49)  # before yesterday's midnight, whatever the time of day
    assert not world.store.compliance_status(NOT_YET_DUE).recent_success
    assert not world.store.compliance_status(TONIGHT_DUE).recent_success
    assert world.store.compliance_status(TONIGHT_DUE).last_success_at is not None
    recent = run(world)
    assert world.store.compliance_status(TONIGHT_DUE).recent_success
    world.age_run(recent, hours=24)  # yesterday: keeps last night, not tonight
    assert world.store.compliance_status(NOT_YET_DUE).recent_success
    assert not world.store.compliance_status(TONIGHT_DUE).recent_success
