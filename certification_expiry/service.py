"""The two use cases, whoever asks: a caller starts a run, a caller checks compliance.

What an authenticated caller may do is decided here and nowhere else: the
system (an operator key, the service role, the scheduler) may do both; a signed-in
user who coordinates organisations may run the job on those, as its actor; anyone
else, nothing. The entry points only translate HTTP to these calls and back.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass

from .bodies import ComplianceReport, JobRequest, JobSummary
from .callers import Invoker
from .compliance import check_compliance
from .config import NightlySchedule
from .errors import DatabaseUnavailableError, PermissionDeniedError
from .job import CertificationExpiryJob
from .ports import AccessStore, ComplianceStore, StoreError
from .records import Trigger
from .run_state import RunScope


@dataclass(frozen=True)
class CertificationExpiryService:
    job: CertificationExpiryJob
    compliance: ComplianceStore
    access: AccessStore
    nightly_schedule: NightlySchedule
    logger: logging.Logger

    def start_run(self, invoker: Invoker, request: JobRequest, scheduled: bool) -> JobSummary:
        """Run the job in the scope this caller may touch; `scheduled`: Cloud Scheduler sent it."""
        return self.job.run(request, self.scope_of(invoker, scheduled))

    def check_compliance(self, invoker: Invoker) -> ComplianceReport:
        if not invoker.is_system:
            raise PermissionDeniedError("the compliance check is for the operator and the scheduler")
        return check_compliance(self.compliance, self.nightly_schedule, self.logger)

    def scope_of(self, invoker: Invoker, scheduled: bool) -> RunScope:
        """The system runs everything; a coordinator runs its own organisations, as actor."""
        if invoker.is_system:
            return RunScope(trigger=Trigger.SCHEDULED if scheduled else Trigger.MANUAL, invoked_by=invoker.describe())
        assert invoker.user_id is not None
        try:
            organizations = self.access.coordinated_organizations(invoker.user_id)
        except StoreError as error:
            raise DatabaseUnavailableError(
                "could not look up what this user coordinates: the database did not answer", detail=str(error)
            ) from error
        if not organizations:
            raise PermissionDeniedError("this user coordinates no organisation, so may not start a run")
        return RunScope(
            trigger=Trigger.MANUAL,
            actor_id=invoker.user_id,
            organization_ids=tuple(organizations),
            invoked_by=invoker.describe(),
        )
