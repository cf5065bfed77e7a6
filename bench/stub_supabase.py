"""A stub of the Supabase API for the benchmarks: canned, well-formed answers after a set latency.

Not a test double for correctness (tests/ hold the job to the real database):
it answers exactly the requests a run makes — the lease calls, the audit repair,
the candidate count and pages, the RPC and the audit upsert — with as little
work of its own as an ASGI app under uvicorn allows, so that what the benchmarks
measure is the job. It runs in its own process, pinned to one core
(`taskset`), and the job to the other.

The stub serves `mentors` expired active mentors, all expiring the same day,
with ids 1..N as UUIDs, so a keyset page is an index into that range.
`PUT /_stub {"mentors": N, "latency_ms": L}` sets both and clears the counters;
`GET /_stub` returns the request count.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import subprocess
import sys
import uuid
from collections.abc import Awaitable, Callable, Iterator
from datetime import UTC, datetime
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs

import httpx

from local_supabase.ephemeral import wait_until
from local_supabase.postgres import free_port
from tools.paths import PROJECT_ROOT

EXPIRY = "2026-01-01"
Send = Callable[[dict[str, Any]], Awaitable[None]]
Receive = Callable[[], Awaitable[dict[str, Any]]]


class StubSupabase:
    def __init__(self) -> None:
        self.mentors = 0
        self.latency = 0.0
        self.requests = 0
        self.history_id = 0

    def _page(self, query: dict[str, list[str]]) -> list[dict[str, Any]]:
        limit = int(query["limit"][0])
        start = 0
        # The job's keyset filter: (certification_expiry_date, id) > (D, I).
        for clause in query.get("or", []):
            for part in clause.strip("()").split(","):
                if part.startswith("id.gt."):
                    start = uuid.UUID(part.removeprefix("id.gt.")).int
        stop = min(start + limit, self.mentors)
        return [
            {
                "id": str(uuid.UUID(int=number)),
                "organization_id": "00000000-0000-0000-0000-00000000000a",
                "status_version": 0,
                "certification_expiry_date": EXPIRY,
            }
            for number in range(start + 1, stop + 1)
        ]

    def _pause(self, body: dict[str, Any]) -> dict[str, Any]:
        self.history_id += 1
        return {
            "mentor_id": body["p_mentor_id"],
            "old_status": "active",
            "new_status": "paused",
            "status_version": body["p_expected_version"] + 1,
            "history_id": self.history_id,
            "changed_at": datetime.now(UTC).isoformat(),
            "replayed": False,
        }

    def answer(self, method: str, path: str, query: dict[str, list[str]], body: Any) -> tuple[int, dict[str, str], Any]:
        """(status, extra headers, JSON body or None) for one request of a run."""
        if path == "/rest/v1/rpc/update_mentor_status":
            return 200, {}, self._pause(body)
        if path == "/rest/v1/expired_active_mentors":
            if method == "HEAD":
                return 200, {"Content-Range": f"*/{self.mentors}"}, None
            return 200, {}, self._page(query)
        if path == "/rest/v1/certification_expiry_audit":
            return 201, {}, None
        if path == "/rest/v1/rpc/start_certification_expiry_run":
            return 200, {}, {"job_run_id": body["p_run_id"]}
        if path == "/rest/v1/rpc/finish_certification_expiry_run":
            return 200, {}, None
        if path == "/rest/v1/rpc/repair_certification_expiry_audit":
            return 200, {}, {"repaired": 0, "skipped": 0, "skipped_history_ids": []}
        return 404, {}, {"code": "PGRST125", "message": f"the stub does not serve {method} {path}"}

    async def __call__(self, scope: dict[str, Any], receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            return
        raw = b""
        while True:
            message = await receive()
            raw += message.get("body", b"")
            if not message.get("more_body"):
                break
        body = json.loads(raw) if raw else None
        path, method = scope["path"], scope["method"]
        if path == "/_stub":
            if method == "PUT":
                self.mentors, self.latency = body["mentors"], body["latency_ms"] / 1000
                self.requests = self.history_id = 0
            status, headers, answer = 200, {}, {"requests": self.requests}
        else:
            self.requests += 1
            if self.latency:
                await asyncio.sleep(self.latency)
            query = parse_qs(scope["query_string"].decode())
            status, headers, answer = self.answer(method, path, query, body)
        payload = b"" if answer is None else json.dumps(answer).encode()
        header_list = [(b"content-type", b"application/json"), (b"content-length", str(len(payload)).encode())]
        header_list += [(name.lower().encode(), value.encode()) for name, value in headers.items()]
        await send({"type": "http.response.start", "status": status, "headers": header_list})
        await send({"type": "http.response.body", "body": payload if method != "HEAD" else b""})


app = StubSupabase()


class RunningStub:
    def __init__(self, url: str) -> None:
        self.url = url

    def configure(self, mentors: int, latency_ms: float = 0) -> None:
        httpx.put(f"{self.url}/_stub", json={"mentors": mentors, "latency_ms": latency_ms}).raise_for_status()

    def request_count(self) -> int:
        return int(httpx.get(f"{self.url}/_stub").json()["requests"])


@contextlib.contextmanager
def stub_supabase(core: int | None, log: Path) -> Iterator[RunningStub]:
    """The stub under uvicorn in its own process, pinned to `core` when given."""
    port = free_port()
    pin = ["taskset", "--cpu-list", str(core)] if core is not None else []
    with log.open("ab") as output:
        process = subprocess.Popen(
            [
                *pin,
                *(sys.executable, "-m", "uvicorn", "bench.stub_supabase:app", "--host", "127.0.0.1"),
                *("--port", str(port), "--log-level", "warning", "--no-access-log"),
            ],
            cwd=PROJECT_ROOT,
            stdout=output,
            stderr=output,
        )
    stub = RunningStub(f"http://127.0.0.1:{port}")

    def answers() -> bool:
        try:
            stub.request_count()
        except httpx.HTTPError:
            return False
        return True

    try:
        if not wait_until(answers, gave_up=lambda: process.poll() is not None):
            raise RuntimeError(f"the stub did not start; see {log}")
        yield stub
    finally:
        process.terminate()
        process.wait(timeout=10)
