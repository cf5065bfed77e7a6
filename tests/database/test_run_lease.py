"""The run lease under real concurrency: of simultaneous starts exactly one wins
(tests/contract/test_job_store.py holds the lease's rules for both stores)."""

from __future__ import annotations

import threading
from concurrent.futures import ThreadPoolExecutor

import psycopg
import pytest

from tests.builders import start_run


@pytest.fixture
def no_runs(database):
    with psycopg.connect(database.dsn, autocommit=True) as conn:
        conn.execute("delete from public.certification_expiry_runs")
        yield conn
        conn.execute("delete from public.certification_expiry_runs")


def test_of_twenty_simultaneous_starts_exactly_one_takes_the_lease(database, no_runs):
    barrier = threading.Barrier(20)

    def race(_: int) -> str:
        with psycopg.connect(database.dsn, autocommit=True) as conn:
            barrier.wait(timeout=30)
            try:
                start_run(conn)
            except psycopg.Error as error:
                return error.sqlstate or "?"
            return "started"

    with ThreadPoolExecutor(20) as pool:
        outcomes = sorted(pool.map(race, range(20)))
    assert outcomes == ["PT409"] * 19 + ["started"]
    assert no_runs.execute("select count(*) from public.certification_expiry_runs").fetchone() == (1,)
