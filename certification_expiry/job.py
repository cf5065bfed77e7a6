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

from .errors import DatabaseUnavailableError, LeaseHeldError, RunRateLimitedError
from .log_events import log_event
from .models import Candidate, JobRequest, JobSummary, MentorError, RunStatus, UnreadableCandidate
from .ports import JobStore, StoreError, StoreErrorKind
from .request_ids import request_id_for
from .run_state import NotStarted, Outcome, Paused, RunScope, RunState, Skipped

if TYPE_CHECKING:
    from .config import Settings


# Capped exponential backoff with full jitter between attempts, in seconds.
BACKOFF = wait_random_exponential(multiplier=0.2, max=5)
FINISH_RETRIES = 10


def _worth_retrying(error: BaseException) -> bool:
    return isinstance(error, StoreError) and error.kind in (StoreErrorKind.TRANSIENT, StoreErrorKind.CONFLICT)


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

    def _fail_run(self, run: RunState, message: str, code: str, reason: str) -> None:
        run.summary.status = RunStatus.FAILED
        run.log(logging.ERROR, "job.failed", message, code=code, reason=reason)

    def _finish(self, run: RunState) -> None:
        """Record the outcome, which releases the lease. Transient failures are
        retried; an unexpected error is recorded as a failed run, once more."""
        try:
            self._finish_retrying(self.store.finish_run, run.summary)
            return
        except StoreError as error:
            # The run row stays `running` until its lease expires, which the
            # compliance check reports; the response still tells what happened.
            self._fail_run(run, "could not record the run's outcome", error.code, error.message)
            return
        except Exception as error:
            self._fail_run(run, "recording the run's outcome failed unexpectedly", type(error).__name__, str(error))
        try:
            self._finish_retrying(self.store.finish_run, run.summary)
        except Exception as error:
            self._fail_run(run, "could not record the run's outcome", type(error).__name__, str(error))

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
            self._repair_audit(run)
            run.expected = self._count_candidates(run)
            self._process(run)
        except StoreError as error:
            # Reading the candidates failed for good: the run cannot go on.
            self._fail_run(run, "the run stopped: reading the candidates failed", error.code, error.message)
        except Exception as error:  # a bug, or an answer the store could not read
            self._fail_run(run, "the run stopped on an unexpected error", type(error).__name__, str(error))
        try:
            self._flush_audit(run, force=True)
        except Exception as error:  # what is left is written by the next run's repair
            self._fail_run(run, "the audit stopped on an unexpected error", type(error).__name__, str(error))
        run.settle(self.clock())
        self._finish(run)
        run.log(
            logging.ERROR if run.summary.status is RunStatus.FAILED else logging.INFO,
            "job.finished",
            f"certification expiry run {run.summary.status.value}",
            out_of_time=run.out_of_time,
            **run.summary.model_dump(mode="json", exclude={"job_run_id", "paused_mentor_ids", "errors"}),
        )
        return run.summary

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

    def _repair_audit(self, run: RunState) -> None:
        """Write the audit rows earlier runs could not: every transition the job made
        ends with its audit row, one run later at the latest."""
        try:
            repaired = self._retrying(self.store.repair_audit)
        except StoreError as error:
            # Not this run's own work: it goes on, and the next run tries again.
            run.log(
                logging.ERROR,
                "audit.failed",
                "could not repair missing audit rows",
                mentor_ids=[],
                code=error.code,
                reason=error.message,
            )
            return
        if repaired.repaired:
            run.log(
                logging.WARNING,
                "audit.repaired",
                "wrote audit rows missing from earlier runs",
                rows=repaired.repaired,
            )
        if repaired.skipped:
            # Transitions under the job's request-id prefix that no run made: written
            # before the prefix was reserved to the job, or by hand. Never audited.
            run.log(
                logging.WARNING,
                "audit.unattributed",
                "history rows carry the job's request-id prefix but no run made them: not audited",
                rows=repaired.skipped,
                history_ids=repaired.skipped_history_ids,
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
                self._progress(run)
                # A short page is the last one: page_size never exceeds the server's
                # row cap, so it cannot be a page the server cut short.
                if run.out_of_time or len(page) < limit:
                    return

    def _progress(self, run: RunState) -> None:
        """One line per page: how far the run has come, how fast, and what is left."""
        summary = run.summary
        elapsed = self.clock() - run.started
        rate = summary.candidate_count / elapsed if elapsed > 0 else 0.0
        left: dict[str, int] = {}
        if run.expected is not None:
            remaining = max(run.expected - summary.candidate_count, 0)
            left = {"remaining": remaining, "eta_s": round(remaining / rate) if rate else 0}
        run.log(
            logging.INFO,
            "job.progress",
            "certification expiry run in progress",
            processed=summary.candidate_count,
            paused=summary.paused_count,
            skipped=summary.skipped_count,
            errors=summary.error_count,
            elapsed_ms=int(elapsed * 1000),
            rate_per_s=round(rate, 1),
            **left,
        )

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
            self._log_paused(run, paused)
        self._flush_audit(run)

    def _log_paused(self, run: RunState, paused: list[Paused]) -> None:
        """One line per page for the mentors it paused, not one per mentor: a line per
        mentor was the largest cost the job added to the client's own (bench/README.md).
        Skips and failures, the exceptions, stay one line per mentor."""
        run.log(
            logging.INFO,
            "mentors.paused",
            "mentors paused: certification expired",
            count=len(paused),
            mentor_ids=[outcome.transition.mentor_id for outcome in paused],
            replayed_mentor_ids=[outcome.transition.mentor_id for outcome in paused if outcome.transition.replayed],
        )

    # --- one mentor -------------------------------------------------------------------

    def _pause_one(self, run: RunState, candidate: Candidate) -> Paused | Skipped | MentorError:
        """Never raises: whatever happens to one mentor stays with that mentor.

        Each attempt pauses with the version last read, under one request id. After
        a conflict (someone changed the mentor) it reads the mentor again before the
        next attempt, and skips it once it is no longer expired and active.
        """
        request_id = request_id_for(run.id, candidate.id)
        current = candidate
        try:
            for attempt in self._retrying:
                with attempt:
                    try:
                        transition = self.store.pause(current, request_id, run.scope.actor_id)
                    except StoreError as error:
                        if error.kind is StoreErrorKind.CONFLICT:
                            refreshed = self.store.current(current.id)
                            if refreshed is None:
                                return self._skipped(run, candidate, "no longer active or expired")
                            current = refreshed
                        raise
        except StoreError as error:
            if error.kind in (StoreErrorKind.NOT_ALLOWED, StoreErrorKind.NOT_FOUND):
                return self._skipped(run, candidate, error.message)
            return self._failed(run, candidate.id, error.code, error.message)
        except Exception as error:  # one mentor's surprise must not end the run
            return self._failed(run, candidate.id, type(error).__name__, str(error))
        return Paused(current, transition)

    def _skipped(self, run: RunState, candidate: Candidate, reason: str) -> Skipped:
        run.log(
            logging.INFO,
            "mentor.skipped",
            "mentor skipped: no longer active",
            mentor_id=candidate.id,
            reason=reason,
        )
        return Skipped(reason)

    def _failed(self, run: RunState, mentor_id: uuid.UUID, code: str, message: str) -> MentorError:
        run.log(
            logging.ERROR,
            "mentor.failed",
            "could not pause mentor",
            mentor_id=mentor_id,
            code=code,
            reason=message,
        )
        return MentorError(mentor_id=mentor_id, code=code, message=message)

    # --- the audit --------------------------------------------------------------------

    def _flush_audit(self, run: RunState, force: bool = False) -> None:
        """Write full chunks (all that is pending when `force`), one request per chunk."""
        size = self.settings.job_audit_chunk_size
        while len(run.audit_pending) >= size or (force and run.audit_pending):
            chunk, run.audit_pending = run.audit_pending[:size], run.audit_pending[size:]
            try:
                self._retrying(functools.partial(self.store.write_audit, chunk))
            except StoreError as error:
                missing = [row.mentor_id for row in chunk]
                run.audit_missing += missing
                run.log(
                    logging.ERROR,
                    "audit.failed",
                    "audit rows could not be written: these transitions have no audit row",
                    mentor_ids=missing,
                    code=error.code,
                    reason=error.message,
                )
                continue
            run.log(logging.INFO, "audit.written", "audit rows written", rows=len(chunk))
