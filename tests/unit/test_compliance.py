"""The compliance check's verdict, its answer and its one log line, from the
database's status: what the log-based metric and the alert policy read."""

from __future__ import annotations

import logging
import uuid
from collections.abc import Iterator
from datetime import UTC, date, datetime, time

import pytest

from certification_expiry.compliance import check_compliance
from certification_expiry.config import NightlySchedule
from certification_expiry.errors import DatabaseUnavailableError
from certification_expiry.ports import StoreError, StoreErrorKind
from certification_expiry.records import ComplianceStatus
from tests.log_capture import CapturedLines, captured

SCHEDULE = NightlySchedule(time(1, 15), grace_minutes=45)
NIGHT = date(2026, 12, 2)
SUCCESS = datetime(2026, 12, 2, 0, 20, tzinfo=UTC)
SAMPLE = [uuid.uuid4(), uuid.uuid4()]


class StatusStore:
    """The compliance port answering one status, or failing."""

    def __init__(self, status: ComplianceStatus | StoreError) -> None:
        self.status = status
        self.schedules: list[NightlySchedule] = []

    def compliance_status(self, schedule: NightlySchedule) -> ComplianceStatus:
        self.schedules.append(schedule)
        if isinstance(self.status, StoreError):
            raise self.status
        return self.status


LOGGER = logging.getLogger("test.compliance")


@pytest.fixture
def lines() -> Iterator[CapturedLines]:
    with captured(LOGGER) as handler:
        yield handler


def status(overdue: int = 0, recent_success: bool = True, expired: int = 0) -> ComplianceStatus:
    return ComplianceStatus(
        night=NIGHT,
        expired_active_count=expired,
        overdue_count=overdue,
        sample_mentor_ids=SAMPLE if overdue else [],
        hidden_active_count=expired,
        last_success_at=SUCCESS if recent_success else None,
        recent_success=recent_success,
    )


def test_no_overdue_mentor_and_last_nights_success_hold(lines):
    store = StatusStore(status(expired=3))  # expired at the last midnight: the coming run's backlog

    report = check_compliance(store, SCHEDULE, LOGGER)

    assert store.schedules == [SCHEDULE]
    assert (report.ok, report.reasons, report.night) == (True, [], NIGHT)
    assert (report.expired_active_count, report.overdue_count, report.hidden_active_count) == (3, 0, 3)
    assert report.last_success_at == SUCCESS
    [(severity, message, fields)] = lines.of("compliance.ok")
    assert (severity, message, fields["ok"]) == ("INFO", "certification compliance holds", True)


def test_overdue_mentors_and_a_missing_run_are_a_breach_each_with_its_reason(lines):
    report = check_compliance(StatusStore(status(overdue=2, recent_success=False, expired=5)), SCHEDULE, LOGGER)

    assert report.ok is False
    assert report.reasons == [
        "2 mentors whose certification expired before the night of 2026-12-02 are still active",
        "no full certification expiry run has succeeded since the night of 2026-12-02 began",
    ]
    assert (report.overdue_count, report.sample_mentor_ids, report.last_success_at) == (2, SAMPLE, None)
    [(severity, message, fields)] = lines.of("compliance.breach")
    assert (severity, message) == ("ERROR", "certification compliance breach: " + "; ".join(report.reasons))
    assert (fields["ok"], fields["overdue_count"], fields["night"]) == (False, 2, "2026-12-02")
    assert fields["sample_mentor_ids"] == [str(mentor) for mentor in SAMPLE]


@pytest.mark.parametrize(("overdue", "recent_success"), [(1, True), (0, False)])
def test_either_reason_alone_is_a_breach(lines, overdue, recent_success):
    report = check_compliance(StatusStore(status(overdue, recent_success)), SCHEDULE, LOGGER)
    assert report.ok is False
    assert len(report.reasons) == 1


def test_a_status_the_database_cannot_give_is_never_ok(lines):
    store = StatusStore(StoreError(StoreErrorKind.TRANSIENT, "57014", "canceling statement due to statement timeout"))

    with pytest.raises(DatabaseUnavailableError) as raised:
        check_compliance(store, SCHEDULE, LOGGER)

    assert raised.value.message == "could not read the compliance status: the database did not answer"
    assert "57014" in (raised.value.detail or "")
    assert lines.of("compliance.failed") == [
        (
            "ERROR",
            "could not check compliance: the database did not answer",
            {"code": "57014", "reason": "canceling statement due to statement timeout"},
        )
    ]
