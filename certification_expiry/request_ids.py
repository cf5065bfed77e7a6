"""The RPC's idempotency key for the job's pauses, defined once on the Python side.

The database reserves the prefix to the service role and reads the run id back
(certification_expiry_request_run_id, in the job_request_ids migration), which is
how the audit repair credits a transition to its run;
tests/database/test_job_request_ids.py pins both sides to the same examples.
"""

from __future__ import annotations

import uuid

REQUEST_ID_PREFIX = "certification_expiry:"


def request_id_for(job_run_id: uuid.UUID, mentor_id: uuid.UUID) -> str:
    """The same for every attempt of this run on this mentor, so a retry is a replay."""
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
