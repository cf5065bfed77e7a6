"""Fixtures of the integration tier."""

from __future__ import annotations

from collections.abc import Iterator

import psycopg
import pytest
from supabase import Client, create_client

from tests.google_certs import GoogleCerts, google_certs


@pytest.fixture
def certs() -> Iterator[GoogleCerts]:
    """Google's certificate endpoint, stood in for on loopback for this test."""
    with google_certs() as served:
        yield served


@pytest.fixture
def autocommit_db(stack) -> Iterator[psycopg.Connection]:
    """The stack's database, autocommit: what a test writes is there for the gateway to see."""
    with psycopg.connect(stack.database.dsn, autocommit=True) as conn:
        yield conn


@pytest.fixture
def service(stack) -> Client:
    """supabase-py as the job builds it: the URL and the secret key, nothing else."""
    return create_client(stack.url, stack.secret_key)
