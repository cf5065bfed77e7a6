"""A functions-framework target served on loopback, as `make run` and `make verify-deployment` serve it."""

from __future__ import annotations

import contextlib
import os
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

from local_supabase.postgres import free_port


def wait_for_port(port: int, process: subprocess.Popen, timeout: float = 60) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise RuntimeError("functions-framework exited before serving")
        with socket.socket() as sock:
            if sock.connect_ex(("127.0.0.1", port)) == 0:
                return
        time.sleep(0.1)
    raise RuntimeError("functions-framework did not start listening")


@contextlib.contextmanager
def served_function(
    target: str, environment: dict[str, str], python: str = sys.executable, source: Path | None = None
) -> Iterator[str]:
    """The URL of `target` served by functions-framework from `source` (main.py here) with this environment."""
    port = free_port()
    command = [python, "-m", "functions_framework", "--target", target, "--port", str(port)]
    if source is not None:
        command += ["--source", str(source)]
    server = subprocess.Popen(command, env={**os.environ, **environment}, cwd=source.parent if source else None)
    try:
        wait_for_port(port, server)
        yield f"http://127.0.0.1:{port}/"
    finally:
        server.terminate()
        server.wait(timeout=10)
