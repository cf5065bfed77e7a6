"""The hosted roles' timeouts, met by the job: a mentor whose row someone else holds
locked past `lock_timeout` is retried, not failed.

Hosted projects set `lock_timeout` on `authenticator` (8 s), the role PostgREST logs
in as; here it is set the same way, shorter, on a cluster and gateway of this
module's own, so that the test need not wait 8 s. The lock is released by the job's
own back-off sleep, so the first attempt always meets the timeout and the retry
never does.
"""

from __future__ import annotations

import logging
import threading
import uuid
from collections.abc import Iterator

import psycopg
import pytest

from certification_expiry.bodies import JobRequest
from certification_expiry.job import CertificationExpiryJob
from certification_expiry.records import RunStatus, Trigger
from certification_expiry.run_state import RunScope
from certification_expiry.supabase_store import SupabaseMentorStore, client_factory
from local_supabase.ephemeral import Stack, running_gateway, throwaway_cluster
from tests.builders import create_mentor, days_from_today, value_of
from tests.fakes import job_settings


@pytest.fixture(scope="module")
def short_lock_timeout_stack() -> Iterator[Stack]:
    with throwaway_cluster() as cluster:
        with psycopg.connect(cluster.dsn, autocommit=True) as conn:
            conn.execute("alter role authenticator set lock_timeout = '200ms'")
        with running_gateway(cluster) as stack:
            yield stack


def test_a_mentor_locked_past_the_lock_timeout_is_retried_not_failed(short_lock_timeout_stack):
    stack = short_lock_timeout_stack
    with psycopg.connect(stack.database.dsn, autocommit=True) as conn:
        mentor_id = create_mentor(conn, uuid.uuid4(), expiry=days_from_today(-1))

    holder = psycopg.connect(stack.database.dsn)
    holder.execute("select 1 from public.peer_mentors where id = %s for update", (mentor_id,))
    released = threading.Event()
    back_offs: list[float] = []

    def sleep(seconds: float) -> None:
        back_offs.append(seconds)
        if not released.is_set():
            holder.rollback()
            released.set()

    settings = job_settings(supabase_url=stack.url, supabase_secret_key=stack.secret_key, job_concurrency=1)
    store = SupabaseMentorStore(client_factory(settings))
    job = CertificationExpiryJob(store, settings, logging.getLogger("test.hosted_timeouts"), sleep=sleep)
    try:
        summary = job.run(JobRequest(), RunScope(Trigger.MANUAL))
    finally:
        holder.close()

    assert released.is_set(), "the first attempt did not meet the lock timeout"
    assert (summary.status, summary.paused_count, summary.error_count) == (RunStatus.SUCCEEDED, 1, 0)
    with psycopg.connect(stack.database.dsn) as conn:
        assert value_of(conn, "select status from public.peer_mentors where id = %s", (mentor_id,)) == "paused"
