"""What the use cases need from the database, one small interface per client.

The job, the compliance check and the access rules depend on these Protocols
only; supabase_store.py implements all three over supabase-py, and
tests/fakes.py in memory. tests/contract/ holds both to the same behaviour.
"""

from __future__ import annotations

import uuid
from collections.abc import Sequence
from enum import StrEnum
from typing import Protocol

from .bodies import JobSummary
from .config import NightlySchedule
from .records import (
    AuditRepair,
    AuditRow,
    Candidate,
    ComplianceStatus,
    PageCursor,
    Transition,
    Trigger,
    UnreadableCandidate,
)


class StoreErrorKind(StrEnum):
    TRANSIENT = "transient"  # network, timeout, 5xx: worth retrying as it was
    CONFLICT = "conflict"  # the row changed under us (PT409): read it again, then retry
    LEASE_HELD = "lease_held"  # another run covering these organisations works: nothing to retry
    RATE_LIMITED = "rate_limited"  # a coordinator's run of this kind started too recently (PT429)
    NOT_ALLOWED = "not_allowed"  # the transition is not allowed any more (P0001)
    NOT_FOUND = "not_found"  # the mentor is gone (PT404)
    PERMANENT = "permanent"  # anything else: retrying would not help


class StoreError(Exception):
    def __init__(self, kind: StoreErrorKind, code: str, message: str, retry_after_seconds: int | None = None) -> None:
        super().__init__(f"{code}: {message}")
        self.kind = kind
        self.code = code
        self.message = message
        # RATE_LIMITED: how long until the same run may start, when the store knows.
        self.retry_after_seconds = retry_after_seconds


class JobStore(Protocol):
    """The job's port: the run ledger, the candidates, the RPC and the audit."""

    def start_run(
        self,
        run_id: uuid.UUID,
        trigger: Trigger,
        dry_run: bool,
        lease_seconds: int,
        actor_id: uuid.UUID | None,
        organization_ids: Sequence[uuid.UUID] | None,
        coordinator_interval_seconds: int,
    ) -> None:
        """Record the run and take the lease.

        A full run (organization_ids None) is refused only by another full run; a
        coordinator's run by any working run that covers one of its organisations
        (both LEASE_HELD), and by a run of the same kind for the same organisations
        started less than coordinator_interval_seconds ago (RATE_LIMITED)."""

    def finish_run(self, summary: JobSummary) -> None:
        """Record the run's outcome and counts, which releases the lease."""

    def expired_active_mentors(
        self, after: PageCursor | None, limit: int, organization_ids: Sequence[uuid.UUID] | None
    ) -> list[Candidate | UnreadableCandidate]:
        """The next page in (certification_expiry_date, id) order, strictly after `after`;
        a row that cannot be read as a Candidate comes back as an UnreadableCandidate."""

    def count_expired_active(self, organization_ids: Sequence[uuid.UUID] | None) -> int:
        """How many expired active mentors there are now (in these organisations)."""

    def current(self, mentor_id: uuid.UUID) -> Candidate | None:
        """The mentor as it is now, if it is still expired and active."""

    def pause(self, candidate: Candidate, request_id: str, actor_id: uuid.UUID | None) -> Transition:
        """update_mentor_status(…, 'paused', …) with the candidate's version and this request id."""

    def write_audit(self, rows: Sequence[AuditRow]) -> None:
        """Upsert these audit rows in one request."""

    def repair_audit(self) -> AuditRepair:
        """Write the audit rows missing for transitions the job made, skipping what no run made."""


class ComplianceStore(Protocol):
    """The compliance check's port."""

    def compliance_status(self, schedule: NightlySchedule) -> ComplianceStatus:
        """The night being judged, the expired mentors still active (and those overdue
        for that night), and whether a full run succeeded since that night began."""


class AccessStore(Protocol):
    """The access rules' port: what a signed-in user may act on."""

    def coordinated_organizations(self, user_id: uuid.UUID) -> list[uuid.UUID]:
        """The organisations this user coordinates, sorted (none: not a coordinator)."""


class MentorStore(JobStore, ComplianceStore, AccessStore, Protocol):
    """One store that serves the three ports, as supabase_store.py's and the fake do."""
