"""One run of the certification expiry job, against any JobStore.

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
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from typing import TYPE_CHECKING

from tenacity import Retrying, retry_if_exception, stop_after_attempt, wait_random_exponential

from .audit_trail import AuditTrail
from .bodies import JobRequest, JobSummary, MentorError
from .errors import DatabaseUnavailableError, LeaseHeldError, RunRateLimitedError
from .log_events import log_event
from .ports import JobStore, StoreError, StoreErrorKind
from .records import Candidate, RunStatus, UnreadableCandidate
from .request_ids import request_id_for
from .run_state import NotStarted, Outcome, Paused, RunScope, RunState, Skipped

if TYPE_CHECKING:
    from .config import Settings


# Capped exponential backoff with full jitter between attempts, in seconds.
BACKOFF = wait_random_exponential(multiplier=0.2, max=5)
FINISH_RETRIES = 10


def _worth_retrying(error: BaseException) -> bool:
    return isinstance(error, StoreError) and error.kind in (StoreErrorKind.TRANSIENT, StoreErrorKind.CONFLICT)


def _code_and_reason(error: Exception) -> tuple[str, str]:
    if isinstance(error, StoreError):
        return error.code, error.message
    return type(error).__name__, str(error)


class CertificationExpiryJob:
    def __init__(
        self,
        store: JobStore,
        settings: Settings,
        logger: logging.Logger,
        clock: Callable[[], float] = time.monotonic,
        sleep: Callable[[float], None] = time.sleep,
    ) -> None:
        self.store = store
        self.settings = settings
        self.logger = logger
        self.clock = clock
        # Built once and shared by the threads (tenacity keeps each call's state
        # thread-local): building one per call was most of its cost per mentor
        # (bench scenario client_cpu, bench/README.md).
        self._retrying = Retrying(
            stop=stop_after_attempt(settings.job_max_retries + 1),
            wait=BACKOFF,
            retry=retry_if_exception(_worth_retrying),
            sleep=sleep,
            reraise=True,
        )
        # More patient for the run's outcome: until it lands, the run holds the
        # lease and the next run is refused (about half a minute of backoff).
        self._finish_retrying = self._retrying.copy(stop=stop_after_attempt(FINISH_RETRIES + 1))
        self.audit = AuditTrail(store, self._retrying, settings.job_audit_chunk_size)

    # --- the run ---------------------------------------------------------------------

    def run(self, request: JobRequest, scope: RunScope) -> JobSummary:
        started, run_id = self.clock(), uuid.uuid4()
        run = RunState(
            request,
            scope,
            JobSummary(job_run_id=run_id, status=RunStatus.SUCCEEDED, dry_run=request.dry_run),
            started=started,
            deadline=started + self.settings.job_time_budget_seconds,
            # Every line of the run carries its id: bound once, here.
            log=functools.partial(log_event, self.logger, job_run_id=run_id),
        )
        self._start(run)
        # From here the run holds the lease, and every way out passes below: the
        # outcome recorded (which releases the lease), job.finished logged, the
        # summary answered, whatever was raised.
        try:
            self.audit.repair(run)
            run.expected = self._count_candidates(run)
            self._process(run)
        except StoreError as error:
            # Reading the candidates failed for good: the run cannot go on.
            self._fail_run(run, "the run stopped: reading the candidates failed", error.code, error.message)
        except Exception as error:  # a bug, or an answer the store could not read
            self._fail_run(run, "the run stopped on an unexpected error", type(error).__name__, str(error))
        try:
            self.audit.flush(run, everything=True)
        except Exception as error:  # what is left is written by the next run's repair
            self._fail_run(run, "the audit stopped on an unexpected error", type(error).__name__, str(error))
        self._finish(run)
        run.log(
            logging.ERROR if run.summary.status is RunStatus.FAILED else logging.INFO,
            "job.finished",
            f"certification expiry run {run.summary.status.value}",
            out_of_time=run.out_of_time,
            **run.summary.model_dump(mode="json", exclude={"job_run_id", "paused_mentor_ids", "errors"}),
        )
        return run.summary

    def _fail_run(self, run: RunState, message: str, code: str, reason: str) -> None:
        run.failed = True
        run.log(logging.ERROR, "job.failed", message, code=code, reason=reason)

    def _finish(self, run: RunState) -> None:
        """Settle the run's status and record it, which releases the lease. Transient
        failures are retried. When recording fails unexpectedly (an answer the store
        could not read, say), the run is recorded once more, as failed."""
        run.settle(self.clock())
        error = self._record_outcome(run)
        if error is not None and not isinstance(error, StoreError):
            self._fail_run(run, "recording the run's outcome failed unexpectedly", *_code_and_reason(error))
            run.settle(self.clock())
            error = self._record_outcome(run)
        if error is not None:
            # The run row stays `running` until its lease expires, which the
            # compliance check reports; the response still tells what happened.
            self._fail_run(run, "could not record the run's outcome", *_code_and_reason(error))
            run.settle(self.clock())

    def _record_outcome(self, run: RunState) -> Exception | None:
        try:
            self._finish_retrying(self.store.finish_run, run.summary)
        except Exception as error:
            return error
        return None

    def _start(self, run: RunState) -> None:
        """Record the run and take the lease, or end the request with nothing touched."""
        scope = run.scope
        try:
            # Retried for transient failures (a held lease is not one): starting is
            # idempotent on the run id, so a lost answer is safe to ask again.
            self._retrying(
                lambda: self.store.start_run(
                    run.id,
                    scope.trigger,
                    run.request.dry_run,
                    self.settings.lease_seconds,
                    scope.actor_id,
                    scope.organization_ids,
                    self.settings.coordinator_run_interval_seconds,
                ),
            )
        except StoreError as error:
            # Generic messages: naming the run that holds the lease, or until when,
            # would help a caller time a loop of runs. The store's words go to the log.
            if error.kind is StoreErrorKind.LEASE_HELD:
                raise LeaseHeldError(
                    "another certification expiry run covering these organisations is working; try again later",
                    detail=error.message,
                ) from error
            if error.kind is StoreErrorKind.RATE_LIMITED:
                raise RunRateLimitedError(
                    "a run like this one started a short while ago; try again later",
                    retry_after_seconds=error.retry_after_seconds or self.settings.coordinator_run_interval_seconds,
                    detail=error.message,
                ) from error
            raise DatabaseUnavailableError(
                "could not start the run: the database did not answer", detail=str(error)
            ) from error
        run.log(
            logging.INFO,
            "job.started",
            "certification expiry run started",
            trigger=scope.trigger,
            invoked_by=scope.invoked_by,
            dry_run=run.request.dry_run,
            max_mentors=run.request.max_mentors,
            actor_id=scope.actor_id,
            organization_ids=scope.organization_ids,
        )

    def _count_candidates(self, run: RunState) -> int | None:
        """How many mentors this run will read, for the progress lines; None if the count fails."""
        try:
            total = self._retrying(lambda: self.store.count_expired_active(run.scope.organization_ids))
        except StoreError:
            return None  # the progress lines then go without what is left; the run goes on
        return total if run.request.max_mentors is None else min(total, run.request.max_mentors)

    def _process(self, run: RunState) -> None:
        with ThreadPoolExecutor(self.settings.job_concurrency, thread_name_prefix="pause") as pool:
            while limit := run.page_limit(self.settings.job_page_size):
                page = self._retrying(
                    functools.partial(self.store.expired_active_mentors, run.after, limit, run.scope.organization_ids)
                )
                if not page:
                    return
                run.after = page[-1].cursor
                run.summary.candidate_count += len(page)
                readable = []
                for row in page:
                    if isinstance(row, UnreadableCandidate):
                        run.tally(self._failed(run, row.id, "unreadable_row", row.problem))
                    else:
                        readable.append(row)
                if not run.request.dry_run:
                    self._pause_page(run, readable, pool)
                # One line per page: how far the run has come, how fast, and what is left.
                run.log(
                    logging.INFO, "job.progress", "certification expiry run in progress", **run.progress(self.clock())
                )
                # A short page is the last one: page_size never exceeds the server's
                # row cap, so it cannot be a page the server cut short.
                if run.out_of_time or len(page) < limit:
                    return

    def _pause_page(self, run: RunState, page: list[Candidate], pool: ThreadPoolExecutor) -> None:
        def attempt(candidate: Candidate) -> Outcome:
            if self.clock() >= run.deadline:
                return NotStarted()
            return self._pause_one(run, candidate)

        # Each task runs in a copy of this thread's context, so that its log lines
        # carry the incoming request's trace (Flask keeps the request in context
        # variables, which threads do not inherit).
        contexts = [contextvars.copy_context() for _ in page]
        paused: list[Paused] = []
        for outcome in pool.map(lambda context, candidate: context.run(attempt, candidate), contexts, page):
            run.tally(outcome)
            if isinstance(outcome, Paused):
                paused.append(outcome)
        if paused:
            # One line per page for the mentors it paused, not one per mentor: a line
            # per mentor was the largest cost the job added to the client's own
            # (bench/README.md). Skips and failures, the exceptions, have a line each.
            run.log(
                logging.INFO,
                "mentors.paused",
                "mentors paused: certification expired",
                count=len(paused),
                mentor_ids=[outcome.transition.mentor_id for outcome in paused],
                replayed_mentor_ids=[outcome.transition.mentor_id for outcome in paused if outcome.transition.replayed],
            )
        self.audit.flush(run)

    # --- one mentor -------------------------------------------------------------------

    def _pause_one(self, run: RunState, candidate: Candidate) -> Paused | Skipped | MentorError:
        """Never raises: whatever happens to one mentor stays with that mentor.

        Every attempt pauses the mentor as last read, under one request id, and
        failures worth it are retried. After a conflict (someone changed the mentor)
        the mentor is read again, so that the next attempt carries its new version;
        once it is no longer expired and active, it is skipped.
        """
        request_id = request_id_for(run.id, candidate.id)
        latest = candidate

        def pause_latest() -> Paused:
            nonlocal latest
            try:
                return Paused(latest, self.store.pause(latest, request_id, run.scope.actor_id))
            except StoreError as error:
                if error.kind is StoreErrorKind.CONFLICT:
                    refreshed = self.store.current(latest.id)
                    if refreshed is None:
                        raise StoreError(
                            StoreErrorKind.NOT_ALLOWED, error.code, "no longer active or expired"
                        ) from error
                    latest = refreshed
                raise

        try:
            return self._retrying(pause_latest)
        except StoreError as error:
            if error.kind in (StoreErrorKind.NOT_ALLOWED, StoreErrorKind.NOT_FOUND):
                return self._skipped(run, candidate, error.message)
            return self._failed(run, candidate.id, error.code, error.message)
        except Exception as error:  # one mentor's surprise must not end the run
            return self._failed(run, candidate.id, type(error).__name__, str(error))

    def _skipped(self, run: RunState, candidate: Candidate, reason: str) -> Skipped:
        run.log(
            logging.INFO, "mentor.skipped", "mentor skipped: no longer active", mentor_id=candidate.id, reason=reason
        )
        return Skipped()

    def _failed(self, run: RunState, mentor_id: uuid.UUID, code: str, message: str) -> MentorError:
        run.log(
            logging.ERROR, "mentor.failed", "could not pause mentor", mentor_id=mentor_id, code=code, reason=message
        )
        return MentorError(mentor_id=mentor_id, code=code, message=message)
