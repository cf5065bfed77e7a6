"""The store's error classification (store_errors.py), as a table: every SQLSTATE
class and PostgREST code the store can meet, with the retry decision for each.

The classes are PostgreSQL's ("PostgreSQL Error Codes", Appendix A); the PGRST codes
and the HTTP statuses PostgREST answers with are its "Errors" reference. TRANSIENT
and CONFLICT are retried (job.py); every other kind is not.
"""

from __future__ import annotations

import httpx
import pytest
from postgrest.exceptions import APIError

from certification_expiry.ports import StoreErrorKind
from certification_expiry.store_errors import classify

TRANSIENT, PERMANENT = StoreErrorKind.TRANSIENT, StoreErrorKind.PERMANENT


def api_error(code: str | None, details: str | None = None, message: str | None = "m") -> APIError:
    return APIError({"code": code, "message": message, "details": details, "hint": None})


# One code of every SQLSTATE class, and every code of the classes split between kinds.
SQLSTATES = {
    "01000": PERMANENT,  # warning
    "02000": PERMANENT,  # no data
    "03000": PERMANENT,  # statement not yet complete
    "08000": TRANSIENT,  # connection exception
    "08003": TRANSIENT,
    "08006": TRANSIENT,
    "08P01": TRANSIENT,
    "09000": PERMANENT,  # triggered action exception
    "0A000": PERMANENT,  # feature not supported
    "0B000": PERMANENT,  # invalid transaction initiation
    "0F000": PERMANENT,  # locator exception
    "0L000": PERMANENT,  # invalid grantor
    "0P000": PERMANENT,  # invalid role specification
    "0Z000": PERMANENT,  # diagnostics exception
    "20000": PERMANENT,  # case not found
    "21000": PERMANENT,  # cardinality violation
    "22023": PERMANENT,  # data exception: the RPC's refusal of an argument
    "22P02": PERMANENT,
    "23505": PERMANENT,  # integrity constraint violation
    "23514": PERMANENT,
    "24000": PERMANENT,  # invalid cursor state
    "25006": PERMANENT,  # invalid transaction state: read-only transaction
    "26000": PERMANENT,  # invalid SQL statement name
    "27000": PERMANENT,  # triggered data change violation
    "28000": PERMANENT,  # invalid authorization specification
    "28P01": PERMANENT,
    "2B000": PERMANENT,  # dependent privilege descriptors still exist
    "2D000": PERMANENT,  # invalid transaction termination
    "2F000": PERMANENT,  # SQL routine exception
    "34000": PERMANENT,  # invalid cursor name
    "38000": PERMANENT,  # external routine exception
    "39000": PERMANENT,  # external routine invocation exception
    "3B000": PERMANENT,  # savepoint exception
    "3D000": PERMANENT,  # invalid catalog name
    "3F000": PERMANENT,  # invalid schema name
    "40000": PERMANENT,  # transaction rollback: only these two are worth another try
    "40001": TRANSIENT,  # serialization failure
    "40002": PERMANENT,
    "40003": PERMANENT,
    "40P01": TRANSIENT,  # deadlock detected
    "42501": PERMANENT,  # syntax error or access rule violation: a missing grant
    "42883": PERMANENT,
    "44000": PERMANENT,  # WITH CHECK OPTION violation
    "53000": TRANSIENT,  # insufficient resources
    "53100": TRANSIENT,
    "53200": TRANSIENT,
    "53300": TRANSIENT,  # too many connections
    "54000": PERMANENT,  # program limit exceeded
    "55000": PERMANENT,  # object not in prerequisite state
    "55006": PERMANENT,
    "55P03": TRANSIENT,  # lock not available: the hosted lock_timeout
    "57000": PERMANENT,  # operator intervention
    "57014": TRANSIENT,  # query canceled: the hosted statement_timeout
    "57P01": TRANSIENT,  # admin shutdown
    "57P02": TRANSIENT,
    "57P03": TRANSIENT,  # cannot connect now
    "58000": PERMANENT,  # system error
    "72000": PERMANENT,  # snapshot too old
    "F0000": PERMANENT,  # configuration file error
    "HV000": PERMANENT,  # foreign data wrapper error
    "P0002": PERMANENT,  # PL/pgSQL: no data found
    "XX000": PERMANENT,  # internal error
}

POSTGREST = {
    "PGRST000": TRANSIENT,  # the database cannot be reached (503)
    "PGRST001": TRANSIENT,
    "PGRST002": TRANSIENT,  # the schema cache cannot be built (503)
    "PGRST003": TRANSIENT,  # no pool connection came free in time (504)
    "PGRST100": PERMANENT,  # the request: a query string it cannot parse
    "PGRST102": PERMANENT,
    "PGRST116": PERMANENT,  # not exactly one row for a singular answer
    "PGRST200": PERMANENT,  # the schema cache: no such relationship
    "PGRST202": PERMANENT,  # no such function
    "PGRST204": PERMANENT,  # no such column
    "PGRST301": PERMANENT,  # JWT: the key is not valid
    "PGRST302": PERMANENT,
    "PGRSTX00": PERMANENT,  # PostgREST's own internal error
    # A body that is not PostgREST's JSON (a proxy's page): postgrest-py puts the
    # HTTP status in `code`. A 5xx is the server side, anything else the request.
    "500": TRANSIENT,
    "502": TRANSIENT,
    "503": TRANSIENT,
    "504": TRANSIENT,
    "400": PERMANENT,
    "401": PERMANENT,
    "404": PERMANENT,
    # The RPCs' own codes.
    "PT404": StoreErrorKind.NOT_FOUND,
    "PT409": StoreErrorKind.CONFLICT,
    "PT429": StoreErrorKind.RATE_LIMITED,
}


@pytest.mark.parametrize(("code", "kind"), SQLSTATES.items())
def test_each_sqlstate_class_is_classified_for_the_retry_decision(code, kind):
    error = classify(api_error(code, message="the database's words"))
    assert (error.kind, error.code, error.message) == (kind, code, "the database's words")


@pytest.mark.parametrize(("code", "kind"), POSTGREST.items())
def test_each_postgrest_code_and_http_status_is_classified_for_the_retry_decision(code, kind):
    assert classify(api_error(code)).kind is kind


def test_an_error_without_a_code_or_message_is_permanent_and_says_so():
    error = classify(api_error(None, message=None))
    assert (error.kind, error.code, error.message) == (PERMANENT, "unknown", "")


@pytest.mark.parametrize(
    ("details", "kind"),
    [
        ("transition_not_allowed", StoreErrorKind.NOT_ALLOWED),
        (None, PERMANENT),
        ("certification_expired", PERMANENT),
        ("anything else", PERMANENT),
    ],
)
def test_only_the_state_machines_own_refusal_is_a_skip(details, kind):
    """P0001 is the SQLSTATE of every RAISE without a code: a bug that raises one must
    be the mentor's error, never a silent skip."""
    assert classify(api_error("P0001", details)).kind is kind


@pytest.mark.parametrize(("details", "seconds"), [("42", 42), ("0", 0), (None, None), ("soon", None), ("-5", None)])
def test_a_rate_limited_start_carries_the_seconds_to_wait_when_the_database_gave_them(details, seconds):
    error = classify(api_error("PT429", details, message="too soon"))
    assert (error.kind, error.code, error.retry_after_seconds, error.message) == (
        StoreErrorKind.RATE_LIMITED,
        "PT429",
        seconds,
        "too soon",
    )


@pytest.mark.parametrize(
    ("error", "message"),
    [
        (httpx.ConnectError("connection refused"), "connection refused"),
        (httpx.ReadTimeout("timed out"), "timed out"),
        (httpx.RemoteProtocolError(""), "RemoteProtocolError"),  # no words: its name
    ],
)
def test_a_failed_connection_is_transient_and_named_by_its_kind(error, message):
    classified = classify(error)
    assert (classified.kind, classified.code, classified.message) == (TRANSIENT, type(error).__name__, message)
    assert classified.retry_after_seconds is None
