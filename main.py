"""Cloud Run functions entry points (functions-framework targets)."""

import functools

import flask
import functions_framework

from certification_expiry.config import Settings
from certification_expiry.http_api import (
    ResponseTuple,
    framework_error_response,
    handle_compliance_check,
    handle_job,
)
from certification_expiry.runtime import get_runtime

# Read once, at import, so that a misconfigured deployment fails to start, with
# pydantic's message (secrets masked) in its log, rather than failing requests;
# the runtime is built from these on the first request.
runtime = functools.partial(get_runtime, Settings())

# functions-framework loads this module inside its Flask app's context. Werkzeug
# would answer a doubled or trailing slash with an HTML redirect of its own, before
# any handler: every path is the function's to answer.
if flask.has_app_context():
    flask.current_app.url_map.merge_slashes = False
    flask.current_app.url_map.strict_slashes = False


@functions_framework.http
def certification_expiry_job(request: flask.Request) -> ResponseTuple:
    """Pause every active mentor whose certification has expired (POST)."""
    return handle_job(request, runtime)


@functions_framework.http
def certification_compliance_check(request: flask.Request) -> ResponseTuple:
    """Alert when expired mentors are still active or the job stopped running (GET or POST)."""
    return handle_compliance_check(request, runtime)


@functions_framework.errorhandler(Exception)  # type: ignore[untyped-decorator]  # Flask's, untyped here
def json_errors(error: Exception) -> ResponseTuple:
    """Every answer is JSON, the framework's own (404, an unexpected crash) included."""
    return framework_error_response(error)
