"""How the Supabase store lends its clients; what it asks of Supabase is in tests/contract/,
how it classifies Supabase's errors in test_store_errors.py."""

from __future__ import annotations

import threading
from concurrent.futures import ThreadPoolExecutor
from typing import Any, cast

import httpx
import pytest

from certification_expiry.ports import StoreError, StoreErrorKind
from certification_expiry.supabase_store import SupabaseMentorStore


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
