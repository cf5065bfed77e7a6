"""How close a run of the job comes to what the database and the network allow.

Every target is a ratio of figures measured side by side in the same run, never
an absolute time: the machine is shared and noisy.
"""

from __future__ import annotations

import json
import math
import multiprocessing
import os
import resource
import statistics
import subprocess
import sys
import time
import uuid
from dataclasses import dataclass

import psycopg
import psycopg.sql

from bench.gateway_throughput import _direct_client, calls_per_second, make_mentors
from bench.harness import BenchStack, bench_stack, job_settings, run_job, seed_expired
from bench.results import record
from local_supabase.ephemeral import throwaway_cluster
from local_supabase.postgres import PROJECT_ROOT
from local_supabase.request_context import REQUEST_CONTEXT_SQL, request_context_params

LATENCY_MS = 20


@dataclass(frozen=True)
class Sizes:
    limit: int
    latency: int
    sweep: int
    memory_small: int
    memory_large: int
    scale_small: int
    scale_large: int
    cold_start_repeats: int


FULL = Sizes(5000, 2000, 1000, 1000, 100_000, 10_000, 1_000_000, 5)
QUICK = Sizes(300, 150, 100, 100, 1000, 2_000, 20_000, 2)


def limit(stack: BenchStack, sizes: Sizes) -> None:
    """Job throughput against the same transitions made directly over psycopg."""
    seed_expired(stack.cluster.dsn, sizes.limit)
    summary, seconds = run_job(stack.url)
    job_rate = summary.paused_count / seconds
    direct_rates = {}
    with multiprocessing.Pool(16) as pool:
        for clients in (4, 8, 16):
            mentors = make_mentors(stack.cluster.dsn, sizes.limit)
            direct_rates[clients] = calls_per_second(pool, _direct_client, stack.cluster.dsn, mentors, clients)
    best = max(direct_rates, key=direct_rates.get)
    ratio = job_rate / direct_rates[best]
    record(
        "limit",
        {
            "mentors": sizes.limit,
            "job_paused_per_s": round(job_rate),
            "direct_per_s_best": round(direct_rates[best]),
            "direct_best_clients": best,
            "ratio": round(ratio, 3),
        },
        target="job throughput >= 50% of direct psycopg at its best concurrency",
        met=ratio >= 0.5,
    )


def latency_hiding_and_sequential(stack: BenchStack, sizes: Sizes) -> None:
    """20 ms added to every request: the default settings against the ideal and the plain loop."""
    settings = job_settings(stack.url)
    n = sizes.latency
    stack.faults(latency_ms=LATENCY_MS)
    try:
        seed_expired(stack.cluster.dsn, n)
        stack.reset_request_count()
        summary, concurrent_seconds = run_job(stack.url)
        requests = stack.request_count()
        seed_expired(stack.cluster.dsn, n)
        _, sequential_seconds = run_job(stack.url, job_concurrency=1)
    finally:
        stack.faults()
    assert summary.paused_count == n, summary

    pages = n // settings.job_page_size + 1
    chunks = math.ceil(n / settings.job_audit_chunk_size)
    ideal = (n / settings.job_concurrency + pages + chunks + 2) * LATENCY_MS / 1000
    hiding = ideal / concurrent_seconds
    record(
        "latency_hiding",
        {
            "mentors": n,
            "latency_ms": LATENCY_MS,
            "concurrency": settings.job_concurrency,
            "ideal_s": round(ideal, 2),
            "measured_s": round(concurrent_seconds, 2),
            "ratio": round(hiding, 3),
        },
        target="ideal (N x 20 ms / concurrency + paging and audit requests) / measured >= 0.8",
        met=hiding >= 0.8,
    )
    speedup = sequential_seconds / concurrent_seconds
    record(
        "against_sequential",
        {
            "mentors": n,
            "sequential_s": round(sequential_seconds, 2),
            "default_s": round(concurrent_seconds, 2),
            "speedup": round(speedup, 1),
        },
        target="the default settings >= 10x faster than concurrency 1",
        met=speedup >= 10,
    )
    bound = n + math.ceil(n / settings.job_page_size) + chunks + 5
    record(
        "requests",
        {"mentors": n, "requests": requests, "bound": bound},
        target="HTTP requests <= N + ceil(N/page) + ceil(N/chunk) + 5",
        met=requests <= bound,
    )


def concurrency_sweep(stack: BenchStack, sizes: Sizes) -> None:
    """How the wall time of a run falls with concurrency at 20 ms per request: the
    figure behind JOB_CONCURRENCY's default and the choice of threads over asyncio."""
    stack.faults(latency_ms=LATENCY_MS)
    times = {}
    try:
        for concurrency in (4, 8, 16, 32):
            seed_expired(stack.cluster.dsn, sizes.sweep)
            _, times[concurrency] = run_job(stack.url, job_concurrency=concurrency)
    finally:
        stack.faults()
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


def _peak_rss_child(url: str, queue: multiprocessing.Queue) -> None:
    cpu_before = time.process_time()
    summary, _ = run_job(url)
    response = json.dumps(summary.model_dump(mode="json"))  # the HTTP answer is part of the cost
    cpu_seconds = time.process_time() - cpu_before  # every thread of this process: the job's own CPU
    usage = resource.getrusage(resource.RUSAGE_SELF)
    queue.put((summary.paused_count, usage.ru_maxrss, len(response), cpu_seconds))


def memory(stack: BenchStack, sizes: Sizes) -> None:
    """Peak RSS of a fresh process running the job, at a small and a large run, and its
    CPU time per mentor (what a function's CPU allotment must serve)."""
    context = multiprocessing.get_context("spawn")
    peaks: dict[int, float] = {}
    sizes_of_response: dict[int, int] = {}
    cpu_ms_per_mentor: dict[int, float] = {}
    for count in (sizes.memory_small, sizes.memory_large):
        seed_expired(stack.cluster.dsn, count)
        queue = context.Queue()
        child = context.Process(target=_peak_rss_child, args=(stack.url, queue))
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
            # The input of the README's sizing table: CPU-seconds per mentor, at the large run.
            f"cpu_ms_per_mentor_at_{sizes.memory_large}": round(cpu_ms_per_mentor[sizes.memory_large], 3),
            "growth_mib": round(growth, 1),
        },
        target=f"growth from {sizes.memory_small} to {sizes.memory_large} mentors <= 25 MiB",
        met=growth <= 25,
    )


_COLD_START = """
import json, socket, sys, time
connects = []
original = socket.socket.connect
socket.socket.connect = lambda self, address: (connects.append(address), original(self, address))[1]
started = time.perf_counter()
import functions_framework
framework = time.perf_counter() - started
if sys.argv[1] == "main":
    functions_framework.create_app(target="certification_expiry_job", source="main.py")
    from certification_expiry import runtime
    assert runtime._runtime is None, "a client was built at import"
total = time.perf_counter() - started
print(json.dumps({"framework": framework, "total": total, "connects": len(connects)}))
"""


def cold_start(sizes: Sizes) -> None:
    """Importing main and building the app, against importing functions-framework alone."""

    def measure(what: str) -> dict:
        output = subprocess.run(
            [sys.executable, "-c", _COLD_START, what],
            cwd=PROJECT_ROOT,
            # main.py reads its settings at import; no request is ever made with them.
            env={**os.environ, "SUPABASE_URL": "http://127.0.0.1:9", "SUPABASE_SERVICE_ROLE_KEY": "cold-start"},
            capture_output=True,
            text=True,
            check=True,
        ).stdout
        return json.loads(output)

    framework_alone = [measure("framework")["total"] for _ in range(sizes.cold_start_repeats)]
    with_main = [measure("main") for _ in range(sizes.cold_start_repeats)]
    ratio = statistics.median(r["total"] for r in with_main) / statistics.median(framework_alone)
    connects = sum(r["connects"] for r in with_main)
    record(
        "cold_start",
        {
            "framework_alone_ms": round(statistics.median(framework_alone) * 1000),
            "main_and_app_ms": round(statistics.median(r["total"] for r in with_main) * 1000),
            "ratio": round(ratio, 2),
            "connections_at_import": connects,
        },
        target="ratio <= 2.5; no network and no client at import",
        met=ratio <= 2.5 and connects == 0,
    )


FIRST_PAGE = (
    "select id, organization_id, status_version, certification_expiry_date from public.expired_active_mentors"
    " order by certification_expiry_date, id limit 500"
)
INDEX = "peer_mentors_active_certification_expiry_idx"
VIEWS_READ_BY_ORGANISATION = ("listed_peer_mentors", "certification_expiry_pauses")


def _first_page_ms(conn: psycopg.Connection) -> tuple[float, bool]:
    plan = "\n".join(row[0] for row in conn.execute("explain " + FIRST_PAGE))
    timings = []
    for _ in range(30):
        started = time.perf_counter()
        conn.execute(FIRST_PAGE).fetchall()
        timings.append(time.perf_counter() - started)
    return statistics.median(timings) * 1000, INDEX in plan


def _audit_the_expired(conn: psycopg.Connection) -> None:
    """A history row and an audit row for every expired mentor, as one run would leave them."""
    run = conn.execute(
        "insert into public.certification_expiry_runs (id, trigger, status, finished_at, lease_expires_at)"
        " values (gen_random_uuid(), 'scheduled', 'succeeded', now(), now()) returning id"
    ).fetchone()[0]
    conn.execute(
        "with paused as ("
        "  insert into public.mentor_status_history (mentor_id, old_status, new_status, reason)"
        "  select id, 'active', 'paused', 'certification_expired' from public.expired_active_mentors"
        "  returning id, mentor_id)"
        " insert into public.certification_expiry_audit (job_run_id, mentor_id, old_status, new_status, history_id)"
        " select %s, mentor_id, 'active', 'paused', id from paused",
        (run,),
    )
    conn.execute("vacuum analyze public.mentor_status_history, public.certification_expiry_audit")


def _organisation_read_uses_indexes(conn: psycopg.Connection, view: str) -> bool:
    """One organisation's rows of a view, as a chapter website or a coordinator reads them."""
    (organization,) = conn.execute(
        "select organization_id from public.certification_expiry_audit a"
        " join public.peer_mentors m on m.id = a.mentor_id limit 1"
    ).fetchone()
    query = psycopg.sql.SQL("explain select * from public.{} where organization_id = {}")
    rows = conn.execute(query.format(psycopg.sql.Identifier(view), psycopg.sql.Literal(organization)))
    plan = "\n".join(row[0] for row in rows)
    return "Index" in plan and "Seq Scan" not in plan


def database_scale(sizes: Sizes) -> None:
    """The job's first page at a small and a large table, 1% of the large one expired.

    The small table gets enough expired mentors for a full first page too, so
    that both pages return the same 500 rows and only the table size differs.
    """
    with throwaway_cluster() as cluster, psycopg.connect(cluster.dsn, autocommit=True) as conn:
        results = {}
        for total, expired in ((sizes.scale_small, 1000), (sizes.scale_large, sizes.scale_large // 100)):
            conn.execute("truncate public.peer_mentors cascade")
            conn.execute(
                "insert into public.peer_mentors (organization_id, status, certification_expiry_date)"
                " select gen_random_uuid(), case when n %% 10 = 0 then 'paused' else 'active' end,"
                "   case when n <= %s then current_date - 1 - n %% 365 else current_date + n %% 700 end"
                " from generate_series(1, %s) n",
                (expired, total),
            )
            conn.execute("vacuum analyze public.peer_mentors")
            results[total] = _first_page_ms(conn)
        _audit_the_expired(conn)  # at the large size
        reads = {view: _organisation_read_uses_indexes(conn, view) for view in VIEWS_READ_BY_ORGANISATION}
    (small_ms, small_index), (large_ms, large_index) = results[sizes.scale_small], results[sizes.scale_large]
    ratio = large_ms / small_ms
    record(
        "database_scale",
        {
            f"first_page_ms_at_{sizes.scale_small}": round(small_ms, 3),
            f"first_page_ms_at_{sizes.scale_large}": round(large_ms, 3),
            "ratio": round(ratio, 2),
            "plan_uses_index": small_index and large_index,
            **{f"{view}_plan_uses_index_at_{sizes.scale_large}": uses for view, uses in reads.items()},
        },
        target=f"ratio <= 3 and the plan uses {INDEX}; one organisation's rows of each view by index",
        met=ratio <= 3 and small_index and large_index and all(reads.values()),
    )


def _read_as(conn: psycopg.Connection, user: str, query: str) -> tuple[float, str]:
    """Median milliseconds of `query` run as this signed-in user, as PostgREST runs it, and its plan."""
    claims = {"role": "authenticated", "sub": user}
    timings = []
    for _ in range(30):
        with conn.transaction(force_rollback=True):
            conn.execute(REQUEST_CONTEXT_SQL, request_context_params("authenticated", claims))
            started = time.perf_counter()
            conn.execute(query).fetchall()
            timings.append(time.perf_counter() - started)
    with conn.transaction(force_rollback=True):
        conn.execute(REQUEST_CONTEXT_SQL, request_context_params("authenticated", claims))
        plan = "\n".join(row[0] for row in conn.execute("explain " + query))
    return statistics.median(timings) * 1000, plan


def rls_scale(sizes: Sizes) -> None:
    """A coordinator's read of their organisation's 100 mentors, and a mentor's read of
    their own row, through row level security, at a small and a large table."""
    organization, coordinator, mentor = uuid.uuid4(), str(uuid.uuid4()), str(uuid.uuid4())
    reads = {
        "coordinator": (coordinator, "select id, full_name from public.peer_mentors"),
        "mentor": (mentor, "select id, full_name, status from public.peer_mentors"),
    }
    results: dict[int, dict[str, tuple[float, str]]] = {}
    with throwaway_cluster() as cluster, psycopg.connect(cluster.dsn, autocommit=True) as conn:
        conn.execute("insert into auth.users (id) values (%s), (%s)", (coordinator, mentor))
        conn.execute("insert into public.organization_coordinators values (%s, %s)", (organization, coordinator))
        for total in (sizes.scale_small, sizes.scale_large):
            conn.execute("truncate public.peer_mentors cascade")
            conn.execute(
                "insert into public.peer_mentors (organization_id, user_id, status)"
                " select case when n <= 100 then %s else gen_random_uuid() end,"
                "   case when n = 1 then %s::uuid end, 'active' from generate_series(1, %s) n",
                (organization, mentor, total),
            )
            conn.execute("vacuum analyze public.peer_mentors")
            results[total] = {who: _read_as(conn, user, query) for who, (user, query) in reads.items()}
    figures: dict[str, object] = {}
    met = True
    for who in reads:
        (small_ms, _), (large_ms, plan) = results[sizes.scale_small][who], results[sizes.scale_large][who]
        ratio = large_ms / small_ms
        indexed = "Index" in plan and "Seq Scan on peer_mentors" not in plan
        figures |= {
            f"{who}_ms_at_{sizes.scale_small}": round(small_ms, 3),
            f"{who}_ms_at_{sizes.scale_large}": round(large_ms, 3),
            f"{who}_ratio": round(ratio, 2),
            f"{who}_plan_uses_index": indexed,
        }
        met = met and ratio <= 3 and indexed
    record("rls_scale", figures, target="each read's ratio <= 3, its plan by index", met=met)


def run_all(sizes: Sizes) -> None:
    with bench_stack() as stack:
        limit(stack, sizes)
        latency_hiding_and_sequential(stack, sizes)
        concurrency_sweep(stack, sizes)
        memory(stack, sizes)
    cold_start(sizes)
    database_scale(sizes)
    rls_scale(sizes)
