"""One run of the certification expiry job, against any MentorStore.

Pages through the expired active mentors, pauses each one through the RPC with
bounded concurrency and its own try/except, retries only what is worth retrying,
writes the audit in chunks, and records the run under a lease.
"""

from __future__ import annotations

import contextvars
import functools
import logging
import time
import uuid
from collections.abc import Callable, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, TypeVar

from tenacity import Retrying, retry_if_exception, stop_after_attempt, wait_random_exponential

from .errors import DatabaseUnavailableError, LeaseHeldError
from .log_events import log_event
from .mentor_store import MentorStore, StoreError, StoreErrorKind
from .models import (
    RESPONSE_LIST_LIMIT,
    AuditRow,
    Candidate,
    JobRequest,
    JobSummary,
    MentorError,
    RunStatus,
    Transition,
    Trigger,
)

if TYPE_CHECKING:
    from .config import Settings

T = TypeVar("T")

# Capped exponential backoff with full jitter between attempts, in seconds.
BACKOFF = wait_random_exponential(multiplier=0.2, max=5)
FINISH_RETRIES = 10


@dataclass(frozen=True)
class RunScope:
    """Who started the run and what it may touch."""

    trigger: Trigger
    actor_id: uuid.UUID | None = None  # None: the system
    organization_ids: tuple[uuid.UUID, ...] | None = None  # None: every organisation
    invoked_by: str = "system"  # the credential that started it, for the logs


REQUEST_ID_PREFIX = "certification_expiry:"


def request_id_for(job_run_id: uuid.UUID, mentor_id: uuid.UUID) -> str:
    """The RPC's idempotency key: the same for every attempt of this run on this mentor.

    The database reserves the prefix to the service role and reads the run id back
    (certification_expiry_request_run_id, in the job_request_ids migration);
    tests/database/test_job_request_ids.py pins both sides to the same examples.
    """
    return f"{REQUEST_ID_PREFIX}{job_run_id}:{mentor_id}"


def run_id_of(request_id: str, mentor_id: uuid.UUID) -> uuid.UUID | None:
    """The run id inside one of this mentor's job request ids, or None if it is not one."""
    if not request_id.startswith(REQUEST_ID_PREFIX):
        return None
    try:
        run_id = uuid.UUID(request_id.removeprefix(REQUEST_ID_PREFIX).partition(":")[0])
    except ValueError:
        return None
    return run_id if request_id == request_id_for(run_id, mentor_id) else None


class _NoLongerDue(Exception):
    """The mentor changed since its page was read and is no longer expired and active."""


@dataclass
class _PauseAttempts:
    """One mentor's attempts at the pause, each with the version last read: after a
    conflict (someone changed the mentor) it reads the mentor again before the retry."""

    store: MentorStore
    current: Candidate
    request_id: str
    actor_id: uuid.UUID | None

    def __call__(self) -> Transition:
        try:
            return self.store.pause(self.current, self.request_id, self.actor_id)
        except StoreError as error:
            if error.kind is not StoreErrorKind.CONFLICT:
                raise
            refreshed = self.store.current(self.current.id)
            if refreshed is None:
                raise _NoLongerDue from error
            self.current = refreshed
            raise


@dataclass
class _Paused:
    candidate: Candidate
    transition: Transition


@dataclass
class _Skipped:
    reason: str


@dataclass
class _NotStarted:
    pass


@dataclass
class _Outcomes:
    started: float = 0.0
    # How many candidates the run will read, counted at its start (None: unknown).
    expected: int | None = None
    audit_pending: list[AuditRow] = field(default_factory=list)
    audit_missing: list[uuid.UUID] = field(default_factory=list)
    out_of_time: bool = False


class CertificationExpiryJob:
    def __init__(
        self,
        store: MentorStore,
        settings: Settings,
        logger: logging.Logger,
        clock: Callable[[], float] = time.monotonic,
        sleep: Callable[[float], None] = time.sleep,
    ) -> None:
        self.store = store
        self.settings = settings
        self.logger = logger
        self.clock = clock
        self.sleep = sleep

    def _with_retries(self, call: Callable[[], T], retries: int | None = None) -> T:
        """`call()`, tried again on transient failures and version conflicts up to
        `retries` (default job_max_retries) times; the last error is raised."""
        retried = {StoreErrorKind.TRANSIENT, StoreErrorKind.CONFLICT}
        retrying = Retrying(
            stop=stop_after_attempt((self.settings.job_max_retries if retries is None else retries) + 1),
            wait=BACKOFF,
            retry=retry_if_exception(lambda error: isinstance(error, StoreError) and error.kind in retried),
            sleep=self.sleep,
            reraise=True,
        )
        return retrying(call)

    def _fail_run(self, summary: JobSummary, message: str, error: StoreError) -> None:
        summary.status = RunStatus.FAILED
        log_event(
            self.logger,
            logging.ERROR,
            "job.failed",
            message,
            job_run_id=summary.job_run_id,
            code=error.code,
            reason=error.message,
        )

    # --- the run ---------------------------------------------------------------------

    def run(self, request: JobRequest, scope: RunScope) -> JobSummary:
        started = self.clock()
        summary = JobSummary(job_run_id=uuid.uuid4(), status=RunStatus.SUCCEEDED, dry_run=request.dry_run)
        run_id = summary.job_run_id
        try:
            # Retried for transient failures (a held lease is not one): starting is
            # idempotent on the run id, so a lost answer is safe to ask again.
            self._with_retries(
                lambda: self.store.start_run(
                    run_id,
                    scope.trigger,
                    request.dry_run,
                    self.settings.lease_seconds,
                    scope.actor_id,
                    scope.organization_ids,
                ),
            )
        except StoreError as error:
            if error.kind is StoreErrorKind.LEASE_HELD:
                raise LeaseHeldError(error.message) from error
            raise DatabaseUnavailableError(
                "could not start the run: the database did not answer", detail=str(error)
            ) from error

        log_event(
            self.logger,
            logging.INFO,
            "job.started",
            "certification expiry run started",
            job_run_id=run_id,
            trigger=scope.trigger,
            invoked_by=scope.invoked_by,
            dry_run=request.dry_run,
            max_mentors=request.max_mentors,
            actor_id=scope.actor_id,
            organization_ids=scope.organization_ids,
        )
        self._repair_audit(run_id)
        outcomes = _Outcomes(started=started, expected=self._count_candidates(request, scope))
        try:
            self._process(request, scope, summary, outcomes, deadline=started + self.settings.job_time_budget_seconds)
        except StoreError as error:
            # Reading the candidates failed for good: the run cannot go on.
            self._fail_run(summary, "the run stopped: reading the candidates failed", error)
        self._flush_audit(run_id, outcomes, force=True)

        if outcomes.audit_missing:
            summary.status = RunStatus.FAILED
        elif summary.status is RunStatus.SUCCEEDED and (summary.error_count or outcomes.out_of_time):
            summary.status = RunStatus.PARTIAL
        summary.duration_ms = int((self.clock() - started) * 1000)
        try:
            # More patient than for a mentor: until this lands, the run holds the
            # lease and the next run is refused (about half a minute of backoff).
            self._with_retries(lambda: self.store.finish_run(summary), retries=FINISH_RETRIES)
        except StoreError as error:
            # The run row stays `running` until its lease expires, which the
            # compliance check reports; the response still tells what happened.
            self._fail_run(summary, "could not record the run's outcome", error)
        log_event(
            self.logger,
            logging.ERROR if summary.status is RunStatus.FAILED else logging.INFO,
            "job.finished",
            f"certification expiry run {summary.status.value}",
            out_of_time=outcomes.out_of_time,
            **summary.model_dump(mode="json", exclude={"paused_mentor_ids", "errors"}),
        )
        return summary

    def _repair_audit(self, run_id: uuid.UUID) -> None:
        """Write the audit rows earlier runs could not: every transition the job made
        ends with its audit row, one run later at the latest."""
        try:
            repaired = self._with_retries(self.store.repair_audit)
        except StoreError as error:
            # Not this run's own work: it goes on, and the next run tries again.
            log_event(
                self.logger,
                logging.ERROR,
                "audit.failed",
                "could not repair missing audit rows",
                job_run_id=run_id,
                mentor_ids=[],
                code=error.code,
                reason=error.message,
            )
            return
        if repaired.repaired:
            log_event(
                self.logger,
                logging.WARNING,
                "audit.repaired",
                "wrote audit rows missing from earlier runs",
                job_run_id=run_id,
                rows=repaired.repaired,
            )
        if repaired.skipped:
            # Transitions under the job's request-id prefix that no run made: written
            # before the prefix was reserved to the job, or by hand. Never audited.
            log_event(
                self.logger,
                logging.WARNING,
                "audit.unattributed",
                "history rows carry the job's request-id prefix but no run made them: not audited",
                job_run_id=run_id,
                rows=repaired.skipped,
                history_ids=repaired.skipped_history_ids,
            )

    def _process(
        self, request: JobRequest, scope: RunScope, summary: JobSummary, outcomes: _Outcomes, deadline: float
    ) -> None:
        after: Candidate | None = None
        with ThreadPoolExecutor(self.settings.job_concurrency, thread_name_prefix="pause") as pool:
            while True:
                limit = self.settings.job_page_size
                if request.max_mentors is not None:
                    limit = min(limit, request.max_mentors - summary.candidate_count)
                    if limit <= 0:
                        return
                page = self._next_page(after, limit, scope.organization_ids)
                if not page:
                    return
                after = page[-1]
                summary.candidate_count += len(page)
                if not request.dry_run:
                    self._pause_page(page, scope, summary, outcomes, pool, deadline)
                self._progress(summary, outcomes)
                # A short page is the last one: page_size never exceeds the server's
                # row cap, so it cannot be a page the server cut short.
                if outcomes.out_of_time or len(page) < limit:
                    return

    def _count_candidates(self, request: JobRequest, scope: RunScope) -> int | None:
        """How many mentors this run will read, for the progress lines; None if the count fails."""
        try:
            total = self._with_retries(lambda: self.store.count_expired_active(scope.organization_ids))
        except StoreError:
            return None  # the progress lines then go without what is left; the run goes on
        return total if request.max_mentors is None else min(total, request.max_mentors)

    def _progress(self, summary: JobSummary, outcomes: _Outcomes) -> None:
        """One line per page: how far the run has come, how fast, and what is left."""
        elapsed = self.clock() - outcomes.started
        rate = summary.candidate_count / elapsed if elapsed > 0 else 0.0
        left: dict[str, int] = {}
        if outcomes.expected is not None:
            remaining = max(outcomes.expected - summary.candidate_count, 0)
            left = {"remaining": remaining, "eta_s": round(remaining / rate) if rate else 0}
        log_event(
            self.logger,
            logging.INFO,
            "job.progress",
            "certification expiry run in progress",
            job_run_id=summary.job_run_id,
            processed=summary.candidate_count,
            paused=summary.paused_count,
            skipped=summary.skipped_count,
            errors=summary.error_count,
            elapsed_ms=int(elapsed * 1000),
            rate_per_s=round(rate, 1),
            **left,
        )

    def _pause_page(
        self,
        page: list[Candidate],
        scope: RunScope,
        summary: JobSummary,
        outcomes: _Outcomes,
        pool: ThreadPoolExecutor,
        deadline: float,
    ) -> None:
        def attempt(candidate: Candidate) -> _Paused | _Skipped | _NotStarted | MentorError:
            if self.clock() >= deadline:
                return _NotStarted()
            return self._pause_one(summary.job_run_id, candidate, scope.actor_id)

        # Each task runs in a copy of this thread's context, so that its log lines
        # carry the incoming request's trace (Flask keeps the request in context
        # variables, which threads do not inherit).
        contexts = [contextvars.copy_context() for _ in page]
        for outcome in pool.map(lambda context, candidate: context.run(attempt, candidate), contexts, page):
            self._tally(outcome, summary, outcomes)
        self._flush_audit(summary.job_run_id, outcomes)

    def _next_page(
        self, after: Candidate | None, limit: int, organization_ids: Sequence[uuid.UUID] | None
    ) -> list[Candidate]:
        return self._with_retries(lambda: self.store.expired_active_mentors(after, limit, organization_ids))

    def _tally(
        self, outcome: _Paused | _Skipped | _NotStarted | MentorError, summary: JobSummary, outcomes: _Outcomes
    ) -> None:
        if isinstance(outcome, _Paused):
            summary.paused_count += 1
            if len(summary.paused_mentor_ids) < RESPONSE_LIST_LIMIT:
                summary.paused_mentor_ids.append(outcome.transition.mentor_id)
            else:
                summary.paused_mentor_ids_truncated = True
            outcomes.audit_pending.append(
                AuditRow(
                    job_run_id=summary.job_run_id,
                    mentor_id=outcome.transition.mentor_id,
                    certification_expiry_date=outcome.candidate.certification_expiry_date,
                    old_status=outcome.transition.old_status,
                    new_status=outcome.transition.new_status,
                    history_id=outcome.transition.history_id,
                )
            )
        elif isinstance(outcome, _Skipped):
            summary.skipped_count += 1
        elif isinstance(outcome, _NotStarted):
            outcomes.out_of_time = True
        else:
            summary.error_count += 1
            if len(summary.errors) < RESPONSE_LIST_LIMIT:
                summary.errors.append(outcome)
            else:
                summary.errors_truncated = True

    # --- one mentor -------------------------------------------------------------------

    def _pause_one(
        self, run_id: uuid.UUID, candidate: Candidate, actor_id: uuid.UUID | None
    ) -> _Paused | _Skipped | MentorError:
        """Never raises: whatever happens to one mentor stays with that mentor."""
        attempts = _PauseAttempts(self.store, candidate, request_id_for(run_id, candidate.id), actor_id)
        try:
            transition = self._with_retries(attempts)
        except _NoLongerDue:
            return self._skipped(run_id, candidate, "no longer active or expired")
        except StoreError as error:
            if error.kind in (StoreErrorKind.NOT_ALLOWED, StoreErrorKind.NOT_FOUND):
                return self._skipped(run_id, candidate, error.message)
            return self._failed(run_id, candidate, error.code, error.message)
        except Exception as error:  # one mentor's surprise must not end the run
            return self._failed(run_id, candidate, type(error).__name__, str(error))
        log_event(
            self.logger,
            logging.INFO,
            "mentor.paused",
            "mentor paused: certification expired",
            job_run_id=run_id,
            mentor_id=candidate.id,
            organization_id=candidate.organization_id,
            certification_expiry_date=candidate.certification_expiry_date.isoformat(),
            history_id=transition.history_id,
            replayed=transition.replayed,
        )
        return _Paused(attempts.current, transition)

    def _skipped(self, run_id: uuid.UUID, candidate: Candidate, reason: str) -> _Skipped:
        log_event(
            self.logger,
            logging.INFO,
            "mentor.skipped",
            "mentor skipped: no longer active",
            job_run_id=run_id,
            mentor_id=candidate.id,
            reason=reason,
        )
        return _Skipped(reason)

    def _failed(self, run_id: uuid.UUID, candidate: Candidate, code: str, message: str) -> MentorError:
        log_event(
            self.logger,
            logging.ERROR,
            "mentor.failed",
            "could not pause mentor",
            job_run_id=run_id,
            mentor_id=candidate.id,
            code=code,
            reason=message,
        )
        return MentorError(mentor_id=candidate.id, code=code, message=message)

    # --- the audit --------------------------------------------------------------------

    def _flush_audit(self, run_id: uuid.UUID, outcomes: _Outcomes, force: bool = False) -> None:
        """Write full chunks (all that is pending when `force`), one request per chunk."""
        size = self.settings.job_audit_chunk_size
        while len(outcomes.audit_pending) >= size or (force and outcomes.audit_pending):
            chunk, outcomes.audit_pending = outcomes.audit_pending[:size], outcomes.audit_pending[size:]
            try:
                self._with_retries(functools.partial(self.store.write_audit, chunk))
            except StoreError as error:
                missing = [row.mentor_id for row in chunk]
                outcomes.audit_missing += missing
                log_event(
                    self.logger,
                    logging.ERROR,
                    "audit.failed",
                    "audit rows could not be written: these transitions have no audit row",
                    job_run_id=run_id,
                    mentor_ids=missing,
                    code=error.code,
                    reason=error.message,
                )
                continue
            log_event(
                self.logger, logging.INFO, "audit.written", "audit rows written", job_run_id=run_id, rows=len(chunk)
            )
