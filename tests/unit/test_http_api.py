"""The HTTP layer's one error table."""

from __future__ import annotations

import json

import pytest

from certification_expiry import errors
from certification_expiry.errors import CertificationExpiryError
from certification_expiry.http_api import ERROR_ANSWERS, error_response


def every_error() -> list[type[CertificationExpiryError]]:
    """Every error errors.py defines but the base class, which is never raised."""
    return [
        value
        for value in vars(errors).values()
        if isinstance(value, type) and issubclass(value, Exception) and value is not CertificationExpiryError
    ]


@pytest.mark.parametrize("error_type", every_error(), ids=lambda error_type: error_type.__name__)
def test_every_error_has_its_answer(error_type):
    """A new error added to errors.py without a row here would be answered 500."""
    assert error_type in ERROR_ANSWERS


def test_an_answer_carries_code_and_message_but_never_the_detail():
    body, status, headers = error_response(
        errors.AuthenticationError("the JWT has expired", detail="Signature has expired at 12:00"), ("POST",)
    )
    assert status == 401
    assert headers["WWW-Authenticate"] == "Bearer"
    assert json.loads(body) == {"error": {"code": "unauthenticated", "message": "the JWT has expired"}}


def test_a_method_refusal_lists_the_allowed_methods():
    _, status, headers = error_response(errors.MethodNotAllowedError("PUT is not allowed"), ("GET", "POST"))
    assert (status, headers["Allow"]) == (405, "GET, POST")
