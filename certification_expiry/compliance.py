"""The compliance check: expired mentors still active, or a night with no successful run.

Either is a breach: an expired mentor still listed on a chapter website, now or
soon. Until the night's run is due, mentors who expired at the last midnight are
its backlog, not a breach (certification_compliance_status). A breach is one ERROR
line with `event: compliance.breach`, which the log-based metric and the alert
policy of the deployment watch.
"""

from __future__ import annotations

import logging

from .bodies import ComplianceReport
from .config import NightlySchedule
from .errors import DatabaseUnavailableError
from .log_events import log_event
from .ports import ComplianceStore, StoreError


def check_compliance(store: ComplianceStore, schedule: NightlySchedule, logger: logging.Logger) -> ComplianceReport:
    try:
        status = store.compliance_status(schedule)
    except StoreError as error:
        # Never "ok" when we could not look: the caller gets a clear non-2xx.
        log_event(
            logger,
            logging.ERROR,
            "compliance.failed",
            "could not check compliance: the database did not answer",
            code=error.code,
            reason=error.message,
        )
        raise DatabaseUnavailableError(
            "could not read the compliance status: the database did not answer", detail=str(error)
        ) from error

    reasons = []
    if status.overdue_count:
        reasons.append(
            f"{status.overdue_count} mentors whose certification expired before the night of {status.night}"
            " are still active"
        )
    if not status.recent_success:
        reasons.append(f"no full certification expiry run has succeeded since the night of {status.night} began")
    report = ComplianceReport(
        ok=not reasons,
        reasons=reasons,
        night=status.night,
        expired_active_count=status.expired_active_count,
        overdue_count=status.overdue_count,
        sample_mentor_ids=status.sample_mentor_ids,
        hidden_active_count=status.hidden_active_count,
        last_success_at=status.last_success_at,
    )
    log_event(
        logger,
        logging.INFO if report.ok else logging.ERROR,
        "compliance.ok" if report.ok else "compliance.breach",
        "certification compliance holds" if report.ok else "certification compliance breach: " + "; ".join(reasons),
        **report.model_dump(mode="json"),
    )
    return report
