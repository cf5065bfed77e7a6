"""The store's error classification: a failed request to Supabase as the job sees
it, what kind of failure and so whether another try could help."""

from __future__ import annotations

import httpx
from postgrest.exceptions import APIError

from .ports import StoreError, StoreErrorKind

# The DETAIL update_mentor_status gives its state machine's refusals (migration every_caller_held).
TRANSITION_NOT_ALLOWED = "transition_not_allowed"
# SQLSTATE classes of a server that could not do the work right now, and the
# hosted roles' statement and lock timeouts (57014, 55P03): a row locked too long
# by someone else is worth another try, as a dropped connection is.
_TRANSIENT_SQLSTATES = ("08", "53", "57P", "57014", "55P03", "40001", "40P01")
# PostgREST's connection errors (its "Errors" reference, group 0): the database
# cannot be reached (503), or no pool connection came free in time (504).
_TRANSIENT_POSTGREST = {"PGRST000", "PGRST001", "PGRST002", "PGRST003"}


def classify(error: httpx.TransportError | APIError) -> StoreError:
    """A failed request as the job sees it: what kind, and whether to retry."""
    if isinstance(error, httpx.TransportError):
        return StoreError(StoreErrorKind.TRANSIENT, type(error).__name__, str(error) or type(error).__name__)
    code = str(error.code or "unknown")
    message = str(error.message or "")
    kind = {
        "PT404": StoreErrorKind.NOT_FOUND,
        "PT409": StoreErrorKind.CONFLICT,
        "PT429": StoreErrorKind.RATE_LIMITED,
    }.get(code)
    # Only the state machine's own refusal is a "not allowed" that the job skips;
    # any other P0001 (every RAISE without a code is one) is an error.
    if code == "P0001" and str(error.details or "") == TRANSITION_NOT_ALLOWED:
        kind = StoreErrorKind.NOT_ALLOWED
    if kind is None:
        # PostgREST's own 503, a non-JSON 5xx (postgrest-py puts the three-digit
        # status in `code`; a five-digit one is a SQLSTATE), or a database that
        # could not serve the request now.
        http_5xx = len(code) == 3 and code.isdigit() and code.startswith("5")
        server_side = code in _TRANSIENT_POSTGREST or http_5xx
        transient = server_side or code.startswith(_TRANSIENT_SQLSTATES)
        kind = StoreErrorKind.TRANSIENT if transient else StoreErrorKind.PERMANENT
    if kind is StoreErrorKind.RATE_LIMITED:
        # start_certification_expiry_run puts the seconds to wait in the detail.
        details = str(error.details or "")
        return StoreError(kind, code, message, int(details) if details.isdigit() else None)
    return StoreError(kind, code, message)
