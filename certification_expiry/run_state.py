"""One run's state: who started it and on what, the answer it builds, where it is in
the candidates, and the audit rows it still owes. The job changes it; nothing
else does."""

from __future__ import annotations

import uuid
from collections.abc import Callable
from dataclasses import dataclass, field

from .bodies import RESPONSE_LIST_LIMIT, JobRequest, JobSummary, MentorError
from .records import AuditRow, Candidate, PageCursor, RunStatus, Transition, Trigger


@dataclass(frozen=True)
class RunScope:
    """Who started the run and what it may touch."""

    trigger: Trigger
    actor_id: uuid.UUID | None = None  # None: the system
    organization_ids: tuple[uuid.UUID, ...] | None = None  # None: every organisation
    invoked_by: str = "system"  # the credential that started it, for the logs


@dataclass
class Paused:
    candidate: Candidate
    transition: Transition


@dataclass
class Skipped:
    """The mentor was no longer expired and active (mentor.skipped says why)."""


@dataclass
class NotStarted:
    """The time budget ran out before this mentor's turn."""


Outcome = Paused | Skipped | NotStarted | MentorError


@dataclass
class RunState:
    """Everything one run knows while it goes."""

    request: JobRequest
    scope: RunScope
    summary: JobSummary
    started: float
    deadline: float
    # log_event with the run's logger and its job_run_id bound (job.py).
    log: Callable[..., None]
    expected: int | None = None  # candidates counted at the start (None: unknown)
    after: PageCursor | None = None  # where the last page read ended
    audit_pending: list[AuditRow] = field(default_factory=list)
    out_of_time: bool = False
    # The run stopped short, an audit chunk could not be written, or the outcome could
    # not be recorded (job.failed or audit.failed says why).
    failed: bool = False

    @property
    def id(self) -> uuid.UUID:
        return self.summary.job_run_id

    def page_limit(self, page_size: int) -> int:
        """How many candidates to read next (0: max_mentors reached)."""
        if self.request.max_mentors is None:
            return page_size
        return max(min(page_size, self.request.max_mentors - self.summary.candidate_count), 0)

    def tally(self, outcome: Outcome) -> None:
        summary = self.summary
        if isinstance(outcome, Paused):
            summary.paused_count += 1
            if len(summary.paused_mentor_ids) < RESPONSE_LIST_LIMIT:
                summary.paused_mentor_ids.append(outcome.transition.mentor_id)
            else:
                summary.paused_mentor_ids_truncated = True
            self.audit_pending.append(
                AuditRow(
                    job_run_id=self.id,
                    mentor_id=outcome.transition.mentor_id,
                    certification_expiry_date=outcome.candidate.certification_expiry_date,
                    old_status=outcome.transition.old_status,
                    new_status=outcome.transition.new_status,
                    history_id=outcome.transition.history_id,
                )
            )
        elif isinstance(outcome, Skipped):
            summary.skipped_count += 1
        elif isinstance(outcome, NotStarted):
            self.out_of_time = True
        else:
            summary.error_count += 1
            if len(summary.errors) < RESPONSE_LIST_LIMIT:
                summary.errors.append(outcome)
            else:
                summary.errors_truncated = True

    def progress(self, now: float) -> dict[str, int | float]:
        """The fields of a job.progress line: how far the run has come, how fast, and
        what is left when the candidates were counted."""
        summary = self.summary
        elapsed = now - self.started
        rate = summary.candidate_count / elapsed if elapsed > 0 else 0.0
        fields: dict[str, int | float] = {
            "processed": summary.candidate_count,
            "paused": summary.paused_count,
            "skipped": summary.skipped_count,
            "errors": summary.error_count,
            "elapsed_ms": int(elapsed * 1000),
            "rate_per_s": round(rate, 1),
        }
        if self.expected is not None:
            remaining = max(self.expected - summary.candidate_count, 0)
            fields |= {"remaining": remaining, "eta_s": round(remaining / rate) if rate else 0}
        return fields

    def settle(self, now: float) -> None:
        """The run's status and duration as they stand: the one place that sets the status."""
        if self.failed:
            self.summary.status = RunStatus.FAILED
        elif self.summary.error_count or self.out_of_time:
            self.summary.status = RunStatus.PARTIAL
        else:
            self.summary.status = RunStatus.SUCCEEDED
        self.summary.duration_ms = int((now - self.started) * 1000)
