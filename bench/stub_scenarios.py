"""The job's own costs, measured against the Supabase API stub (stub_supabase.py).

On this machine the job, the local gateway and PostgreSQL would share two cores,
so figures taken against the local stack say more about the stand-in than about
the job. Here the stub has one core and the job the other, and every target is
a ratio of figures measured side by side in the same run.
"""

from __future__ import annotations

import contextlib
import http.client
import json
import math
import multiprocessing
import os
import resource
import statistics
import tempfile
import threading
import time
import uuid
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any, cast
from urllib.parse import urlsplit

from supabase import create_client

from bench.harness import Sizes, job_settings, run_job
from bench.results import record
from bench.stub_supabase import RunningStub, stub_supabase
from certification_expiry.ports import JobStore
from certification_expiry.request_ids import request_id_for
from local_supabase.keys import SECRET_KEY

LATENCY_MS = 20
RPC = "update_mentor_status"


def _pause_params(number: int) -> dict[str, object]:
    """The RPC's arguments as the job sends them."""
    mentor_id = uuid.UUID(int=number)
    return {
        "p_mentor_id": str(mentor_id),
        "p_new_status": "paused",
        "p_actor_id": None,
        "p_reason": "certification_expired",
        "p_expected_version": 0,
        "p_request_id": request_id_for(uuid.uuid4(), mentor_id),
    }


def _cpu_ms_per_call(calls: int, call: Callable[[int], object]) -> float:
    call(0)  # connected and warm, as the job's client is after its first page
    before = time.process_time()
    for number in range(1, calls + 1):
        call(number)
    return (time.process_time() - before) / calls * 1000


def _bare_supabase_ms(url: str, calls: int) -> float:
    """supabase-py as its README shows it: a client from the URL and a key, one rpc().execute() per call."""
    client = create_client(url, SECRET_KEY)
    return _cpu_ms_per_call(calls, lambda number: client.rpc(RPC, _pause_params(number)).execute())


def _http_client_ms(url: str, calls: int) -> float:
    """The floor: the same request and JSON answer over the standard library's http.client."""
    parts = urlsplit(url)
    connection = http.client.HTTPConnection(parts.hostname or "127.0.0.1", parts.port)
    headers = {"Content-Type": "application/json", "apikey": SECRET_KEY, "Authorization": f"Bearer {SECRET_KEY}"}

    def call(number: int) -> object:
        connection.request("POST", f"/rest/v1/rpc/{RPC}", json.dumps(_pause_params(number)), headers)
        return json.loads(connection.getresponse().read())

    return _cpu_ms_per_call(calls, call)


class ClockedStore:
    """A JobStore that forwards every call and adds up the CPU each one took on its
    own thread's clock: apart for the thread that runs the job and for its workers."""

    def __init__(self, store: JobStore) -> None:
        self._store = store
        self._job_thread = threading.current_thread()
        self._lock = threading.Lock()
        self.job_thread_seconds = 0.0
        self.worker_seconds = 0.0

    def __getattr__(self, name: str) -> Callable[..., Any]:
        method = getattr(self._store, name)

        def clocked(*args: Any, **kwargs: Any) -> Any:
            before = time.thread_time()
            try:
                return method(*args, **kwargs)
            finally:
                spent = time.thread_time() - before
                with self._lock:
                    if threading.current_thread() is self._job_thread:
                        self.job_thread_seconds += spent
                    else:
                        self.worker_seconds += spent

        return clocked


def _cpu_split(stub: RunningStub, n: int) -> dict[str, float]:
    """Where one run's CPU goes, per mentor: the profile behind client_cpu, from the
    threads' own CPU clocks rather than a sampling profiler's guess at which thread
    holds the GIL (bench/README.md)."""
    stores: list[ClockedStore] = []

    def clocked(store: JobStore) -> JobStore:
        stores.append(ClockedStore(store))
        return cast(JobStore, stores[-1])

    stub.configure(n)
    timed = run_job(stub.url, store_around=clocked)
    [store] = stores
    workers = timed.cpu_seconds - timed.main_thread_cpu_seconds
    split = {
        "workers_in_supabase_py": store.worker_seconds,  # the RPC, and a re-read after a conflict
        "workers_job": workers - store.worker_seconds,  # retries, request ids, the thread pool
        "job_thread_in_supabase_py": store.job_thread_seconds,  # pages, audit upserts, the run's calls
        "job_thread_job": timed.main_thread_cpu_seconds - store.job_thread_seconds,  # tallies, logs, audit rows
    }
    return {f"split_{part}_ms": round(seconds / n * 1000, 3) for part, seconds in split.items()}


def client_cpu(stub: RunningStub, sizes: Sizes) -> None:
    """CPU per mentor of a whole run against a bare supabase-py loop, both at 0 ms."""
    n = sizes.client_cpu
    job_ms, supabase_ms, floor_ms = [], [], []
    for _ in range(sizes.rounds):
        stub.configure(n)
        timed = run_job(stub.url)
        assert timed.summary.paused_count == n, timed.summary
        job_ms.append(timed.cpu_seconds / n * 1000)
        supabase_ms.append(_bare_supabase_ms(stub.url, n))
        floor_ms.append(_http_client_ms(stub.url, n))
    job, supabase, floor = (statistics.median(figures) for figures in (job_ms, supabase_ms, floor_ms))
    ratio = job / supabase
    record(
        "client_cpu",
        {
            "mentors": n,
            "rounds": sizes.rounds,
            "job_cpu_ms_per_mentor": round(job, 3),
            "supabase_py_cpu_ms_per_call": round(supabase, 3),
            "http_client_cpu_ms_per_call": round(floor, 3),
            "ratio": round(ratio, 2),
            **_cpu_split(stub, n),
        },
        target="job CPU per mentor <= 1.3 x a bare supabase-py rpc().execute() loop (medians of the rounds)",
        met=ratio <= 1.3,
    )


def latency_hiding_and_sequential(stub: RunningStub, sizes: Sizes) -> None:
    """20 ms on every request: the default settings against the ideal and the plain loop."""
    settings = job_settings(stub.url)
    n = sizes.latency
    stub.configure(n, latency_ms=LATENCY_MS)
    concurrent = run_job(stub.url)
    requests = stub.request_count()
    stub.configure(n, latency_ms=LATENCY_MS)
    sequential = run_job(stub.url, job_concurrency=1)
    assert concurrent.summary.paused_count == sequential.summary.paused_count == n

    pages = n // settings.job_page_size + 1
    chunks = math.ceil(n / settings.job_audit_chunk_size)
    # Two limits, both of this run: the latency bound (N x 20 ms over the threads, plus
    # the pages, the audit chunks and the lease, repair, count and finish one after
    # another), and the CPU floor (the run's own CPU: one Python process spends it on
    # one core at a time). The run can beat neither, so the one it reaches is the
    # larger; judging against the latency bound alone would fail a machine too slow
    # for it, whatever the code did.
    latency_bound = (n / settings.job_concurrency + pages + chunks + 4) * LATENCY_MS / 1000
    cpu_floor = concurrent.cpu_seconds
    limit = max(latency_bound, cpu_floor)
    hiding = limit / concurrent.seconds
    record(
        "latency_hiding",
        {
            "mentors": n,
            "latency_ms": LATENCY_MS,
            "concurrency": settings.job_concurrency,
            "latency_bound_s": round(latency_bound, 2),
            "cpu_floor_s": round(cpu_floor, 2),
            "limit_s": round(limit, 2),
            "limited_by": "latency" if latency_bound >= cpu_floor else "cpu",
            "measured_s": round(concurrent.seconds, 2),
            "ratio": round(hiding, 3),
        },
        target="the run's limit (the larger of its latency bound and its CPU floor) / measured >= 0.8",
        met=hiding >= 0.8,
    )
    speedup = sequential.seconds / concurrent.seconds
    allowed = sequential.seconds / limit
    record(
        "against_sequential",
        {
            "mentors": n,
            "sequential_s": round(sequential.seconds, 2),
            "default_s": round(concurrent.seconds, 2),
            "speedup": round(speedup, 1),
            "limit_speedup": round(allowed, 1),
            "of_limit": round(speedup / allowed, 3),
        },
        target="speedup over concurrency 1 / the speedup the run's limit allows >= 0.8",
        met=speedup / allowed >= 0.8,
    )
    bound = n + pages + chunks + 4
    record(
        "requests",
        {"mentors": n, "requests": requests, "bound": bound},
        target="HTTP requests <= N + (N // page + 1) + ceil(N / chunk) + 4",
        met=requests <= bound,
    )


def concurrency_sweep(stub: RunningStub, sizes: Sizes) -> None:
    """How the wall time of a run falls with concurrency at 20 ms per request: the
    figure behind JOB_CONCURRENCY's default and the choice of threads over asyncio."""
    times = {}
    for concurrency in (4, 8, 16, 32):
        stub.configure(sizes.sweep, latency_ms=LATENCY_MS)
        times[concurrency] = run_job(stub.url, job_concurrency=concurrency).seconds
    ideal = {c: sizes.sweep * LATENCY_MS / 1000 / c for c in times}
    record(
        "concurrency_sweep",
        {
            "mentors": sizes.sweep,
            **{f"seconds_at_{c}": round(t, 2) for c, t in times.items()},
            **{f"of_ideal_at_{c}": round(ideal[c] / t, 2) for c, t in times.items()},
        },
        target="informational: picks the default concurrency",
        met=True,
    )


def _peak_rss_child(url: str, queue: multiprocessing.Queue) -> None:  # type: ignore[type-arg]
    timed = run_job(url)
    response = json.dumps(timed.summary.model_dump(mode="json"))  # the HTTP answer is part of the cost
    usage = resource.getrusage(resource.RUSAGE_SELF)
    queue.put((timed.summary.paused_count, usage.ru_maxrss, len(response), timed.cpu_seconds))


def memory(stub: RunningStub, sizes: Sizes) -> None:
    """Peak RSS of a fresh process running the job, at a small and a large run, and its
    CPU time per mentor (what a function's CPU allotment must serve)."""
    context = multiprocessing.get_context("spawn")
    peaks: dict[int, float] = {}
    sizes_of_response: dict[int, int] = {}
    cpu_ms_per_mentor: dict[int, float] = {}
    for count in (sizes.memory_small, sizes.memory_large):
        stub.configure(count)
        queue = context.Queue()
        child = context.Process(target=_peak_rss_child, args=(stub.url, queue))
        child.start()
        paused, peak_kib, response_bytes, cpu_seconds = queue.get(timeout=1800)
        child.join()
        assert paused == count
        peaks[count] = peak_kib / 1024
        sizes_of_response[count] = response_bytes
        cpu_ms_per_mentor[count] = cpu_seconds / count * 1000
    growth = peaks[sizes.memory_large] - peaks[sizes.memory_small]
    record(
        "memory",
        {
            **{f"peak_rss_mib_at_{c}": round(p, 1) for c, p in peaks.items()},
            **{f"response_bytes_at_{c}": b for c, b in sizes_of_response.items()},
            # The input of the sizing table (docs/deploying.md): CPU-seconds per mentor, at the large run.
            f"cpu_ms_per_mentor_at_{sizes.memory_large}": round(cpu_ms_per_mentor[sizes.memory_large], 3),
            "growth_mib": round(growth, 1),
        },
        target=f"growth from {sizes.memory_small} to {sizes.memory_large} mentors <= 25 MiB",
        met=growth <= 25,
    )


@contextlib.contextmanager
def stub_and_job_apart() -> Iterator[RunningStub]:
    """The stub pinned to one core and this process (the job) to another, when there are two."""
    cores = sorted(os.sched_getaffinity(0))
    separate = len(cores) >= 2
    with (
        tempfile.TemporaryDirectory() as folder,
        stub_supabase(cores[-1] if separate else None, Path(folder) / "stub.log") as stub,
    ):
        if separate:
            os.sched_setaffinity(0, {cores[0]})
        try:
            yield stub
        finally:
            os.sched_setaffinity(0, set(cores))


def run_all(sizes: Sizes) -> None:
    with stub_and_job_apart() as stub:
        client_cpu(stub, sizes)
        latency_hiding_and_sequential(stub, sizes)
        concurrency_sweep(stub, sizes)
        memory(stub, sizes)
