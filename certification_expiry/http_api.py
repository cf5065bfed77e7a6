"""The HTTP contract of both entry points: methods, authentication, body, status codes."""

from __future__ import annotations

import json
import logging
from collections.abc import Callable
from typing import Any

import flask
from pydantic import ValidationError

from .auth import Invoker
from .compliance import check_compliance
from .errors import (
    BadRequestError,
    CertificationExpiryError,
    ForbiddenError,
    MethodNotAllowedError,
    PayloadTooLargeError,
)
from .job import RunScope
from .log_events import LOGGER_NAME, log_event
from .models import JobRequest, RunStatus, Trigger
from .runtime import Runtime

ResponseTuple = tuple[str, int, dict[str, str]]
JSON_HEADERS = {"Content-Type": "application/json"}


def json_response(body: object, status: int, headers: dict[str, str] | None = None) -> ResponseTuple:
    return json.dumps(body), status, {**JSON_HEADERS, **(headers or {})}


def error_response(error: CertificationExpiryError, allowed_methods: tuple[str, ...]) -> ResponseTuple:
    headers = {"Allow": ", ".join(allowed_methods)} if isinstance(error, MethodNotAllowedError) else {}
    if error.status == 401:
        headers["WWW-Authenticate"] = "Bearer"
    return json_response({"error": {"code": error.code, "message": error.message}}, error.status, headers)


def _refuse_duplicate_keys(pairs: list[tuple[str, Any]]) -> dict[str, Any]:
    # Last-wins would let {"dry_run": true, "dry_run": false} read as a real run.
    keys = [key for key, _ in pairs]
    if len(set(keys)) != len(keys):
        raise ValueError("a key appears more than once")
    return dict(pairs)


def parse_job_request(request: flask.Request, max_bytes: int) -> JobRequest:
    """The optional JSON object body, read no further than max_bytes."""
    if request.content_length is not None and request.content_length > max_bytes:
        raise PayloadTooLargeError(f"the body is over {max_bytes} bytes")
    raw = request.stream.read(max_bytes + 1)
    if len(raw) > max_bytes:
        raise PayloadTooLargeError(f"the body is over {max_bytes} bytes")
    if not raw.strip():
        return JobRequest()
    try:
        data = json.loads(raw, object_pairs_hook=_refuse_duplicate_keys)
    except RecursionError as error:
        raise BadRequestError("the body is not valid JSON: it is nested too deeply") from error
    except (ValueError, UnicodeDecodeError) as error:
        raise BadRequestError(f"the body is not valid JSON: {error}") from error
    if not isinstance(data, dict):
        raise BadRequestError('the body must be a JSON object, e.g. {"dry_run": true}')
    try:
        return JobRequest.model_validate(data)
    except ValidationError as error:
        problems = "; ".join(f"{'.'.join(map(str, e['loc'])) or 'body'}: {e['msg']}" for e in error.errors())
        raise BadRequestError(f"invalid body: {problems}") from error


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
            raise BadRequestError(
                "query parameters are not accepted: send the key only as Authorization: Bearer,"
                " and options in the JSON body"
            )
        runtime = get_runtime()
        invoker = runtime.authenticator.authenticate(request.headers.get("Authorization"))
        return respond(runtime, invoker)
    except CertificationExpiryError as error:
        log_event(
            logging.getLogger(LOGGER_NAME),
            logging.WARNING if error.status < 500 else logging.ERROR,
            "request.rejected",
            "request refused",
            code=error.code,
            status=error.status,
            reason=error.message,
            detail=error.detail,
        )
        return error_response(error, allowed_methods)


def run_scope(runtime: Runtime, invoker: Invoker, scheduled: bool) -> RunScope:
    """The system runs everything; a coordinator runs its own organisations, as actor."""
    if invoker.is_system:
        return RunScope(trigger=Trigger.SCHEDULED if scheduled else Trigger.MANUAL, invoked_by=invoker.describe())
    assert invoker.user_id is not None
    organizations = runtime.store.coordinated_organizations(invoker.user_id)
    if not organizations:
        raise ForbiddenError("this user coordinates no organisation, so may not start a run")
    return RunScope(
        trigger=Trigger.MANUAL,
        actor_id=invoker.user_id,
        organization_ids=tuple(organizations),
        invoked_by=invoker.describe(),
    )


def handle_job(request: flask.Request, get_runtime: Callable[[], Runtime]) -> ResponseTuple:
    def respond(runtime: Runtime, invoker: Invoker) -> ResponseTuple:
        job_request = parse_job_request(request, runtime.settings.job_max_body_bytes)
        # Cloud Scheduler marks its requests; anything else was started by hand.
        scope = run_scope(runtime, invoker, scheduled="X-CloudScheduler-JobName" in request.headers)
        summary = runtime.job.run(job_request, scope)
        # Non-2xx unless the run did all it should, so that Cloud Scheduler retries.
        status = 200 if summary.status is RunStatus.SUCCEEDED else 500
        return json_response(summary.model_dump(mode="json"), status)

    return _guarded(request, ("POST",), get_runtime, respond)


def handle_compliance_check(request: flask.Request, get_runtime: Callable[[], Runtime]) -> ResponseTuple:
    def respond(runtime: Runtime, invoker: Invoker) -> ResponseTuple:
        if not invoker.is_system:
            raise ForbiddenError("the compliance check is for the operator and the scheduler")
        report = check_compliance(runtime.store, runtime.settings.compliance_window_hours, runtime.logger)
        # A breach is non-2xx, so that the scheduler's own attempt fails visibly too.
        return json_response(report.model_dump(mode="json"), 200 if report.ok else 500)

    return _guarded(request, ("GET", "POST"), get_runtime, respond)
