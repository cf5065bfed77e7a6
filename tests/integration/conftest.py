"""Fixtures of the integration tier."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from tests.google_certs import GoogleCerts, google_certs


@pytest.fixture
def certs() -> Iterator[GoogleCerts]:
    """Google's certificate endpoint, stood in for on loopback for this test."""
    with google_certs() as served:
        yield served
