"""The errors a request can end with; each knows its HTTP status and a stable code."""

from __future__ import annotations


class CertificationExpiryError(Exception):
    """Base class: answered as JSON `{"error": {"code", "message"}}` with `status`."""

    status = 500
    code = "internal"

    def __init__(self, message: str, detail: str | None = None) -> None:
        super().__init__(message)
        self.message = message
        # What went wrong inside (a library's error text, a configured value): for
        # the log line only, never for the caller.
        self.detail = detail


class BadRequestError(CertificationExpiryError):
    status = 400
    code = "bad_request"


class PayloadTooLargeError(CertificationExpiryError):
    status = 413
    code = "payload_too_large"


class MethodNotAllowedError(CertificationExpiryError):
    status = 405
    code = "method_not_allowed"


class AuthenticationError(CertificationExpiryError):
    """No credentials, or credentials that do not check out."""

    status = 401
    code = "unauthenticated"


class ForbiddenError(CertificationExpiryError):
    """Valid credentials of someone who may not do this."""

    status = 403
    code = "forbidden"


class LeaseHeldError(CertificationExpiryError):
    """Another run is working: this one touches nothing."""

    status = 409
    code = "run_in_progress"


class DatabaseUnavailableError(CertificationExpiryError):
    """The database could not be reached or answered with a server error."""

    status = 503
    code = "database_unavailable"


class VerificationUnavailableError(CertificationExpiryError):
    """The keys that would verify the caller's token could not be fetched right now."""

    status = 503
    code = "verification_unavailable"
