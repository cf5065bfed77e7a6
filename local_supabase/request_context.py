"""The settings PostgREST puts on a transaction before running a request.

Used by the gateway for every request, and by the database tests to call the RPC
exactly as PostgREST would.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from typing import Any

# One statement, as PostgREST does it: `set_config(..., true)` is `SET LOCAL`, so
# everything is undone when the request's transaction ends.
# Positional placeholders, so the gateway can put the request's own statement
# after it and bind both in one go.
REQUEST_CONTEXT_SQL = (
    "select set_config('role', %s, true),"
    " set_config('request.jwt.claims', %s, true),"
    " set_config('request.method', %s, true),"
    " set_config('request.path', %s, true),"
    " set_config('request.headers', %s, true)"
)


def request_context_params(
    role: str,
    claims: Mapping[str, Any] | None = None,
    method: str = "POST",
    path: str = "/",
    headers: Mapping[str, str] | None = None,
) -> tuple[str, str, str, str, str]:
    """The values for REQUEST_CONTEXT_SQL's placeholders, in order."""
    return (
        role,
        json.dumps(dict(claims or {"role": role})),
        method,
        path,
        json.dumps(dict(headers or {})),
    )
