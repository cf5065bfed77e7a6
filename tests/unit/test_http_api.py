"""The HTTP layer: its one error table, and each refusal as a caller and the log see it."""

from __future__ import annotations

import io
import json
import uuid
from typing import Any

import flask
import pytest
from werkzeug.exceptions import InternalServerError, NotFound
from werkzeug.test import EnvironBuilder

from certification_expiry import errors
from certification_expiry.errors import CertificationExpiryError
from certification_expiry.http_api import (
    ERROR_ANSWERS,
    bearer_token,
    error_response,
    framework_error_response,
    parse_job_request,
)
from certification_expiry.ports import StoreError, StoreErrorKind
from certification_expiry.records import Trigger
from tests.fake_serving import OPERATOR_KEY, FakeServing
from tests.fakes import FakeStore, fail


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


# --- through the entry points: each refusal's words, headers and log line -------------------


def serving_with(monkeypatch: pytest.MonkeyPatch, target: str = "certification_expiry_job", **env: str) -> FakeServing:
    for name, value in env.items():
        monkeypatch.setenv(name, value)
    return FakeServing(FakeStore(), monkeypatch, target)


AUTHORIZED = {"Authorization": f"Bearer {OPERATOR_KEY}", "Content-Type": "application/json"}


def refusal_of(response: Any) -> tuple[int, str, str]:
    error = response.get_json()["error"]
    return response.status_code, error["code"], error["message"]


@pytest.mark.parametrize(
    ("body", "code", "message"),
    [
        ("[1]", "bad_request", 'the body must be a JSON object, e.g. {"dry_run": true}'),
        ('{"dry_run": "yes"}', "bad_request", "invalid body: dry_run: Input should be a valid boolean"),
        ('{"max_mentors": 0}', "bad_request", "invalid body: max_mentors: Input should be greater than 0"),
        ("[" * 100_000, "bad_request", "the body is not valid JSON: it is nested too deeply"),
    ],
    ids=["not an object", "a loose type", "out of range", "nested too deeply"],
)
def test_a_body_the_contract_refuses_is_told_why(monkeypatch, body, code, message):
    serving = serving_with(monkeypatch, JOB_MAX_BODY_BYTES="200000")
    response = serving.client.post("/", data=body, headers=AUTHORIZED)
    assert refusal_of(response) == (400, code, message)
    assert serving.store.runs == {}


def test_json_that_does_not_parse_and_duplicate_keys_are_told_apart(monkeypatch):
    serving = serving_with(monkeypatch)
    status, code, message = refusal_of(serving.client.post("/", data="{", headers=AUTHORIZED))
    assert (status, code) == (400, "bad_request")
    assert message.startswith("the body is not valid JSON: Expecting property name")
    status, code, message = refusal_of(serving.client.post("/", data='{"a": 1, "a": 2}', headers=AUTHORIZED))
    assert message == "the body is not valid JSON: a key appears more than once"


def test_a_body_of_exactly_the_limit_is_read_and_one_byte_more_is_refused(monkeypatch):
    serving = serving_with(monkeypatch, JOB_MAX_BODY_BYTES="40")
    exactly = '{"dry_run": true}'.ljust(40)
    response = serving.client.post("/", data=exactly, headers=AUTHORIZED)
    assert (response.status_code, response.get_json()["dry_run"]) == (200, True)
    response = serving.client.post("/", data=exactly + " ", headers=AUTHORIZED)
    assert refusal_of(response) == (413, "payload_too_large", "the body is over 40 bytes")


def test_refusals_before_any_work_name_the_method_and_the_query_string(monkeypatch):
    serving = serving_with(monkeypatch)
    response = serving.client.put("/", headers=AUTHORIZED)
    assert refusal_of(response) == (405, "method_not_allowed", "PUT is not allowed here: use POST")
    assert response.headers["Allow"] == "POST"
    compliance = serving_with(monkeypatch, "certification_compliance_check")
    response = compliance.client.delete("/", headers=AUTHORIZED)
    assert refusal_of(response) == (405, "method_not_allowed", "DELETE is not allowed here: use GET or POST")
    assert response.headers["Allow"] == "GET, POST"
    response = serving.client.post("/?apikey=x", headers=AUTHORIZED)
    assert refusal_of(response) == (
        400,
        "bad_request",
        "query parameters are not accepted: send the key only as Authorization: Bearer, and options in the JSON body",
    )
    assert "Allow" not in response.headers


def test_a_refusal_is_one_line_with_its_code_status_and_the_detail_for_the_log_only(monkeypatch):
    serving = serving_with(monkeypatch)
    response = serving.client.post("/", headers={"Authorization": "Bearer not-a-jwt"})
    assert refusal_of(response) == (401, "unauthenticated", "the bearer token is neither the service key nor a JWT")
    assert response.headers["WWW-Authenticate"] == "Bearer"
    [line] = serving.events("request.rejected")
    assert (line["severity"], line["message"], line["code"], line["status"]) == (
        "WARNING",
        "request refused",
        "unauthenticated",
        401,
    )
    assert line["reason"] == "the bearer token is neither the service key nor a JWT"


def test_a_refusal_by_the_server_is_logged_at_error_with_its_detail(monkeypatch):
    serving = serving_with(monkeypatch)
    fail(serving.store, "start_run", StoreError(StoreErrorKind.TRANSIENT, "08006", "connection lost"))
    response = serving.client.post("/", headers=AUTHORIZED)
    assert refusal_of(response) == (503, "database_unavailable", "could not start the run: the database did not answer")
    [line] = serving.events("request.rejected")
    assert (line["severity"], line["status"]) == ("ERROR", 503)
    assert "connection lost" in line["detail"]


def test_a_rate_limited_run_says_when_to_come_back(monkeypatch):
    serving = serving_with(monkeypatch)
    fail(serving.store, "start_run", StoreError(StoreErrorKind.RATE_LIMITED, "PT429", "too soon", 42))
    response = serving.client.post("/", headers=AUTHORIZED)
    assert (response.status_code, response.headers["Retry-After"]) == (429, "42")
    assert "Allow" not in response.headers


def test_the_frameworks_refusals_and_an_escaped_exception_are_answered_in_json_and_logged(monkeypatch):
    serving = serving_with(monkeypatch)
    response = serving.client.get("/favicon.ico")
    assert refusal_of(response) == (404, "not_found", "Not Found")
    [line] = serving.events("request.rejected")
    assert (line["severity"], line["message"], line["reason"]) == ("WARNING", "request refused", "NotFound")

    serving = serving_with(monkeypatch)
    fail(serving.store, "start_run", RuntimeError("a bug"))  # escapes the job: nothing catches it
    response = serving.client.post("/", headers=AUTHORIZED)
    assert refusal_of(response) == (500, "internal", "the function failed; the run, if one started, is recorded")
    [line] = serving.events("request.rejected")
    assert (line["severity"], line["message"], line["reason"], line["status"]) == (
        "ERROR",
        "request failed",
        "RuntimeError",
        500,
    )


@pytest.mark.parametrize(
    ("header", "token"),
    [("Bearer abc", "abc"), ("bearer abc", "abc"), ("BEARER  abc ", "abc"), ("Bearer a b", "a b")],
)
def test_the_bearer_scheme_in_any_case_carries_the_rest_as_the_token(header, token):
    assert bearer_token(header) == token


def test_each_request_is_recorded_as_the_scheduler_sent_it_or_not(monkeypatch):
    serving = serving_with(monkeypatch)
    scheduled = serving.client.post("/", headers={**AUTHORIZED, "X-CloudScheduler-JobName": "nightly"}).get_json()
    by_hand = serving.client.post("/", headers=AUTHORIZED).get_json()
    runs = serving.store.runs
    assert (runs[uuid.UUID(scheduled["job_run_id"])].trigger, runs[uuid.UUID(by_hand["job_run_id"])].trigger) == (
        Trigger.SCHEDULED,
        Trigger.MANUAL,
    )


def test_an_error_without_a_row_is_answered_500_internal():
    class Unforeseen(CertificationExpiryError):
        pass

    body, status, _ = error_response(Unforeseen("something new"), ("POST",))
    assert (status, json.loads(body)["error"]["code"]) == (500, "internal")


def test_a_server_error_of_the_framework_is_ours_and_a_refusal_without_words_is_named():
    body, status, _ = framework_error_response(InternalServerError())
    assert (status, json.loads(body)["error"]) == (
        500,
        {"code": "internal", "message": "the function failed; the run, if one started, is recorded"},
    )
    wordless = NotFound()
    wordless.description = ""
    body, status, _ = framework_error_response(wordless)
    assert (status, json.loads(body)["error"]) == (404, {"code": "not_found", "message": "Not Found"})


def test_a_body_with_no_declared_length_is_cut_at_the_limit():
    environ = EnvironBuilder(method="POST", input_stream=io.BytesIO(b" " * 41)).get_environ()
    environ.pop("CONTENT_LENGTH", None)
    environ["wsgi.input_terminated"] = True  # read to the end, as a chunked body is
    request = flask.Request(environ)
    assert request.content_length is None
    with pytest.raises(errors.RequestTooLargeError) as raised:
        parse_job_request(request, 40)
    assert raised.value.message == "the body is over 40 bytes"


def test_every_problem_with_a_body_is_named():
    environ = EnvironBuilder(method="POST", data='{"dry_run": 1, "max_mentors": 0}').get_environ()
    with pytest.raises(errors.InvalidRequestError) as raised:
        parse_job_request(flask.Request(environ), 1000)
    assert raised.value.message == (
        "invalid body: dry_run: Input should be a valid boolean; max_mentors: Input should be greater than 0"
    )
