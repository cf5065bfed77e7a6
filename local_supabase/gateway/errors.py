"""PostgREST's error bodies and its SQLSTATE to HTTP status table."""

from __future__ import annotations

import psycopg

# Prefix (or whole code) -> HTTP status, longest match first, as PostgREST maps them.
# https://postgrest.org/en/stable/references/errors.html#http-status-codes
_SQLSTATE_STATUS: list[tuple[str, int]] = [
    ("23503", 409),
    ("23505", 409),
    ("25006", 405),
    ("P0001", 400),
    ("42883", 404),
    ("42P01", 404),
    ("08", 503),
    ("0L", 403),
    ("0P", 403),
    ("28", 403),
    ("53", 503),
    ("P0", 500),
    ("XX", 500),
    ("40", 500),
    ("55", 500),
    ("57", 500),
    ("58", 500),
    ("F0", 500),
    ("HV", 500),
]


def http_status_for(sqlstate: str, authenticated: bool) -> int:
    """The status PostgREST answers for a database error with this SQLSTATE.

    `authenticated`: the request ran under a JWT role other than anon; PostgREST
    answers a permission error with 403 then, and with 401 to anonymous callers.
    """
    if sqlstate == "42501":
        return 403 if authenticated else 401
    if sqlstate.startswith("PT") and sqlstate[2:].isdigit():
        return int(sqlstate[2:])
    for prefix, status in _SQLSTATE_STATUS:
        if sqlstate.startswith(prefix):
            return status
    return 400


class GatewayError(Exception):
    """An error answered with PostgREST's JSON body."""

    def __init__(
        self,
        status: int,
        code: str,
        message: str,
        details: str | None = None,
        hint: str | None = None,
        headers: dict[str, str] | None = None,
    ) -> None:
        super().__init__(message)
        self.status = status
        self.code = code
        self.message = message
        self.details = details
        self.hint = hint
        self.headers = headers or {}

    def body(self) -> dict[str, str | None]:
        return {"code": self.code, "details": self.details, "hint": self.hint, "message": self.message}

    @classmethod
    def database_unreachable(cls, detail: str) -> GatewayError:
        """PostgREST's answer when it cannot reach the database (errors.html, "Connection errors")."""
        return cls(503, "PGRST001", "Database client error. Retrying the connection.", detail)

    @classmethod
    def from_database(cls, error: psycopg.Error, authenticated: bool) -> GatewayError:
        if error.sqlstate is None:  # no SQLSTATE: the server was not reached at all
            return cls.database_unreachable(str(error))
        sqlstate = error.sqlstate
        return cls(
            http_status_for(sqlstate, authenticated),
            sqlstate,
            error.diag.message_primary or str(error),
            error.diag.message_detail,
            error.diag.message_hint,
        )
