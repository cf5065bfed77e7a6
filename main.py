"""Cloud Run functions entry points (functions-framework targets)."""

import flask
import functions_framework

from certification_expiry.http_api import handle_compliance_check, handle_job
from certification_expiry.runtime import get_runtime


@functions_framework.http
def certification_expiry_job(request: flask.Request):
    """Pause every active mentor whose certification has expired (POST)."""
    return handle_job(request, get_runtime)


@functions_framework.http
def certification_compliance_check(request: flask.Request):
    """Alert when expired mentors are still active or the job stopped running (GET or POST)."""
    return handle_compliance_check(request, get_runtime)
