"""The ways a request can end short of its answer.

Each is a fact about the request or the world, not an HTTP status:
http_api.py holds the one table that answers each with a status and a code.
"""

from __future__ import annotations


class CertificationExpiryError(Exception):
    """Base class; `message` is for the caller, `detail` for the log line only."""

    def __init__(self, message: str, detail: str | None = None) -> None:
        super().__init__(message)
        self.message = message
        # What went wrong inside (a library's error text, a configured value): for
        # the log line only, never for the caller.
        self.detail = detail


class MethodNotAllowedError(CertificationExpiryError):
    """The entry point does not offer this operation."""


class InvalidRequestError(CertificationExpiryError):
    """The request's body or parameters are not what the contract accepts."""


class RequestTooLargeError(CertificationExpiryError):
    """The body is longer than the configured limit."""


class AuthenticationError(CertificationExpiryError):
    """No credentials, or credentials that do not check out."""


class PermissionDeniedError(CertificationExpiryError):
    """Valid credentials of someone who may not do this."""


class LeaseHeldError(CertificationExpiryError):
    """Another run is working: this one touches nothing."""


class RunRateLimitedError(CertificationExpiryError):
    """A coordinator's run of this kind for these organisations started too recently."""

    def __init__(self, message: str, retry_after_seconds: int, detail: str | None = None) -> None:
        super().__init__(message, detail)
        self.retry_after_seconds = retry_after_seconds


class DatabaseUnavailableError(CertificationExpiryError):
    """The database could not be reached or answered with a server error."""


class VerificationUnavailableError(CertificationExpiryError):
    """The keys that would verify the caller's token could not be fetched right now."""
