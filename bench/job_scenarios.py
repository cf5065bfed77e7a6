"""The job on the local stack, its cold start, and the database at scale.

Every target is a ratio of figures measured side by side in the same run, never
an absolute time: the machine is shared and noisy.
"""

from __future__ import annotations

import json
import multiprocessing
import os
import statistics
import subprocess
import sys
import time
import uuid

import psycopg
import psycopg.sql

from bench.gateway_throughput import CLIENTS, _gateway_client, calls_per_second, make_mentors
from bench.harness import BenchStack, Sizes, bench_stack, run_job, seed_expired
from bench.results import record
from local_supabase.ephemeral import throwaway_cluster
from local_supabase.request_context import REQUEST_CONTEXT_SQL, request_context_params
from tools.paths import PROJECT_ROOT


def end_to_end(stack: BenchStack, sizes: Sizes) -> None:
    """The job against the real local stack, beside the gateway's own RPC ceiling in the same run.

    Informational: on this machine the job, the gateway and PostgreSQL share the
    cores, so this says how the local stand-in bounds a run, not what production does.
    """
    n = sizes.end_to_end
    seed_expired(stack.cluster.dsn, n)
    timed = run_job(stack.url)
    assert timed.summary.paused_count == n, timed.summary
    port = int(stack.url.rsplit(":", 1)[1])
    with multiprocessing.Pool(CLIENTS) as pool:
        ceiling = calls_per_second(pool, _gateway_client, port, make_mentors(stack.cluster.dsn, n))
    job_rate = n / timed.seconds
    record(
        "end_to_end",
        {
            "mentors": n,
            "job_mentors_per_s": round(job_rate),
            "gateway_rpc_calls_per_s": round(ceiling),
            "ratio": round(job_rate / ceiling, 3),
        },
        target="informational: the local stack, not the product",
        met=True,
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

    framework_alone = [measure("framework")["total"] for _ in range(sizes.rounds)]
    with_main = [measure("main") for _ in range(sizes.rounds)]
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
        target="ratio <= 2.0; no network and no client at import",
        met=ratio <= 2.0 and connects == 0,
    )


FIRST_PAGE = (
    "select id, organization_id, status_version, certification_expiry_date from public.expired_active_mentors"
    " order by certification_expiry_date, id limit 500"
)
INDEX = "peer_mentors_active_certification_expiry_idx"
VIEWS_READ_BY_ORGANISATION = ("listed_peer_mentors", "certification_expiry_pauses", "certifications_expiring_soon")
EXPIRING_SOON_INDEX = "peer_mentors_listable_certification_expiry_idx"


def _median_ms_and_plan(conn: psycopg.Connection, query: str, rounds: int) -> tuple[float, str]:
    """The median milliseconds of reading every row of `query`, and its plan."""
    plan = "\n".join(row[0] for row in conn.execute("explain " + query))
    timings = []
    for _ in range(rounds):
        started = time.perf_counter()
        conn.execute(query).fetchall()
        timings.append(time.perf_counter() - started)
    return statistics.median(timings) * 1000, plan


def _expiring_soon_ms(conn: psycopg.Connection) -> tuple[float, bool]:
    """The whole 30-day window of certifications_expiring_soon, as an operator reads it, and
    whether its plan uses the index on the date."""
    ms, plan = _median_ms_and_plan(conn, "select * from public.certifications_expiring_soon", 10)
    return ms, EXPIRING_SOON_INDEX in plan


def _first_page_ms(conn: psycopg.Connection) -> tuple[float, bool]:
    ms, plan = _median_ms_and_plan(conn, FIRST_PAGE, 30)
    return ms, INDEX in plan


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
        soon_ms, soon_index = _expiring_soon_ms(conn)  # at the large size
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
            f"expiring_soon_ms_at_{sizes.scale_large}": round(soon_ms, 1),
            "expiring_soon_plan_uses_index": soon_index,
        },
        target=f"ratio <= 3 and the plan uses {INDEX}; one organisation's rows of each view by index;"
        f" the expiring-soon window by {EXPIRING_SOON_INDEX}",
        met=ratio <= 3 and small_index and large_index and all(reads.values()) and soon_index,
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
        end_to_end(stack, sizes)
    cold_start(sizes)
    database_scale(sizes)
    rls_scale(sizes)
