"""An in-memory MentorStore with the RPC's rules, and switches to make it fail."""

from __future__ import annotations

import uuid
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, timedelta

from certification_expiry.job import run_id_of
from certification_expiry.mentor_store import StoreError, StoreErrorKind
from certification_expiry.models import AuditRepair, AuditRow, Candidate, JobSummary, Transition, Trigger

TODAY = date(2026, 11, 22)


@dataclass
class FakeMentor:
    id: uuid.UUID
    status: str = "active"
    expiry: date | None = TODAY - timedelta(days=3)
    version: int = 0
    organization_id: uuid.UUID = field(default_factory=uuid.uuid4)


def transient(code: str = "ReadTimeout") -> StoreError:
    return StoreError(StoreErrorKind.TRANSIENT, code, "the network hiccuped")


class FakeStore:
    def __init__(self, mentors: Sequence[FakeMentor] = ()) -> None:
        self.mentors = {mentor.id: mentor for mentor in mentors}
        self.history: list[dict] = []
        self.audit: dict[tuple[uuid.UUID, uuid.UUID], AuditRow] = {}
        self.runs: dict[uuid.UUID, dict] = {}
        # Errors to raise, popped one per call, before the call does anything.
        self.pause_failures: dict[uuid.UUID, list[StoreError]] = {}
        self.audit_failures: list[StoreError] = []
        self.page_failures: list[StoreError] = []
        self.lease_held = False
        self.pause_calls: list[tuple[uuid.UUID, str, int]] = []
        self.audit_writes: list[list[AuditRow]] = []
        self.page_requests: list[int] = []

    def add(self, count: int, **fields) -> list[uuid.UUID]:
        new = [FakeMentor(uuid.uuid4(), **fields) for _ in range(count)]
        self.mentors.update({mentor.id: mentor for mentor in new})
        return [mentor.id for mentor in new]

    def _expired_active(self, mentor: FakeMentor) -> bool:
        return mentor.status == "active" and mentor.expiry is not None and mentor.expiry < TODAY

    def _candidate(self, mentor: FakeMentor) -> Candidate:
        return Candidate(
            id=mentor.id,
            organization_id=mentor.organization_id,
            status_version=mentor.version,
            certification_expiry_date=mentor.expiry,
        )

    def start_run(self, run_id, trigger: Trigger, dry_run, lease_seconds, actor_id, organization_ids) -> None:
        if self.lease_held:
            raise StoreError(StoreErrorKind.LEASE_HELD, "PT409", "run x holds the lease")
        self.runs[run_id] = {"status": "running", "trigger": trigger, "dry_run": dry_run}

    def finish_run(self, summary: JobSummary) -> None:
        self.runs[summary.job_run_id].update(summary.model_dump())

    def expired_active_mentors(self, after, limit, organization_ids) -> list[Candidate]:
        if self.page_failures:
            raise self.page_failures.pop(0)
        self.page_requests.append(limit)
        rows = sorted(
            (m for m in self.mentors.values() if self._expired_active(m)), key=lambda m: (m.expiry, str(m.id))
        )
        if organization_ids is not None:
            rows = [m for m in rows if m.organization_id in organization_ids]
        if after is not None:
            rows = [m for m in rows if (m.expiry, str(m.id)) > (after.certification_expiry_date, str(after.id))]
        return [self._candidate(m) for m in rows[:limit]]

    def count_expired_active(self, organization_ids) -> int:
        return sum(
            1
            for m in self.mentors.values()
            if self._expired_active(m) and (organization_ids is None or m.organization_id in organization_ids)
        )

    def current(self, mentor_id) -> Candidate | None:
        mentor = self.mentors.get(mentor_id)
        return self._candidate(mentor) if mentor and self._expired_active(mentor) else None

    def pause(self, candidate: Candidate, request_id: str, actor_id) -> Transition:
        self.pause_calls.append((candidate.id, request_id, candidate.status_version))
        failures = self.pause_failures.get(candidate.id)
        if failures:
            raise failures.pop(0)
        mentor = self.mentors[candidate.id]
        for row in self.history:
            if row["mentor_id"] == mentor.id and row["request_id"] == request_id:
                return Transition(**{**row["transition"], "replayed": True})
        if candidate.status_version != mentor.version:
            raise StoreError(StoreErrorKind.CONFLICT, "PT409", "stale version")
        if mentor.status != "active":
            raise StoreError(StoreErrorKind.NOT_ALLOWED, "P0001", f"cannot go from {mentor.status} to paused")
        mentor.status, mentor.version = "paused", mentor.version + 1
        transition = {
            "mentor_id": mentor.id,
            "old_status": "active",
            "new_status": "paused",
            "status_version": mentor.version,
            "history_id": len(self.history) + 1,
            "changed_at": datetime.now(UTC),
            "replayed": False,
        }
        self.history.append({"mentor_id": mentor.id, "request_id": request_id, "transition": transition})
        return Transition(**transition)

    def repair_audit(self) -> AuditRepair:
        """The database's rule: credited to a run only when that run exists and is real."""
        audited = {row.history_id for row in self.audit.values()}
        repaired, skipped = 0, []
        for row in self.history:
            transition = row["transition"]
            if transition["history_id"] in audited:
                continue
            run_id = run_id_of(row["request_id"], row["mentor_id"])
            if run_id is None or run_id not in self.runs or self.runs[run_id]["dry_run"]:
                skipped.append(transition["history_id"])
                continue
            self.audit[(run_id, row["mentor_id"])] = AuditRow(
                job_run_id=run_id,
                mentor_id=row["mentor_id"],
                certification_expiry_date=self.mentors[row["mentor_id"]].expiry,
                old_status=transition["old_status"],
                new_status=transition["new_status"],
                history_id=transition["history_id"],
            )
            repaired += 1
        return AuditRepair(repaired=repaired, skipped=len(skipped), skipped_history_ids=skipped[:20])

    def write_audit(self, rows: Sequence[AuditRow]) -> None:
        if self.audit_failures:
            raise self.audit_failures.pop(0)
        self.audit_writes.append(list(rows))
        for row in rows:
            self.audit[(row.job_run_id, row.mentor_id)] = row
