"""The compliance port (ComplianceStore): the same answer from the fake and from the real store."""

from __future__ import annotations

import uuid
from datetime import timedelta

from certification_expiry.models import JobSummary, RunStatus, Trigger

WINDOW_HOURS = 26


def run(world, status=RunStatus.SUCCEEDED, dry_run=False, organization_ids=None) -> uuid.UUID:
    run_id = uuid.uuid4()
    world.store.start_run(run_id, Trigger.SCHEDULED, dry_run, 600, None, organization_ids, 0)
    world.store.finish_run(JobSummary(job_run_id=run_id, status=status, dry_run=dry_run))
    return run_id


def test_expired_active_mentors_are_counted_and_the_first_ones_sampled(world):
    today = world.today
    due = [world.add_mentor(today - timedelta(days=1 + n % 7)) for n in range(25)]
    world.add_mentor(today)
    world.add_mentor(today - timedelta(days=1), status="paused")

    status = world.store.compliance_status(WINDOW_HOURS)

    assert status.expired_active_count == len(due)
    assert status.hidden_active_count == len(due)
    first = [c.id for c in world.store.expired_active_mentors(None, 20, None)]
    assert status.sample_mentor_ids == first


def test_nothing_due_and_no_run_is_no_recent_success(world):
    status = world.store.compliance_status(WINDOW_HOURS)
    assert (status.expired_active_count, status.sample_mentor_ids, status.hidden_active_count) == (0, [], 0)
    assert (status.recent_success, status.last_success_at) == (False, None)


def test_only_a_full_successful_run_counts(world):
    run(world, dry_run=True)
    run(world, organization_ids=[uuid.uuid4()])
    run(world, status=RunStatus.PARTIAL)
    run(world, status=RunStatus.FAILED)
    assert not world.store.compliance_status(WINDOW_HOURS).recent_success

    run(world)
    status = world.store.compliance_status(WINDOW_HOURS)
    assert status.recent_success
    assert status.last_success_at is not None


def test_a_success_older_than_the_window_is_not_recent(world):
    old = run(world)
    world.age_run(old, hours=WINDOW_HOURS + 1)
    status = world.store.compliance_status(WINDOW_HOURS)
    assert not status.recent_success
    assert status.last_success_at is not None
    assert world.store.compliance_status(WINDOW_HOURS + 2).recent_success
