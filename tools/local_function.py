"""A functions-framework target served on loopback, as `make run` and `make verify-deployment` serve it."""

from __future__ import annotations

import contextlib
import os
import socket
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

from local_supabase.ephemeral import wait_until
from local_supabase.postgres import free_port


def _listening(port: int) -> bool:
    with socket.socket() as sock:
        return sock.connect_ex(("127.0.0.1", port)) == 0


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
        if not wait_until(lambda: _listening(port), gave_up=lambda: server.poll() is not None, timeout=60):
            raise RuntimeError("functions-framework did not start serving")
        yield f"http://127.0.0.1:{port}/"
    finally:
        server.terminate()
        server.wait(timeout=10)
