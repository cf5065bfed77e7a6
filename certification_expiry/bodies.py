"""The JSON a caller sends and gets back: a run's request body and summary (also the
fields of its job.finished line), and the compliance check's report."""

from __future__ import annotations

import uuid
from datetime import date, datetime

from pydantic import BaseModel, ConfigDict, Field, PositiveInt, StrictBool

from .records import RunStatus


class JobRequest(BaseModel):
    """The optional JSON body of a run. Unknown keys and loose types are refused."""

    model_config = ConfigDict(extra="forbid", strict=True)

    dry_run: StrictBool = False
    max_mentors: PositiveInt | None = None


class MentorError(BaseModel):
    mentor_id: uuid.UUID
    code: str
    message: str


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
