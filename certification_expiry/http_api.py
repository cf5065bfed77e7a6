"""The HTTP contract of the job's entry point: method, authentication, body, status codes."""

from __future__ import annotations

import json
import logging
from collections.abc import Callable

import flask
from pydantic import ValidationError

from .errors import BadRequestError, CertificationExpiryError, MethodNotAllowedError, PayloadTooLargeError
from .job import RunScope
from .log_events import LOGGER_NAME, log_event
from .models import JobRequest, RunStatus, Trigger
from .runtime import Runtime

ResponseTuple = tuple[str, int, dict[str, str]]
JSON_HEADERS = {"Content-Type": "application/json"}


def json_response(body: object, status: int, headers: dict[str, str] | None = None) -> ResponseTuple:
    return json.dumps(body), status, {**JSON_HEADERS, **(headers or {})}


def error_response(error: CertificationExpiryError) -> ResponseTuple:
    headers = {"Allow": "POST"} if isinstance(error, MethodNotAllowedError) else {}
    if error.status == 401:
        headers["WWW-Authenticate"] = "Bearer"
    return json_response({"error": {"code": error.code, "message": error.message}}, error.status, headers)


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
        data = json.loads(raw)
    except (ValueError, UnicodeDecodeError) as error:
        raise BadRequestError(f"the body is not valid JSON: {error}") from error
    if not isinstance(data, dict):
        raise BadRequestError('the body must be a JSON object, e.g. {"dry_run": true}')
    try:
        return JobRequest.model_validate(data)
    except ValidationError as error:
        problems = "; ".join(f"{'.'.join(map(str, e['loc'])) or 'body'}: {e['msg']}" for e in error.errors())
        raise BadRequestError(f"invalid body: {problems}") from error


def handle_job(request: flask.Request, get_runtime: Callable[[], Runtime]) -> ResponseTuple:
    """POST only; authenticated before anything touches the database."""
    try:
        if request.method != "POST":
            raise MethodNotAllowedError(f"{request.method} is not allowed: start a run with POST")
        runtime = get_runtime()
        runtime.authenticator.authenticate(request.headers.get("Authorization"))
        job_request = parse_job_request(request, runtime.settings.job_max_body_bytes)
        # Cloud Scheduler marks its requests; anything else was started by hand.
        scheduled = "X-CloudScheduler-JobName" in request.headers
        scope = RunScope(trigger=Trigger.SCHEDULED if scheduled else Trigger.MANUAL)
        summary = runtime.job.run(job_request, scope)
    except CertificationExpiryError as error:
        log_event(
            logging.getLogger(LOGGER_NAME),
            logging.WARNING if error.status < 500 else logging.ERROR,
            "job.rejected",
            "request refused",
            code=error.code,
            status=error.status,
            reason=error.message,
        )
        return error_response(error)
    # Non-2xx unless the run did all it should, so that Cloud Scheduler retries.
    status = 200 if summary.status is RunStatus.SUCCEEDED else 500
    return json_response(summary.model_dump(mode="json"), status)
