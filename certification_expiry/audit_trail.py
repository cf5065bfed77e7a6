"""The job's audit trail: one certification_expiry_audit row for every pause a run
makes, written in chunks as the pages go, and the rows earlier runs could not write,
repaired at the start of the next."""

from __future__ import annotations

import functools
import logging

from tenacity import Retrying

from .ports import JobStore, StoreError
from .run_state import RunState


class AuditTrail:
    def __init__(self, store: JobStore, retrying: Retrying, chunk_size: int) -> None:
        self.store = store
        self.retrying = retrying
        self.chunk_size = chunk_size

    def repair(self, run: RunState) -> None:
        """Write the audit rows earlier runs could not: every transition the job made
        ends with its audit row, one run later at the latest."""
        try:
            repaired = self.retrying(self.store.repair_audit)
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

    def flush(self, run: RunState, everything: bool = False) -> None:
        """Write full chunks (all that is pending when `everything`), one request per chunk."""
        size = self.chunk_size
        while len(run.audit_pending) >= size or (everything and run.audit_pending):
            chunk, run.audit_pending = run.audit_pending[:size], run.audit_pending[size:]
            try:
                self.retrying(functools.partial(self.store.write_audit, chunk))
            except StoreError as error:
                # These transitions have no audit row until the next run's repair writes it.
                run.failed = True
                run.log(
                    logging.ERROR,
                    "audit.failed",
                    "audit rows could not be written: these transitions have no audit row",
                    mentor_ids=[row.mentor_id for row in chunk],
                    code=error.code,
                    reason=error.message,
                )
            else:
                run.log(logging.INFO, "audit.written", "audit rows written", rows=len(chunk))
