"""The local gateway is not the bottleneck.

update_mentor_status calls at 8 concurrent clients, made directly over psycopg and
through the gateway (HTTP, JWT, one transaction per request), in alternating
rounds in one run so that both see the same machine load. Target: the gateway
reaches at least 40% of the direct throughput.
"""

from __future__ import annotations

import os
import sys
import tempfile
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import httpx
import psycopg

from bench.results import record
from local_supabase.ephemeral import spawn_gateway, throwaway_cluster
from local_supabase.gateway.app import DEFAULT_JWT_SECRET
from local_supabase.keys import api_key
from local_supabase.postgres import free_port

CLIENTS = 8
TARGET = 0.40


def make_mentors(dsn: str, count: int) -> list[str]:
    with psycopg.connect(dsn, autocommit=True) as conn:
        rows = conn.execute(
            "insert into public.peer_mentors (organization_id, status)"
            " select gen_random_uuid(), 'active' from generate_series(1, %s) returning id",
            (count,),
        ).fetchall()
    return [str(row[0]) for row in rows]


def timed(calls: list[str], work_for_thread) -> float:
    """Calls per second for `calls` shared out to CLIENTS threads, each with its own connection."""
    chunks = [calls[i::CLIENTS] for i in range(CLIENTS)]
    barrier = threading.Barrier(CLIENTS + 1)
    with ThreadPoolExecutor(CLIENTS) as pool:
        futures = [pool.submit(work_for_thread, chunk, barrier) for chunk in chunks]
        barrier.wait()
        started = time.perf_counter()
        for future in futures:
            future.result()
    return len(calls) / (time.perf_counter() - started)


def main(calls_per_round: int, rounds: int) -> bool:
    with throwaway_cluster() as cluster, tempfile.TemporaryDirectory() as folder:
        port = free_port()
        gateway = spawn_gateway(cluster, port, Path(folder) / "gateway.log")
        url = f"http://127.0.0.1:{port}/rest/v1/rpc/update_mentor_status"
        key = api_key(DEFAULT_JWT_SECRET, "service_role")
        try:

            def direct(chunk: list[str], barrier: threading.Barrier) -> None:
                with psycopg.connect(cluster.dsn, autocommit=True) as conn:
                    barrier.wait()
                    for mentor in chunk:
                        conn.execute("select public.update_mentor_status(%s, 'paused')", (mentor,))

            def through_gateway(chunk: list[str], barrier: threading.Barrier) -> None:
                headers = {"apikey": key, "Authorization": f"Bearer {key}"}
                with httpx.Client(headers=headers, timeout=30) as client:
                    barrier.wait()
                    for mentor in chunk:
                        client.post(url, json={"p_mentor_id": mentor, "p_new_status": "paused"}).raise_for_status()

            direct_rates, gateway_rates = [], []
            for _ in range(rounds):
                direct_rates.append(timed(make_mentors(cluster.dsn, calls_per_round), direct))
                gateway_rates.append(timed(make_mentors(cluster.dsn, calls_per_round), through_gateway))
        finally:
            gateway.terminate()
            gateway.wait(timeout=10)

    best_direct, best_gateway = max(direct_rates), max(gateway_rates)
    ratio = best_gateway / best_direct
    record(
        "gateway_throughput",
        {
            "clients": CLIENTS,
            "calls_per_round": calls_per_round,
            "direct_calls_per_s": round(best_direct),
            "gateway_calls_per_s": round(best_gateway),
            "ratio": round(ratio, 3),
        },
        target=f"gateway >= {TARGET:.0%} of direct psycopg at {CLIENTS} clients",
        met=ratio >= TARGET,
    )
    return ratio >= TARGET


if __name__ == "__main__":
    quick = os.environ.get("BENCH_QUICK") == "1"
    met = main(calls_per_round=300 if quick else 3000, rounds=1 if quick else 3)
    sys.exit(0 if met or quick else 1)
