"""The run lease: one run at a time, idempotent on the run id, and a dead run's lease expires."""

from __future__ import annotations

import threading
import uuid
from concurrent.futures import ThreadPoolExecutor

import psycopg
import pytest

from tests.builders import SERVICE_ROLE, acting_as

START = "select public.start_certification_expiry_run(%s, 'scheduled', false, %s)"


@pytest.fixture
def no_runs(database):
    with psycopg.connect(database.dsn, autocommit=True) as conn:
        conn.execute("delete from public.certification_expiry_runs")
        yield conn
        conn.execute("delete from public.certification_expiry_runs")


def start(conn: psycopg.Connection, run_id: uuid.UUID, lease_seconds: int = 600) -> None:
    with acting_as(conn, SERVICE_ROLE):
        conn.execute(START, (run_id, lease_seconds))


def test_of_twenty_simultaneous_starts_exactly_one_takes_the_lease(database, no_runs):
    barrier = threading.Barrier(20)

    def race(_: int) -> str:
        with psycopg.connect(database.dsn, autocommit=True) as conn:
            barrier.wait(timeout=30)
            try:
                start(conn, uuid.uuid4())
            except psycopg.Error as error:
                return error.sqlstate or "?"
            return "started"

    with ThreadPoolExecutor(20) as pool:
        outcomes = sorted(pool.map(race, range(20)))
    assert outcomes == ["PT409"] * 19 + ["started"]
    assert no_runs.execute("select count(*) from public.certification_expiry_runs").fetchone() == (1,)


def test_starting_again_with_the_same_run_id_is_a_replay(no_runs):
    run_id = uuid.uuid4()
    start(no_runs, run_id)
    start(no_runs, run_id)  # the first answer was lost: asking again succeeds
    with pytest.raises(psycopg.Error) as excinfo:
        start(no_runs, uuid.uuid4())
    assert excinfo.value.sqlstate == "PT409"
