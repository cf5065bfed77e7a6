"""The job's port (JobStore): the same behaviour from the fake and from the real store."""

from __future__ import annotations

import uuid
from datetime import timedelta

import pytest

from certification_expiry.bodies import JobSummary
from certification_expiry.ports import StoreError, StoreErrorKind
from certification_expiry.records import AuditRow, Candidate, RunStatus, Trigger, UnreadableCandidate
from certification_expiry.request_ids import request_id_for

LEASE_SECONDS = 600


def start(world, run_id: uuid.UUID | None = None, dry_run: bool = False, interval: int = 0, **scope) -> uuid.UUID:
    run_id = run_id or uuid.uuid4()
    world.store.start_run(
        run_id, Trigger.MANUAL, dry_run, LEASE_SECONDS, scope.get("actor_id"), scope.get("organization_ids"), interval
    )
    return run_id


def finish(world, run_id: uuid.UUID, status: RunStatus = RunStatus.SUCCEEDED, paused: int = 0) -> None:
    world.store.finish_run(
        JobSummary(job_run_id=run_id, status=status, dry_run=False, candidate_count=paused, paused_count=paused)
    )


def kind_of(call) -> StoreErrorKind:
    with pytest.raises(StoreError) as raised:
        call()
    return raised.value.kind


def test_candidates_are_the_expired_active_mentors_in_order_page_by_page(world):
    today = world.today
    due = [world.add_mentor(today - timedelta(days=days)) for days in (10, 5, 5, 1, 1, 1)]
    world.add_mentor(today)  # valid through today
    world.add_mentor(None)  # not tracked
    world.add_mentor(today - timedelta(days=3), status="paused")
    world.add_mentor(today - timedelta(days=3), status="inactive")

    seen: list[Candidate] = []
    for _ in range(len(due)):  # bounded: a store that repeats rows must fail, not loop
        page = world.store.expired_active_mentors(seen[-1].cursor if seen else None, 4, None)
        if not page:
            break
        assert len(page) <= 4
        seen += page
    assert sorted(c.id for c in seen) == sorted(due)
    assert [(c.certification_expiry_date, str(c.id)) for c in seen] == sorted(
        (c.certification_expiry_date, str(c.id)) for c in seen
    )
    assert world.store.count_expired_active(None) == len(due)


def test_a_row_the_job_cannot_read_comes_back_on_its_own_and_paging_goes_past_it(world):
    ordinary = [world.add_mentor(world.today - timedelta(days=days)) for days in (3, 2, 1)]
    unreadable = world.add_unreadable_mentor()
    first = world.store.expired_active_mentors(None, 2, None)
    assert isinstance(first[0], UnreadableCandidate)  # '-infinity' sorts before every date
    assert (first[0].id, first[0].cursor.certification_expiry_date) == (unreadable, "-infinity")
    assert isinstance(first[1], Candidate)
    rest = world.store.expired_active_mentors(first[-1].cursor, 2, None)
    assert [row.id for row in first[1:] + rest] == ordinary
    assert world.store.count_expired_active(None) == 4


def test_candidates_and_their_count_can_be_limited_to_organisations(world):
    ours, theirs = uuid.uuid4(), uuid.uuid4()
    yesterday = world.today - timedelta(days=1)
    mine = {world.add_mentor(yesterday, organization_id=ours) for _ in range(3)}
    world.add_mentor(yesterday, organization_id=theirs)
    page = world.store.expired_active_mentors(None, 10, [ours])
    assert {c.id for c in page} == mine
    assert {c.organization_id for c in page} == {ours}
    assert world.store.count_expired_active([ours]) == 3
    assert world.store.count_expired_active([uuid.uuid4()]) == 0


def test_a_pause_moves_the_mentor_once_and_its_request_id_replays_it(world):
    mentor_id = world.add_mentor(world.today - timedelta(days=2))
    candidate = world.store.current(mentor_id)
    assert candidate is not None
    assert candidate.status_version == 0
    request_id = request_id_for(uuid.uuid4(), mentor_id)

    first = world.store.pause(candidate, request_id, None)
    again = world.store.pause(candidate, request_id, None)

    assert (first.old_status, first.new_status, first.status_version, first.replayed) == ("active", "paused", 1, False)
    assert again.replayed
    assert (again.history_id, again.status_version) == (first.history_id, first.status_version)
    assert world.status_of(mentor_id) == ("paused", 1)
    assert world.store.current(mentor_id) is None


def test_a_stale_version_is_a_conflict_and_changes_nothing(world):
    mentor_id = world.add_mentor(world.today - timedelta(days=2))
    candidate = world.store.current(mentor_id)
    stale = candidate.model_copy(update={"status_version": candidate.status_version + 5})
    assert kind_of(lambda: world.store.pause(stale, request_id_for(uuid.uuid4(), mentor_id), None)) is (
        StoreErrorKind.CONFLICT
    )
    assert world.status_of(mentor_id) == ("active", 0)


def test_a_renewal_since_the_read_makes_the_pause_a_conflict_and_the_mentor_no_longer_due(world):
    mentor_id = world.add_mentor(world.today - timedelta(days=2))
    candidate = world.store.current(mentor_id)
    world.renew(mentor_id, world.today + timedelta(days=365))
    assert kind_of(lambda: world.store.pause(candidate, request_id_for(uuid.uuid4(), mentor_id), None)) is (
        StoreErrorKind.CONFLICT
    )
    assert world.store.current(mentor_id) is None
    assert world.status_of(mentor_id) == ("active", 1)


def test_a_mentor_no_longer_active_may_not_be_paused(world):
    mentor_id = world.add_mentor(world.today - timedelta(days=2), status="inactive")
    candidate = Candidate(
        id=mentor_id, organization_id=uuid.uuid4(), status_version=0, certification_expiry_date=world.today
    )
    assert world.store.current(mentor_id) is None
    assert kind_of(lambda: world.store.pause(candidate, request_id_for(uuid.uuid4(), mentor_id), None)) is (
        StoreErrorKind.NOT_ALLOWED
    )


def test_a_mentor_who_is_gone_is_not_found(world):
    ghost = Candidate(
        id=uuid.uuid4(), organization_id=uuid.uuid4(), status_version=0, certification_expiry_date=world.today
    )
    assert world.store.current(ghost.id) is None
    assert kind_of(lambda: world.store.pause(ghost, request_id_for(uuid.uuid4(), ghost.id), None)) is (
        StoreErrorKind.NOT_FOUND
    )


def test_one_run_holds_the_lease_until_it_finishes(world):
    first = start(world)
    start(world, first)  # the same run asking again: its answer was lost
    assert kind_of(lambda: start(world)) is StoreErrorKind.LEASE_HELD
    finish(world, first)
    second = start(world)
    assert (world.run_status(first), world.run_status(second)) == ("succeeded", "running")
    # A finished run's id is never started again.
    finish(world, second)
    assert kind_of(lambda: start(world, first)) is StoreErrorKind.PERMANENT


def test_a_coordinators_run_never_keeps_a_full_run_out_and_overlapping_ones_wait(world):
    ours, theirs, elsewhere = uuid.uuid4(), uuid.uuid4(), uuid.uuid4()
    coordinators = start(world, organization_ids=[ours, theirs])
    full = start(world)  # the scheduler's run gets through
    assert kind_of(lambda: start(world)) is StoreErrorKind.LEASE_HELD  # one full run at a time
    finish(world, full)
    assert kind_of(lambda: start(world, organization_ids=[theirs])) is StoreErrorKind.LEASE_HELD
    beside = start(world, organization_ids=[elsewhere])  # disjoint organisations work side by side
    assert (world.run_status(coordinators), world.run_status(beside)) == ("running", "running")
    finish(world, coordinators)
    finish(world, beside)
    start(world)
    assert kind_of(lambda: start(world, organization_ids=[elsewhere])) is StoreErrorKind.LEASE_HELD


def test_a_coordinators_runs_are_rate_limited_per_organisation_set_and_kind(world):
    ours, theirs = uuid.uuid4(), uuid.uuid4()
    finish(world, start(world, dry_run=True, interval=300, organization_ids=[ours, theirs]))
    with pytest.raises(StoreError) as raised:
        start(world, dry_run=True, interval=300, organization_ids=[theirs, ours])  # the same set, in any order
    assert raised.value.kind is StoreErrorKind.RATE_LIMITED
    assert 0 < raised.value.retry_after_seconds <= 300
    finish(world, start(world, dry_run=False, interval=300, organization_ids=[ours, theirs]))  # the real one at once
    finish(world, start(world, dry_run=True, interval=300, organization_ids=[ours]))  # another set
    assert kind_of(lambda: start(world, dry_run=False, interval=300, organization_ids=[ours, theirs])) is (
        StoreErrorKind.RATE_LIMITED
    )
    finish(world, start(world, dry_run=False, interval=0, organization_ids=[ours, theirs]))  # no limit at 0
    finish(world, start(world))  # full runs are never limited
    finish(world, start(world))


def test_a_lease_that_ran_out_frees_the_next_run(world):
    crashed = start(world)
    world.age_run(crashed, hours=1)
    start(world)
    assert world.run_status(crashed) == "failed"


def test_a_finish_is_answered_again_but_never_rewritten(world):
    run_id = start(world)
    finish(world, run_id, paused=3)
    finish(world, run_id, paused=3)  # a retry whose first answer was lost
    assert kind_of(lambda: finish(world, run_id, RunStatus.FAILED, paused=3)) is StoreErrorKind.CONFLICT
    assert world.run_status(run_id) == "succeeded"
    assert kind_of(lambda: finish(world, uuid.uuid4())) is StoreErrorKind.NOT_FOUND


def test_a_finish_whose_counts_do_not_add_up_is_refused(world):
    run_id = start(world)
    summary = JobSummary(job_run_id=run_id, status=RunStatus.SUCCEEDED, dry_run=False, candidate_count=1)
    summary.paused_count = summary.error_count = 1
    assert kind_of(lambda: world.store.finish_run(summary)) is StoreErrorKind.PERMANENT
    assert world.run_status(run_id) == "running"


def test_audit_rows_are_written_once_per_run_and_mentor_and_never_changed(world):
    run_id = start(world)
    mentor_id = world.add_mentor(world.today - timedelta(days=2))
    transition = world.store.pause(world.store.current(mentor_id), request_id_for(run_id, mentor_id), None)
    row = AuditRow(
        job_run_id=run_id,
        mentor_id=mentor_id,
        certification_expiry_date=world.today - timedelta(days=2),
        old_status="active",
        new_status="paused",
        history_id=transition.history_id,
    )
    world.store.write_audit([row])
    world.store.write_audit([row])  # a retried chunk
    world.store.write_audit([row.model_copy(update={"certification_expiry_date": world.today})])
    assert world.audit() == [row]


def test_the_repair_credits_only_what_a_real_run_made(world):
    due = world.today - timedelta(days=2)
    real = start(world)
    [credited, no_such_run, not_the_jobs, wrong_actor] = [world.add_mentor(due) for _ in range(4)]
    store = world.store

    def pause(mentor_id, request_id, actor_id=None):
        return store.pause(store.current(mentor_id), request_id, actor_id).history_id

    made = pause(credited, request_id_for(real, credited))
    unattributed = [
        pause(no_such_run, request_id_for(uuid.uuid4(), no_such_run)),
        pause(wrong_actor, request_id_for(real, wrong_actor), world.add_coordinator()),
    ]
    pause(not_the_jobs, "the-mentor-app:42")  # not the job's: the repair does not look at it

    repair = store.repair_audit()
    assert (repair.repaired, repair.skipped) == (1, 2)
    assert sorted(repair.skipped_history_ids) == sorted(unattributed)
    [row] = world.audit()
    assert (row.job_run_id, row.mentor_id, row.history_id) == (real, credited, made)
    assert row.certification_expiry_date == due

    again = store.repair_audit()
    assert (again.repaired, again.skipped) == (0, 2)


def test_the_repair_credits_no_dry_run(world):
    dry = start(world, dry_run=True)
    mentor_id = world.add_mentor(world.today - timedelta(days=2))
    world.store.pause(world.store.current(mentor_id), request_id_for(dry, mentor_id), None)
    repair = world.store.repair_audit()
    assert (repair.repaired, repair.skipped) == (0, 1)
    assert world.audit() == []
