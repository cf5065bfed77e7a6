"""How the Supabase store lends its clients; what it asks of Supabase is in tests/contract/."""

from __future__ import annotations

import threading
from concurrent.futures import ThreadPoolExecutor
from typing import Any, cast

import httpx
import pytest
from postgrest.exceptions import APIError

from certification_expiry.ports import StoreError, StoreErrorKind
from certification_expiry.supabase_store import SupabaseMentorStore, classify


class Clients:
    """Stands in for client_factory: counts the clients made."""

    def __init__(self) -> None:
        self.made: list[object] = []

    def __call__(self) -> Any:
        self.made.append(object())
        return self.made[-1]


def test_calls_in_flight_at_once_never_share_a_client_and_later_calls_reuse_them():
    clients = Clients()
    store = SupabaseMentorStore(cast(Any, clients))
    store._call(lambda client: client)  # one idle client, to be lent again
    together = threading.Barrier(3)

    def hold(client: object) -> object:
        together.wait(timeout=5)  # all three calls are in flight at once
        return client

    with ThreadPoolExecutor(3) as pool:
        lent = list(pool.map(lambda _: store._call(hold), range(3)))
    assert len({id(client) for client in lent}) == 3
    for _ in range(10):
        assert store._call(lambda client: client) in clients.made
    assert len(clients.made) == 3


def test_a_failed_call_is_translated_and_gives_its_client_back():
    clients = Clients()
    store = SupabaseMentorStore(cast(Any, clients))

    def drop(client: object) -> None:
        raise httpx.RemoteProtocolError("Server disconnected without sending a response.")

    with pytest.raises(StoreError) as raised:
        store._call(drop)
    assert raised.value.kind is StoreErrorKind.TRANSIENT
    store._call(lambda client: client)
    assert len(clients.made) == 1


@pytest.mark.parametrize(
    ("code", "kind"),
    [
        # The hosted roles' timeouts: someone else held the row, or the database was slow.
        ("57014", StoreErrorKind.TRANSIENT),
        ("55P03", StoreErrorKind.TRANSIENT),
        ("57P01", StoreErrorKind.TRANSIENT),
        ("08006", StoreErrorKind.TRANSIENT),
        ("53300", StoreErrorKind.TRANSIENT),
        ("40001", StoreErrorKind.TRANSIENT),
        ("40P01", StoreErrorKind.TRANSIENT),
        ("PGRST001", StoreErrorKind.TRANSIENT),
        ("503", StoreErrorKind.TRANSIENT),
        # What another try cannot change.
        ("42501", StoreErrorKind.PERMANENT),
        ("22023", StoreErrorKind.PERMANENT),
        ("55000", StoreErrorKind.PERMANENT),
        ("57000", StoreErrorKind.PERMANENT),
        ("23505", StoreErrorKind.PERMANENT),
        ("PGRST116", StoreErrorKind.PERMANENT),
        ("PT404", StoreErrorKind.NOT_FOUND),
        ("PT409", StoreErrorKind.CONFLICT),
        ("PT429", StoreErrorKind.RATE_LIMITED),
    ],
)
def test_each_error_code_is_classified_for_the_retry_decision(code, kind):
    error = APIError({"code": code, "message": "m", "details": None, "hint": None})
    assert classify(error).kind is kind


@pytest.mark.parametrize(
    ("details", "kind"),
    [
        ("transition_not_allowed", StoreErrorKind.NOT_ALLOWED),
        (None, StoreErrorKind.PERMANENT),
        ("certification_expired", StoreErrorKind.PERMANENT),
        ("anything else", StoreErrorKind.PERMANENT),
    ],
)
def test_only_the_state_machines_own_refusal_is_a_skip(details, kind):
    """P0001 is the SQLSTATE of every RAISE without a code: a bug that raises one must
    be the mentor's error, never a silent skip."""
    error = APIError({"code": "P0001", "message": "m", "details": details, "hint": None})
    assert classify(error).kind is kind
