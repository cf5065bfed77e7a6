"""The RPC's idempotency key for the job's pauses, defined once on the Python side.

The database defines the same prefix once (job_request_id_prefix), reserves it to
the service role and reads the run id back (certification_expiry_request_run_id),
which is how the audit repair credits a transition to its run;
tests/database/test_job_request_ids.py holds both sides to the same prefix and examples.
"""

from __future__ import annotations

import uuid

REQUEST_ID_PREFIX = "certification_expiry:"


def request_id_for(job_run_id: uuid.UUID, mentor_id: uuid.UUID) -> str:
    """The same for every attempt of this run on this mentor, so a retry is a replay."""
    return f"{REQUEST_ID_PREFIX}{job_run_id}:{mentor_id}"
