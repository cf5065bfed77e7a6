"""Slow clients against the function as functions-framework serves it (gunicorn's
threads): connections that send half a request line and then nothing.

gunicorn's gthread worker gives each connection a thread as soon as its first bytes
arrive and reads the rest without a timeout, so such a connection holds its thread.
The deployment (cloudbuild.yaml) runs more threads (THREADS) than Cloud Run sends an
instance requests at once (--concurrency), so every request Cloud Run admits finds
a thread; this measures both sides of that line locally.
"""

from __future__ import annotations

import contextlib
import socket
import time
from collections.abc import Iterator
from urllib.parse import urlsplit

import httpx
import pytest

from tools.local_function import served_function

SLOW_CLIENTS = 8


def connections_read_by_the_server(port: int | None) -> int:
    """The server's established connections on `port` with nothing left unread in
    their receive queue, from the kernel's table (/proc/net/tcp, proc(5))."""
    read = 0
    for table in ("/proc/net/tcp", "/proc/net/tcp6"):
        with open(table) as lines:
            for line in list(lines)[1:]:
                fields = line.split()
                local_port = int(fields[1].rsplit(":", 1)[1], 16)
                established = fields[3] == "01"
                unread = int(fields[4].split(":")[1], 16)
                read += local_port == port and established and unread == 0
    return read


@contextlib.contextmanager
def slow_clients(url: str, count: int) -> Iterator[None]:
    address = urlsplit(url)
    sockets = []
    try:
        for _ in range(count):
            sock = socket.create_connection((address.hostname, address.port))
            sock.sendall(b"POST / HT")  # half a request line, then nothing
            sockets.append(sock)
        # Each is a thread blocked reading the rest once the server has read its bytes.
        deadline = time.monotonic() + 10
        while connections_read_by_the_server(address.port) < count and time.monotonic() < deadline:
            time.sleep(0.01)
        assert connections_read_by_the_server(address.port) >= count, "the server did not read every slow client"
        yield
    finally:
        for sock in sockets:
            sock.close()


def dry_run_seconds(url: str, key: str, timeout: float) -> float | None:
    """How long the scheduler's dry run took, or None if it did not get through in time."""
    started = time.monotonic()
    try:
        response = httpx.post(url, headers={"Authorization": f"Bearer {key}"}, json={"dry_run": True}, timeout=timeout)
    except httpx.TimeoutException:
        return None
    assert response.status_code == 200, response.text
    return time.monotonic() - started


@pytest.mark.parametrize(("threads", "gets_through"), [(SLOW_CLIENTS, False), (2 * SLOW_CLIENTS, True)])
def test_slow_clients_hold_a_thread_each_and_more_threads_than_them_keep_the_run_going(
    emptied_db, own_stack, threads, gets_through
):
    environment = {"SUPABASE_URL": own_stack.url, "SUPABASE_SECRET_KEY": own_stack.secret_key, "THREADS": str(threads)}
    with served_function("certification_expiry_job", environment) as url:
        assert dry_run_seconds(url, own_stack.secret_key, timeout=30) is not None  # warm: the runtime is built
        with slow_clients(url, SLOW_CLIENTS):
            seconds = dry_run_seconds(url, own_stack.secret_key, timeout=5)
    assert (seconds is not None) is gets_through
