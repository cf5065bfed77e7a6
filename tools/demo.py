"""`make run`: the job end to end on the local stack, as Cloud Scheduler would run it.

Expects `make stack` to have run (the Makefile does that first). Resets the demo
data from supabase/seed.sql, serves main.py with the functions-framework CLI,
POSTs to it with the secret key and Cloud Scheduler's headers, prints the
summary, and shows which mentors are now paused.
"""

from __future__ import annotations

import json
import os
import socket
import subprocess
import sys
import time

import httpx
import psycopg

from local_supabase.postgres import free_port
from local_supabase.stack import CLUSTER, ENV_FILE, reset_demo_data

# Supabase's current keys only: the secret key, and user tokens checked against the JWKS.
FUNCTION_ENV = ("SUPABASE_URL", "SUPABASE_SECRET_KEY")


def read_env_file() -> dict[str, str]:
    pairs = (line.split("=", 1) for line in ENV_FILE.read_text().splitlines() if "=" in line)
    return {name: value for name, value in pairs}


def wait_for_port(port: int, process: subprocess.Popen, timeout: float = 30) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise RuntimeError("functions-framework exited before serving")
        with socket.socket() as sock:
            if sock.connect_ex(("127.0.0.1", port)) == 0:
                return
        time.sleep(0.1)
    raise RuntimeError("functions-framework did not start listening")


def main() -> int:
    stack = read_env_file()
    reset_demo_data()
    print("Demo data loaded from supabase/seed.sql.\n")

    port = free_port()
    environment = {**os.environ, **{name: stack[name] for name in FUNCTION_ENV}}
    server = subprocess.Popen(
        [sys.executable, "-m", "functions_framework", "--target", "certification_expiry_job", "--port", str(port)],
        env=environment,
    )
    try:
        wait_for_port(port, server)
        response = httpx.post(
            f"http://127.0.0.1:{port}/",
            headers={
                "Authorization": f"Bearer {stack['SUPABASE_SECRET_KEY']}",
                "X-CloudScheduler-JobName": "certification-expiry-nightly",
                "X-CloudScheduler-ScheduleTime": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
            },
            timeout=120,
        )
    finally:
        server.terminate()
        server.wait(timeout=10)

    print(f"\nThe function answered HTTP {response.status_code}:")
    print(json.dumps(response.json(), indent=2))
    with psycopg.connect(CLUSTER.dsn) as conn:
        rows = conn.execute(
            "select m.full_name, m.certification_expiry_date, h.reason, a.job_run_id is not null as audited"
            " from public.peer_mentors m"
            " join public.mentor_status_history h on h.mentor_id = m.id"
            " left join public.certification_expiry_audit a on a.history_id = h.id"
            " where m.status = 'paused' and h.new_status = 'paused'"
            " order by m.full_name"
        ).fetchall()
    print("\nMentors now paused by the job (from the database):")
    for name, expiry, reason, audited in rows:
        print(f"  {name:<18} certification expired {expiry}  reason={reason}  audit row={'yes' if audited else 'no'}")
    print("\nThe local stack is still running; stop it with `make stack-down`.")
    return 0 if response.status_code == 200 else 1


if __name__ == "__main__":
    sys.exit(main())
