"""An in-memory store for the three ports (certification_expiry/ports.py), with
the database's rules and switches to make it fail.

tests/contract/ runs the same behaviour tests against it and against the real
store on the local stack, so a rule it gets wrong fails there, not in production.
"""

from __future__ import annotations

import itertools
import logging
import math
import uuid
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, time, timedelta
from typing import Any
from zoneinfo import ZoneInfo

from certification_expiry.bodies import JobSummary
from certification_expiry.config import NightlySchedule, Settings
from certification_expiry.job import CertificationExpiryJob
from certification_expiry.ports import StoreError, StoreErrorKind
from certification_expiry.records import (
    AuditRepair,
    AuditRow,
    Candidate,
    ComplianceStatus,
    PageCursor,
    Transition,
    Trigger,
    UnreadableCandidate,
)
from certification_expiry.request_ids import REQUEST_ID_PREFIX, request_id_for

OSLO = ZoneInfo("Europe/Oslo")
# certification_compliance_status's sample of expired active mentors.
SAMPLE_SIZE = 20


# A date PostgreSQL holds and Python's date cannot (until a constraint refuses it).
NEGATIVE_INFINITY = "-infinity"


def _position(expiry: date | str, mentor_id: uuid.UUID | str) -> tuple[int, date, str]:
    """The order of expired_active_mentors: '-infinity' before every date, then the id
    (PostgreSQL orders uuids by their bytes, which is their text's order)."""
    if expiry == NEGATIVE_INFINITY:
        return (0, date.min, str(mentor_id))
    return (1, date.fromisoformat(expiry) if isinstance(expiry, str) else expiry, str(mentor_id))


@dataclass
class FakeMentor:
    id: uuid.UUID
    expiry: date | str | None  # None: no certification date
    status: str = "active"
    version: int = 0
    organization_id: uuid.UUID = field(default_factory=uuid.uuid4)


@dataclass
class FakeRun:
    trigger: Trigger
    dry_run: bool
    actor_id: uuid.UUID | None
    organization_ids: tuple[uuid.UUID, ...] | None
    started_at: datetime
    lease_expires_at: datetime
    status: str = "running"
    finished_at: datetime | None = None
    lease_expired: bool = False
    summary: dict[str, Any] = field(default_factory=dict)


@dataclass
class FakeHistoryRow:
    id: int
    mentor_id: uuid.UUID
    request_id: str
    actor_id: uuid.UUID | None
    transition: Transition


def wall_clock() -> datetime:
    return datetime.now(UTC)


def transient(code: str = "ReadTimeout") -> StoreError:
    return StoreError(StoreErrorKind.TRANSIENT, code, "the network hiccuped")


class FakeStore:
    def __init__(self, mentors: Sequence[FakeMentor] = (), clock: Callable[[], datetime] = wall_clock) -> None:
        self.clock = clock
        self.mentors = {mentor.id: mentor for mentor in mentors}
        self.coordinators: dict[uuid.UUID, set[uuid.UUID]] = {}
        self.history: list[FakeHistoryRow] = []
        self.audit: dict[tuple[uuid.UUID, uuid.UUID], AuditRow] = {}
        self.runs: dict[uuid.UUID, FakeRun] = {}
        # Errors to raise, popped one per call, before the call does anything.
        self.pause_failures: dict[uuid.UUID, list[StoreError]] = {}
        self.audit_failures: list[StoreError] = []
        self.page_failures: list[StoreError] = []
        self.lease_held = False  # as if a run of another instance held the lease
        self.pause_calls: list[tuple[uuid.UUID, str, int]] = []
        self.audit_writes: list[list[AuditRow]] = []
        self.page_requests: list[int] = []

    @property
    def today(self) -> date:
        """Today in Oslo by the store's clock, as the database's certification_today() has it."""
        return self.clock().astimezone(OSLO).date()

    def add(self, count: int, **fields: Any) -> list[uuid.UUID]:
        """`count` new mentors; by default active, expired three days ago."""
        fields.setdefault("expiry", self.today - timedelta(days=3))
        new = [FakeMentor(uuid.uuid4(), **fields) for _ in range(count)]
        self.mentors.update({mentor.id: mentor for mentor in new})
        return [mentor.id for mentor in new]

    def _expired_before(self, mentor: FakeMentor, day: date) -> bool:
        return mentor.expiry is not None and _position(mentor.expiry, mentor.id) < _position(day, "")

    def _expired_active(self, mentor: FakeMentor, today: date) -> bool:
        return mentor.status == "active" and self._expired_before(mentor, today)

    def _in_order(self, organization_ids: Sequence[uuid.UUID] | None) -> list[FakeMentor]:
        today = self.today
        rows = [m for m in self.mentors.values() if self._expired_active(m, today)]
        if organization_ids is not None:
            rows = [m for m in rows if m.organization_id in organization_ids]
        return sorted(rows, key=lambda m: _position(m.expiry, m.id))  # type: ignore[arg-type]

    def _row(self, mentor: FakeMentor) -> Candidate | UnreadableCandidate:
        if mentor.expiry == NEGATIVE_INFINITY:
            cursor = PageCursor(NEGATIVE_INFINITY, mentor.id)
            return UnreadableCandidate(mentor.id, cursor, "certification_expiry_date: not a date Python can hold")
        return self._candidate(mentor)

    def _candidate(self, mentor: FakeMentor) -> Candidate:
        assert isinstance(mentor.expiry, date)
        return Candidate(
            id=mentor.id,
            organization_id=mentor.organization_id,
            status_version=mentor.version,
            certification_expiry_date=mentor.expiry,
        )

    # --- the job's port ---------------------------------------------------------------

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
        now = self.clock()
        for run in self.runs.values():
            # A run whose lease ran out was killed or crashed before it could finish.
            if run.status == "running" and run.lease_expires_at <= now:
                run.status, run.finished_at, run.lease_expired = "failed", now, True
        if run_id in self.runs and self.runs[run_id].status == "running":
            return  # the same run asking again: its first answer was lost
        scope = tuple(sorted(set(organization_ids))) if organization_ids is not None else None

        def covers(run: FakeRun) -> bool:
            """Whether a working run covers one of this run's organisations."""
            if scope is None:
                return run.organization_ids is None
            return run.organization_ids is None or bool(set(run.organization_ids) & set(scope))

        if self.lease_held or any(run.status == "running" and covers(run) for run in self.runs.values()):
            raise StoreError(StoreErrorKind.LEASE_HELD, "PT409", "another run covering these organisations is working")
        if scope is not None:
            recent = [
                run.started_at
                for run in self.runs.values()
                if run.organization_ids == scope
                and run.dry_run == dry_run
                and now - run.started_at < timedelta(seconds=coordinator_interval_seconds)
            ]
            if recent:
                wait = max(recent) + timedelta(seconds=coordinator_interval_seconds) - now
                raise StoreError(
                    StoreErrorKind.RATE_LIMITED,
                    "PT429",
                    "a run of this kind for these organisations started recently",
                    max(1, math.ceil(wait.total_seconds())),
                )
        if run_id in self.runs:
            raise StoreError(StoreErrorKind.PERMANENT, "22023", f"run id {run_id} was already used by a finished run")
        self.runs[run_id] = FakeRun(
            trigger,
            dry_run,
            actor_id,
            scope,
            started_at=now,
            lease_expires_at=now + timedelta(seconds=lease_seconds),
        )

    def finish_run(self, summary: JobSummary) -> None:
        run = self.runs.get(summary.job_run_id)
        if run is None:
            raise StoreError(
                StoreErrorKind.NOT_FOUND, "PT404", f"certification expiry run {summary.job_run_id} not found"
            )
        counts = summary.model_dump(
            include={"status", "candidate_count", "paused_count", "skipped_count", "error_count"}
        )
        if summary.paused_count + summary.skipped_count + summary.error_count > summary.candidate_count:
            raise StoreError(StoreErrorKind.PERMANENT, "23514", "more outcomes than candidates")
        if run.status != "running" and not run.lease_expired:
            # A replay of the same outcome is answered again; any other rewrite is refused.
            if run.summary == counts:
                return
            raise StoreError(
                StoreErrorKind.CONFLICT, "PT409", f"certification expiry run already finished {run.status}"
            )
        run.status, run.finished_at, run.lease_expired = summary.status.value, self.clock(), False
        run.summary = counts

    def expired_active_mentors(
        self, after: PageCursor | None, limit: int, organization_ids: Sequence[uuid.UUID] | None
    ) -> list[Candidate | UnreadableCandidate]:
        if self.page_failures:
            raise self.page_failures.pop(0)
        self.page_requests.append(limit)
        rows = self._in_order(organization_ids)
        if after is not None:
            start = _position(after.certification_expiry_date, after.id)
            rows = [m for m in rows if _position(m.expiry, m.id) > start]  # type: ignore[arg-type]
        return [self._row(m) for m in rows[:limit]]

    def count_expired_active(self, organization_ids: Sequence[uuid.UUID] | None) -> int:
        return len(self._in_order(organization_ids))

    def current(self, mentor_id: uuid.UUID) -> Candidate | None:
        mentor = self.mentors.get(mentor_id)
        return self._candidate(mentor) if mentor and self._expired_active(mentor, self.today) else None

    def pause(self, candidate: Candidate, request_id: str, actor_id: uuid.UUID | None) -> Transition:
        self.pause_calls.append((candidate.id, request_id, candidate.status_version))
        failures = self.pause_failures.get(candidate.id)
        if failures:
            raise failures.pop(0)
        mentor = self.mentors.get(candidate.id)
        if mentor is None:
            raise StoreError(StoreErrorKind.NOT_FOUND, "PT404", f"mentor {candidate.id} not found")
        for row in self.history:
            if row.mentor_id == mentor.id and row.request_id == request_id:
                return row.transition.model_copy(update={"replayed": True})
        if candidate.status_version != mentor.version:
            raise StoreError(StoreErrorKind.CONFLICT, "PT409", "stale version")
        if mentor.status != "active":
            raise StoreError(StoreErrorKind.NOT_ALLOWED, "P0001", f"cannot go from {mentor.status} to paused")
        mentor.status, mentor.version = "paused", mentor.version + 1
        transition = Transition(
            mentor_id=mentor.id,
            old_status="active",
            new_status="paused",
            status_version=mentor.version,
            history_id=len(self.history) + 1,
            changed_at=self.clock(),
            replayed=False,
        )
        self.history.append(FakeHistoryRow(transition.history_id, mentor.id, request_id, actor_id, transition))
        return transition

    def _made_by(self, row: FakeHistoryRow, run_id: uuid.UUID | None) -> bool:
        """The database's rule: credited to a run only when that run could have made it."""
        run = self.runs.get(run_id) if run_id else None
        organization = self.mentors[row.mentor_id].organization_id
        return (
            run is not None
            and not run.dry_run
            and row.transition.new_status == "paused"
            and row.transition.changed_at >= run.started_at
            and row.actor_id == run.actor_id
            and (run.organization_ids is None or organization in run.organization_ids)
        )

    def repair_audit(self) -> AuditRepair:
        audited = {row.history_id for row in self.audit.values()}
        repaired, skipped = 0, []
        for row in self.history:
            if not row.request_id.startswith(REQUEST_ID_PREFIX) or row.id in audited:
                continue
            run_id = run_id_of(row.request_id, row.mentor_id)
            if run_id is None or not self._made_by(row, run_id):
                skipped.append(row.id)
                continue
            if (run_id, row.mentor_id) not in self.audit:
                self.audit[(run_id, row.mentor_id)] = AuditRow(
                    job_run_id=run_id,
                    mentor_id=row.mentor_id,
                    certification_expiry_date=self.mentors[row.mentor_id].expiry,
                    old_status=row.transition.old_status,
                    new_status=row.transition.new_status,
                    history_id=row.id,
                )
                repaired += 1
        return AuditRepair(repaired=repaired, skipped=len(skipped), skipped_history_ids=skipped[:SAMPLE_SIZE])

    def write_audit(self, rows: Sequence[AuditRow]) -> None:
        if self.audit_failures:
            raise self.audit_failures.pop(0)
        self.audit_writes.append(list(rows))
        for row in rows:  # append-only: a row already there is kept as it was
            self.audit.setdefault((row.job_run_id, row.mentor_id), row)

    # --- the compliance port ----------------------------------------------------------

    def compliance_status(self, schedule: NightlySchedule) -> ComplianceStatus:
        now = self.clock().astimezone(OSLO)
        due = datetime.combine(now.date(), schedule.run_at, OSLO) + timedelta(minutes=schedule.grace_minutes)
        night = now.date() if now >= due else now.date() - timedelta(days=1)
        expired = self._in_order(None)
        overdue = [m for m in expired if self._expired_before(m, night)]
        full_runs = [
            run.finished_at
            for run in self.runs.values()
            if run.status == "succeeded" and not run.dry_run and run.organization_ids is None
        ]
        last = max((at for at in full_runs if at is not None), default=None)
        return ComplianceStatus(
            night=night,
            expired_active_count=len(expired),
            overdue_count=len(overdue),
            sample_mentor_ids=[m.id for m in overdue[:SAMPLE_SIZE]],
            # Active and not listed: exactly the expired active ones.
            hidden_active_count=len(expired),
            last_success_at=last,
            recent_success=last is not None and last >= datetime.combine(night, time(0), OSLO),
        )

    # --- the access port --------------------------------------------------------------

    def coordinated_organizations(self, user_id: uuid.UUID) -> list[uuid.UUID]:
        return sorted(self.coordinators.get(user_id, set()))


def job_settings(**overrides: Any) -> Settings:
    """Settings for a job over the fake store: small pages and chunks, so that a few
    mentors cross several of each."""
    values = {
        "supabase_url": "https://unused.invalid",
        "supabase_service_role_key": "service-key",
        "job_concurrency": 4,
        "job_page_size": 7,
        "job_audit_chunk_size": 10,
        **overrides,
    }
    return Settings(**values)


def run_id_of(request_id: str, mentor_id: uuid.UUID) -> uuid.UUID | None:
    """The run id inside one of this mentor's job request ids, or None if it is not one:
    what certification_expiry_request_run_id reads on the database's side."""
    if not request_id.startswith(REQUEST_ID_PREFIX):
        return None
    try:
        run_id = uuid.UUID(request_id.removeprefix(REQUEST_ID_PREFIX).partition(":")[0])
    except ValueError:
        return None
    return run_id if request_id == request_id_for(run_id, mentor_id) else None


class FakeClock:
    """A monotonic clock that moves only when a test moves it. Its origin is not zero,
    as a monotonic clock's is arbitrary: a reading taken for a duration fails here."""

    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


def make_job(
    store: FakeStore, logger: logging.Logger, clock: Callable[[], float] | None = None, **overrides: Any
) -> CertificationExpiryJob:
    """The job over this store with job_settings(**overrides); its back-off sleeps are
    recorded in `job.sleeps`, never slept."""
    sleeps: list[float] = []
    job = CertificationExpiryJob(
        store, job_settings(**overrides), logger, clock=clock or FakeClock(), sleep=sleeps.append
    )
    job.sleeps = sleeps  # type: ignore[attr-defined]
    return job


def fail(store: FakeStore, method: str, error: Exception, times: int | None = None) -> None:
    """`store.method` raises `error` on its first `times` calls (on every call when
    None), then does its work."""
    real = getattr(store, method)
    calls = itertools.count(1)

    def failing(*args: Any, **kwargs: Any) -> Any:
        if times is None or next(calls) <= times:
            raise error
        return real(*args, **kwargs)

    setattr(store, method, failing)
