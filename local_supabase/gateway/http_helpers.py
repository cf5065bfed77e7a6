"""What PostgREST reads from a request and writes into a response: `Prefer`, JSON
bodies, counts and Content-Range, JSON values as parameters, error bodies."""

from __future__ import annotations

import json
from typing import Any

from starlette.requests import Request
from starlette.responses import JSONResponse, Response

from .errors import GatewayError

JSON_TYPE = "application/json; charset=utf-8"
# `.single()` / `.maybe_single()` ask for one object instead of an array.
SINGLE_OBJECT = "application/vnd.pgrst.object+json"


def error_response(error: GatewayError) -> Response:
    return JSONResponse(error.body(), status_code=error.status, headers=error.headers)


def prefer_header(request: Request) -> dict[str, str]:
    """`Prefer: return=minimal, resolution=merge-duplicates` as a dict."""
    prefer: dict[str, str] = {}
    for item in request.headers.get("prefer", "").split(","):
        key, _, value = item.strip().partition("=")
        if key:
            prefer[key] = value
    return prefer


def parse_json(raw: str | bytes) -> Any:
    try:
        return json.loads(raw)
    except (json.JSONDecodeError, UnicodeDecodeError) as error:
        raise GatewayError(400, "PGRST102", "Empty or invalid json", str(error)) from error


async def json_body(request: Request) -> Any:
    raw = await request.body()
    return parse_json(raw) if raw.strip() else {}


def asks_for_count(request: Request) -> bool:
    """Whether the request asks for a count (planned and estimated are exact here)."""
    return prefer_header(request).get("count") in ("exact", "planned", "estimated")


def content_range_header(offset: int, returned: int, total: int | None) -> str:
    """`first-last/total` for the rows answered, `*/total` for none; `*` for an unknown total."""
    shown = "*" if total is None else str(total)
    return f"{offset}-{offset + returned - 1}/{shown}" if returned else f"*/{shown}"


def as_parameter(value: Any) -> str | None:
    """A JSON value as a parameter of unknown type, cast by PostgreSQL to the column."""
    if value is None:
        return None
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, dict | list):
        return json.dumps(value)
    return str(value)
