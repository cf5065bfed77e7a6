"""Who may do what: the two use cases against the in-memory store."""

from __future__ import annotations

import io
import uuid

import pytest

from certification_expiry.bodies import JobRequest
from certification_expiry.callers import Invoker, InvokerKind
from certification_expiry.errors import DatabaseUnavailableError, PermissionDeniedError
from certification_expiry.ports import StoreError, StoreErrorKind
from certification_expiry.records import RunStatus, Trigger
from certification_expiry.runtime import Runtime
from certification_expiry.service import CertificationExpiryService
from certification_expiry.structured_logging import configure_logging
from tests.fakes import FakeStore, job_settings

SCHEDULER = Invoker(InvokerKind.OIDC, email="scheduler@example.iam.gserviceaccount.com")


def service_over(store: FakeStore) -> CertificationExpiryService:
    runtime = Runtime.wired(job_settings(), store, configure_logging(io.StringIO()), sleep=lambda _: None)
    return runtime.service


def coordinator_of(store: FakeStore, *organizations: uuid.UUID) -> Invoker:
    user_id = uuid.uuid4()
    store.coordinators[user_id] = set(organizations)
    return Invoker(InvokerKind.USER, user_id=user_id)


@pytest.mark.parametrize(("scheduled", "trigger"), [(True, Trigger.SCHEDULED), (False, Trigger.MANUAL)])
def test_the_system_runs_every_organisation(scheduled, trigger):
    store = FakeStore()
    store.add(3)
    summary = service_over(store).start_run(SCHEDULER, JobRequest(), scheduled=scheduled)
    assert (summary.status, summary.paused_count) == (RunStatus.SUCCEEDED, 3)
    run = store.runs[summary.job_run_id]
    assert (run.trigger, run.actor_id, run.organization_ids) == (trigger, None, None)


def test_a_coordinator_runs_its_own_organisations_as_actor():
    store = FakeStore()
    ours, theirs = uuid.uuid4(), uuid.uuid4()
    [mine] = store.add(1, organization_id=ours)
    store.add(2, organization_id=theirs)
    coordinator = coordinator_of(store, ours)
    # Even when Cloud Scheduler's header is forged, a user's run is manual.
    service = service_over(store)
    summary = service.start_run(coordinator, JobRequest(), scheduled=True)
    assert summary.paused_mentor_ids == [mine]
    assert service.scope_of(coordinator, scheduled=True).invoked_by == f"user:{coordinator.user_id}"
    assert service.scope_of(SCHEDULER, scheduled=True).invoked_by == f"oidc:{SCHEDULER.email}"
    run = store.runs[summary.job_run_id]
    assert (run.trigger, run.actor_id, run.organization_ids) == (Trigger.MANUAL, coordinator.user_id, (ours,))


def test_a_user_who_coordinates_nothing_may_not_start_a_run():
    store = FakeStore()
    store.add(1)
    with pytest.raises(PermissionDeniedError) as raised:
        service_over(store).start_run(Invoker(InvokerKind.USER, user_id=uuid.uuid4()), JobRequest(), scheduled=False)
    assert raised.value.message == "this user coordinates no organisation, so may not start a run"
    assert store.runs == {}
    assert store.pause_calls == []


def test_a_lookup_the_database_cannot_answer_is_database_unavailable():
    class Unreachable(FakeStore):
        def coordinated_organizations(self, user_id: uuid.UUID) -> list[uuid.UUID]:
            raise StoreError(StoreErrorKind.TRANSIENT, "ConnectError", "connection refused")

    store = Unreachable()
    with pytest.raises(DatabaseUnavailableError) as raised:
        service_over(store).start_run(Invoker(InvokerKind.USER, user_id=uuid.uuid4()), JobRequest(), scheduled=False)
    assert raised.value.message == "could not look up what this user coordinates: the database did not answer"
    assert raised.value.detail == "ConnectError: connection refused"
    assert store.runs == {}


def test_only_the_system_checks_compliance():
    store = FakeStore()
    service = service_over(store)
    with pytest.raises(PermissionDeniedError) as raised:
        service.check_compliance(coordinator_of(store, uuid.uuid4()))
    assert raised.value.message == "the compliance check is for the operator and the scheduler"
    store.add(2)
    report = service.check_compliance(SCHEDULER)
    assert not report.ok
    assert report.expired_active_count == 2
