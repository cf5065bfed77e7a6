"""The HTTP side of both entry points, and only that: methods, the bearer token,
the body, and the one table that answers each error with a status and a code.
What a caller may do is service.py's to decide."""

from __future__ import annotations

import json
import logging
import re
from collections.abc import Callable
from typing import Any

import flask
from pydantic import ValidationError
from werkzeug.exceptions import HTTPException

from .bodies import JobRequest
from .callers import Invoker
from .errors import (
    AuthenticationError,
    CertificationExpiryError,
    DatabaseUnavailableError,
    InvalidRequestError,
    LeaseHeldError,
    MethodNotAllowedError,
    PermissionDeniedError,
    RequestTooLargeError,
    RunRateLimitedError,
    VerificationUnavailableError,
)
from .log_events import LOGGER_NAME, excerpt, log_event
from .records import RunStatus
from .runtime import Runtime

ResponseTuple = tuple[str, int, dict[str, str]]
JSON_HEADERS = {"Content-Type": "application/json"}

# Each way a request can end short of its answer, as HTTP status and stable code.
ERROR_ANSWERS: dict[type[CertificationExpiryError], tuple[int, str]] = {
    InvalidRequestError: (400, "bad_request"),
    AuthenticationError: (401, "unauthenticated"),
    PermissionDeniedError: (403, "forbidden"),
    MethodNotAllowedError: (405, "method_not_allowed"),
    LeaseHeldError: (409, "run_in_progress"),
    RequestTooLargeError: (413, "payload_too_large"),
    RunRateLimitedError: (429, "too_many_runs"),
    DatabaseUnavailableError: (503, "database_unavailable"),
    VerificationUnavailableError: (503, "verification_unavailable"),
}


def json_response(body: object, status: int, headers: dict[str, str] | None = None) -> ResponseTuple:
    return json.dumps(body), status, {**JSON_HEADERS, **(headers or {})}


def _refusal(
    status: int, code: str, message: str, logged_as: str, headers: dict[str, str] | None = None, **fields: Any
) -> ResponseTuple:
    """A request that ends short of its answer: one `request.rejected` line, and the
    JSON error body every refusal has."""
    log_event(
        logging.getLogger(LOGGER_NAME),
        logging.WARNING if status < 500 else logging.ERROR,
        "request.rejected",
        logged_as,
        code=code,
        status=status,
        **fields,
    )
    return json_response({"error": {"code": code, "message": message}}, status, headers)


def error_response(error: CertificationExpiryError, allowed_methods: tuple[str, ...]) -> ResponseTuple:
    status, code = ERROR_ANSWERS.get(type(error), (500, "internal"))
    headers = {"Allow": ", ".join(allowed_methods)} if isinstance(error, MethodNotAllowedError) else {}
    if isinstance(error, AuthenticationError):
        headers["WWW-Authenticate"] = "Bearer"
    if isinstance(error, RunRateLimitedError):
        headers["Retry-After"] = str(error.retry_after_seconds)
    # The detail may quote the request (a token's key id, a library's message about it).
    return _refusal(
        status, code, error.message, "request refused", headers, reason=error.message, detail=excerpt(error.detail)
    )


def framework_error_response(error: Exception) -> ResponseTuple:
    """What the function answers for what never reached an entry point (the
    framework's own routes, /robots.txt among them) or escaped one: JSON, like every
    other answer. Only the HTTP server's refusals of malformed HTTP are not ours."""
    if isinstance(error, HTTPException) and error.code is not None and error.code < 500:
        status, code = error.code, re.sub(r"\W+", "_", (error.name or "error").lower()).strip("_")
        message = error.description or error.name or "refused"
    else:
        status, code, message = 500, "internal", "the function failed; the run, if one started, is recorded"
    logged_as = "request refused" if status < 500 else "request failed"
    return _refusal(status, code, message, logged_as, reason=type(error).__name__)


def bearer_token(authorization: str | None) -> str:
    scheme, _, token = (authorization or "").partition(" ")
    if scheme.lower() != "bearer" or not token.strip():
        raise AuthenticationError("an Authorization: Bearer <token> header is required")
    return token.strip()


def _refuse_duplicate_keys(pairs: list[tuple[str, Any]]) -> dict[str, Any]:
    # Last-wins would let {"dry_run": true, "dry_run": false} read as a real run.
    keys = [key for key, _ in pairs]
    if len(set(keys)) != len(keys):
        raise ValueError("a key appears more than once")
    return dict(pairs)


def parse_job_request(request: flask.Request, max_bytes: int) -> JobRequest:
    """The optional JSON object body, read no further than max_bytes."""
    if request.content_length is not None and request.content_length > max_bytes:
        raise RequestTooLargeError(f"the body is over {max_bytes} bytes")
    raw = request.stream.read(max_bytes + 1)
    if len(raw) > max_bytes:
        raise RequestTooLargeError(f"the body is over {max_bytes} bytes")
    if not raw.strip():
        return JobRequest()
    try:
        data = json.loads(raw, object_pairs_hook=_refuse_duplicate_keys)
    except RecursionError as error:
        raise InvalidRequestError("the body is not valid JSON: it is nested too deeply") from error
    except (ValueError, UnicodeDecodeError) as error:
        raise InvalidRequestError(f"the body is not valid JSON: {error}") from error
    if not isinstance(data, dict):
        raise InvalidRequestError('the body must be a JSON object, e.g. {"dry_run": true}')
    try:
        return JobRequest.model_validate(data)
    except ValidationError as error:
        problems = "; ".join(f"{'.'.join(map(str, e['loc'])) or 'body'}: {e['msg']}" for e in error.errors())
        raise InvalidRequestError(f"invalid body: {problems}") from error


def _guarded(
    request: flask.Request,
    allowed_methods: tuple[str, ...],
    get_runtime: Callable[[], Runtime],
    respond: Callable[[Runtime, Invoker], ResponseTuple],
) -> ResponseTuple:
    """Method, then authentication, before anything touches the database; every
    refusal is a JSON error and one log line."""
    try:
        if request.method not in allowed_methods:
            raise MethodNotAllowedError(f"{request.method} is not allowed here: use {' or '.join(allowed_methods)}")
        # Nothing here reads the query string, and a key put there ends up in proxy
        # and access logs: refused whatever else the request carries, never echoed.
        if request.query_string:
            raise InvalidRequestError(
                "query parameters are not accepted: send the key only as Authorization: Bearer,"
                " and options in the JSON body"
            )
        runtime = get_runtime()
        invoker = runtime.authenticator.authenticate(bearer_token(request.headers.get("Authorization")))
        return respond(runtime, invoker)
    except CertificationExpiryError as error:
        return error_response(error, allowed_methods)


def handle_job(request: flask.Request, get_runtime: Callable[[], Runtime]) -> ResponseTuple:
    def respond(runtime: Runtime, invoker: Invoker) -> ResponseTuple:
        job_request = parse_job_request(request, runtime.settings.job_max_body_bytes)
        # Cloud Scheduler marks its requests; anything else was started by hand.
        scheduled = "X-CloudScheduler-JobName" in request.headers
        summary = runtime.service.start_run(invoker, job_request, scheduled)
        # Non-2xx unless the run did all it should, so that Cloud Scheduler retries.
        status = 200 if summary.status is RunStatus.SUCCEEDED else 500
        return json_response(summary.model_dump(mode="json"), status)

    return _guarded(request, ("POST",), get_runtime, respond)


def handle_compliance_check(request: flask.Request, get_runtime: Callable[[], Runtime]) -> ResponseTuple:
    def respond(runtime: Runtime, invoker: Invoker) -> ResponseTuple:
        report = runtime.service.check_compliance(invoker)
        # A breach is non-2xx, so that the scheduler's own attempt fails visibly too.
        return json_response(report.model_dump(mode="json"), 200 if report.ok else 500)

    return _guarded(request, ("GET", "POST"), get_runtime, respond)
