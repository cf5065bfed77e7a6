"""What the job benchmarks share: sizes, a stack, seeding, pinning, and one job run with the real store."""

from __future__ import annotations

import contextlib
import logging
import os
import tempfile
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import NamedTuple

import httpx
import psycopg

from certification_expiry.bodies import JobRequest, JobSummary
from certification_expiry.config import Settings
from certification_expiry.job import CertificationExpiryJob
from certification_expiry.ports import JobStore
from certification_expiry.records import Trigger
from certification_expiry.run_state import RunScope
from certification_expiry.structured_logging import configure_logging
from certification_expiry.supabase_store import SupabaseMentorStore, client_factory
from local_supabase.ephemeral import spawn_gateway, throwaway_cluster
from local_supabase.keys import DEFAULT_JWT_SECRET, SECRET_KEY, SigningKey, api_key
from local_supabase.postgres import Cluster, empty_the_tables, free_port

# The gateway's admin endpoints take the secret key.
ADMIN = {"apikey": SECRET_KEY}


@dataclass(frozen=True)
class Sizes:
    client_cpu: int
    latency: int
    sweep: int
    memory_small: int
    memory_large: int
    end_to_end: int
    scale_small: int
    scale_large: int
    rounds: int


FULL = Sizes(5000, 5000, 2000, 1000, 100_000, 5000, 10_000, 1_000_000, 5)
QUICK = Sizes(300, 150, 100, 100, 1000, 300, 2_000, 20_000, 2)


@dataclass(frozen=True)
class BenchStack:
    cluster: Cluster
    url: str

    def faults(self, **settings: object) -> None:
        httpx.put(f"{self.url}/_gateway/faults", json=settings, headers=ADMIN).raise_for_status()

    def reset_request_count(self) -> None:
        httpx.delete(f"{self.url}/_gateway/stats", headers=ADMIN).raise_for_status()

    def request_count(self) -> int:
        return httpx.get(f"{self.url}/_gateway/stats", headers=ADMIN).json()["total"]


@contextlib.contextmanager
def bench_stack() -> Iterator[BenchStack]:
    """A throwaway cluster and the gateway in its own process, as `make stack` runs it."""
    with throwaway_cluster() as cluster, tempfile.TemporaryDirectory() as folder:
        port = free_port()
        gateway = spawn_gateway(cluster, port, Path(folder) / "gateway.log", SigningKey.generate())
        try:
            yield BenchStack(cluster, f"http://127.0.0.1:{port}")
        finally:
            gateway.terminate()
            gateway.wait(timeout=10)


def seed_expired(dsn: str, count: int) -> None:
    """Exactly `count` expired active mentors and nothing else."""
    with psycopg.connect(dsn, autocommit=True) as conn:
        empty_the_tables(conn)
        conn.execute(
            "insert into public.peer_mentors (organization_id, status, certification_expiry_date)"
            " select gen_random_uuid(), 'active', current_date - 1 - n %% 300 from generate_series(1, %s) n",
            (count,),
        )
        conn.execute("analyze public.peer_mentors")


def job_settings(url: str, **overrides: object) -> Settings:
    return Settings(
        supabase_url=url,
        supabase_service_role_key=api_key(DEFAULT_JWT_SECRET, "service_role"),
        **overrides,
    )


class Timed(NamedTuple):
    summary: JobSummary
    seconds: float  # wall time of the run
    cpu_seconds: float  # CPU time of this whole process (every thread) during the run
    main_thread_cpu_seconds: float  # of which the thread that called run()


def run_job(url: str, store_around: Callable[[JobStore], JobStore] | None = None, **overrides: object) -> Timed:
    """One run, in this process, through supabase-py, on a store built first, as an
    instance builds it once, and not timed; `store_around` wraps the store.

    Log lines go to /dev/null: writing them is part of the cost, reading them is not.
    """
    settings = job_settings(url, **overrides)
    store: JobStore = SupabaseMentorStore(client_factory(settings))
    with open(os.devnull, "w") as sink:
        logger = configure_logging(sink)
        job = CertificationExpiryJob(store_around(store) if store_around else store, settings, logger)
        started, cpu_before, main_before = time.perf_counter(), time.process_time(), time.thread_time()
        summary = job.run(JobRequest(), RunScope(Trigger.MANUAL))
        timed = Timed(
            summary,
            time.perf_counter() - started,
            time.process_time() - cpu_before,
            time.thread_time() - main_before,
        )
        logging.getLogger(logger.name).handlers.clear()
    return timed
