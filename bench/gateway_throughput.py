"""The local gateway is not the bottleneck.

update_mentor_status calls from 8 concurrent clients, made directly over psycopg
and through the gateway (HTTP, JWT, one transaction per request), in alternating
rounds in one run so that both see the same machine load. Each client is its own
process with a light client (psycopg; the standard library's HTTP connection),
so that what is measured is the gateway and not the load generator's GIL.
Target: the gateway reaches at least 40% of the direct throughput.
"""

from __future__ import annotations

import http.client
import json
import time
from multiprocessing import Pool

import psycopg

from bench.harness import bench_stack
from bench.results import record
from local_supabase.keys import DEFAULT_JWT_SECRET, api_key

CLIENTS = 8
RPC_PATH = "/rest/v1/rpc/update_mentor_status"


def make_mentors(dsn: str, count: int) -> list[str]:
    with psycopg.connect(dsn, autocommit=True) as conn:
        rows = conn.execute(
            "insert into public.peer_mentors (organization_id, status)"
            " select gen_random_uuid(), 'active' from generate_series(1, %s) returning id",
            (count,),
        ).fetchall()
    return [str(row[0]) for row in rows]


def _wait_until(start_at: float) -> None:
    while time.time() < start_at:
        time.sleep(0.0005)


def _direct_client(args: tuple[str, list[str], float]) -> float:
    dsn, mentors, start_at = args
    with psycopg.connect(dsn, autocommit=True) as conn:
        _wait_until(start_at)
        for mentor in mentors:
            conn.execute("select public.update_mentor_status(%s, 'paused')", (mentor,))
    return time.time()


def _gateway_client(args: tuple[int, list[str], float]) -> float:
    port, mentors, start_at = args
    key = api_key(DEFAULT_JWT_SECRET, "service_role")
    headers = {"apikey": key, "Authorization": f"Bearer {key}", "Content-Type": "application/json"}
    connection = http.client.HTTPConnection("127.0.0.1", port)
    _wait_until(start_at)
    for mentor in mentors:
        connection.request("POST", RPC_PATH, json.dumps({"p_mentor_id": mentor, "p_new_status": "paused"}), headers)
        response = connection.getresponse()
        response.read()
        if response.status != 200:
            raise RuntimeError(f"gateway answered {response.status}")
    return time.time()


def calls_per_second(pool: Pool, client, target: object, mentors: list[str], clients: int = CLIENTS) -> float:
    """The mentors split over `clients` processes that start together; their calls per second."""
    start_at = time.time() + 0.5  # every client process connected and waiting
    finished = pool.map(client, [(target, mentors[i::clients], start_at) for i in range(clients)])
    return len(mentors) / (max(finished) - start_at)


def main(calls_per_round: int, rounds: int) -> None:
    with bench_stack() as stack, Pool(CLIENTS) as pool:
        port = int(stack.url.rsplit(":", 1)[1])
        direct_rates, gateway_rates = [], []
        for _ in range(rounds):
            mentors = make_mentors(stack.cluster.dsn, calls_per_round)
            direct_rates.append(calls_per_second(pool, _direct_client, stack.cluster.dsn, mentors))
            mentors = make_mentors(stack.cluster.dsn, calls_per_round)
            gateway_rates.append(calls_per_second(pool, _gateway_client, port, mentors))

    best_direct, best_gateway = max(direct_rates), max(gateway_rates)
    ratio = best_gateway / best_direct
    record(
        "gateway_throughput",
        {
            "clients": CLIENTS,
            "calls_per_round": calls_per_round,
            "rounds": rounds,
            "direct_calls_per_s": round(best_direct),
            "gateway_calls_per_s": round(best_gateway),
            "ratio": round(ratio, 3),
        },
        target=f"informational: the local stand-in against direct psycopg at {CLIENTS} clients",
        met=True,
    )


if __name__ == "__main__":
    main(calls_per_round=3000, rounds=3)
