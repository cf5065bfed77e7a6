"""What the database holds and answers, as the job and the compliance check read and
write it: the run ledger's kinds, candidates and their keyset cursor, the RPC's
transition, audit rows and their repair, the compliance status."""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from datetime import date, datetime
from enum import StrEnum

from pydantic import BaseModel


class Trigger(StrEnum):
    SCHEDULED = "scheduled"
    MANUAL = "manual"


class RunStatus(StrEnum):
    SUCCEEDED = "succeeded"
    PARTIAL = "partial"
    FAILED = "failed"


@dataclass(frozen=True)
class PageCursor:
    """Where a page of candidates ended: the keyset (certification_expiry_date, id),
    the date as the database wrote it, so that a row the job cannot read still moves
    the next page past it."""

    certification_expiry_date: str
    id: uuid.UUID


class Candidate(BaseModel):
    """A row of expired_active_mentors."""

    id: uuid.UUID
    organization_id: uuid.UUID
    status_version: int
    certification_expiry_date: date

    @property
    def cursor(self) -> PageCursor:
        return PageCursor(self.certification_expiry_date.isoformat(), self.id)


@dataclass(frozen=True)
class UnreadableCandidate:
    """A row of expired_active_mentors the job cannot read (an expiry date outside
    Python's years 1 to 9999, say): that mentor's failure, never the run's."""

    id: uuid.UUID
    cursor: PageCursor
    problem: str


class Transition(BaseModel):
    """What update_mentor_status returns."""

    mentor_id: uuid.UUID
    old_status: str
    new_status: str
    status_version: int
    history_id: int
    changed_at: datetime
    replayed: bool


class AuditRow(BaseModel):
    """One row of certification_expiry_audit; changed_at is left to the database."""

    job_run_id: uuid.UUID
    mentor_id: uuid.UUID
    certification_expiry_date: date
    old_status: str
    new_status: str
    history_id: int


class AuditRepair(BaseModel):
    """What repair_certification_expiry_audit did: rows written, and history rows with
    the job's request-id prefix that no run can be credited with (the first few ids)."""

    repaired: int
    skipped: int
    skipped_history_ids: list[int]


class ComplianceStatus(BaseModel):
    """What certification_compliance_status returns, by the database's clock."""

    night: date
    expired_active_count: int
    # Still active although the run of `night` should have paused them.
    overdue_count: int
    sample_mentor_ids: list[uuid.UUID]
    hidden_active_count: int
    last_success_at: datetime | None
    # A full run succeeded since the midnight that began `night`.
    recent_success: bool
