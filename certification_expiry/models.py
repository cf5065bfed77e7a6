"""The shapes that cross a boundary: caller, request body, candidates, RPC results, audit rows, summary."""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from datetime import date, datetime, time
from enum import StrEnum

from pydantic import BaseModel, ConfigDict, Field, PositiveInt, StrictBool


class InvokerKind(StrEnum):
    """The credential a caller presented."""

    SECRET_KEY = "secret_key"  # noqa: S105 - a kind of credential, not one: one of the project's secret keys
    SERVICE_ROLE_KEY = "service_role_key"  # the legacy JWT service-role key
    SERVICE_ROLE_JWT = "service_role_jwt"  # a JWT signed with the legacy secret, role service_role
    OIDC = "oidc"  # a Google identity token of an allowed invoker (Cloud Scheduler)
    USER = "user"  # a signed-in user's Supabase session


@dataclass(frozen=True)
class Invoker:
    """An authenticated caller."""

    kind: InvokerKind
    email: str | None = None
    user_id: uuid.UUID | None = None

    @property
    def is_system(self) -> bool:
        """The operator's key, the service role or the scheduler: may do anything."""
        return self.kind is not InvokerKind.USER

    def describe(self) -> str:
        """Who, for the logs: the kind of credential and, where there is one, the
        identity: a user's id, or the allowed service account's email."""
        identity = self.user_id if self.kind is InvokerKind.USER else self.email
        return ":".join(str(part) for part in (self.kind, identity) if part)


class JobRequest(BaseModel):
    """The optional JSON body of a run. Unknown keys and loose types are refused."""

    model_config = ConfigDict(extra="forbid", strict=True)

    dry_run: StrictBool = False
    max_mentors: PositiveInt | None = None


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


class MentorError(BaseModel):
    mentor_id: uuid.UUID
    code: str
    message: str


@dataclass(frozen=True)
class NightlySchedule:
    """When the nightly run is due, in Oslo: its time, and the grace after it within
    which its success is expected. The night being judged is today's from then on."""

    run_at: time
    grace_minutes: int


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


class ComplianceReport(BaseModel):
    """The compliance check's answer."""

    ok: bool
    reasons: list[str]
    # The night whose run this answer judges (Oslo's calendar).
    night: date
    expired_active_count: int
    overdue_count: int
    sample_mentor_ids: list[uuid.UUID]
    # Active mentors listed_peer_mentors already hides: the job's backlog until the
    # night's run is due, a breach (overdue) after it.
    hidden_active_count: int
    last_success_at: datetime | None


# The response lists at most this many paused mentors and errors, so that a run
# holds one page in memory whatever the number of mentors; the complete list of
# pauses is the run's rows in certification_expiry_audit, and every error is logged.
RESPONSE_LIST_LIMIT = 1000


class JobSummary(BaseModel):
    """The response body, and the fields of the job.finished log line."""

    job_run_id: uuid.UUID
    status: RunStatus
    dry_run: bool
    candidate_count: int = 0
    paused_count: int = 0
    skipped_count: int = 0
    error_count: int = 0
    paused_mentor_ids: list[uuid.UUID] = Field(default_factory=list)
    paused_mentor_ids_truncated: bool = False
    errors: list[MentorError] = Field(default_factory=list)
    errors_truncated: bool = False
    duration_ms: int = 0
