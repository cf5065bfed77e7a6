"""Cloud Run functions entry points (functions-framework targets)."""

import functools

import flask
import functions_framework

from certification_expiry.config import Settings
from certification_expiry.http_api import ResponseTuple, handle_compliance_check, handle_job
from certification_expiry.runtime import get_runtime

# Read once, at import, so that a misconfigured deployment fails to start, with
# pydantic's message (secrets masked) in its log, rather than failing requests;
# the runtime is built from these on the first request.
runtime = functools.partial(get_runtime, Settings())


@functions_framework.http
def certification_expiry_job(request: flask.Request) -> ResponseTuple:
    """Pause every active mentor whose certification has expired (POST)."""
    return handle_job(request, runtime)


@functions_framework.http
def certification_compliance_check(request: flask.Request) -> ResponseTuple:
    """Alert when expired mentors are still active or the job stopped running (GET or POST)."""
    return handle_compliance_check(request, runtime)
