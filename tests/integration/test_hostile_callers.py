"""What a stranger, a signed-in mentor or a broken client can send to the function.

Each test names the attack it stands for (README, "Reliability and security");
each was seen to fail with its guard removed.
"""

from __future__ import annotations

import io
import json
import logging
import threading
import time
import uuid

import functions_framework
import pytest
from cryptography.hazmat.primitives.asymmetric import rsa
from pydantic import ValidationError

from certification_expiry.auth import KEY_FETCH_TIMEOUT_SECONDS
from certification_expiry.config import Settings
from certification_expiry.log_events import LOGGER_NAME
from certification_expiry.structured_logging import cloud_logging_handler
from local_supabase.gateway.app import DEFAULT_JWT_SECRET
from local_supabase.keys import sign, user_access_token
from tests.function_client import function_test_client
from tests.google_certs import AUDIENCE, SCHEDULER, google_certs, google_token


@pytest.fixture
def certs():
    with google_certs() as served:
        yield served


@pytest.fixture
def client(stack, monkeypatch, certs):
    return function_test_client(stack, monkeypatch, certs.url, OIDC_AUDIENCE=AUDIENCE, ALLOWED_INVOKERS=SCHEDULER)


@pytest.fixture
def log_lines():
    """The function's log lines exactly as Cloud Logging would receive them, parsed."""
    stream = io.StringIO()
    handler = cloud_logging_handler(stream)
    logger = logging.getLogger(LOGGER_NAME)
    logger.addHandler(handler)
    yield lambda: [json.loads(line) for line in stream.getvalue().splitlines()]
    logger.removeHandler(handler)


def bearer(token: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {token}"}


# --- Google's certificates ----------------------------------------------------------------


def test_google_certificates_are_fetched_once_and_then_served_from_the_cache(client, certs):
    for _ in range(5):
        response = client.post("/", headers=bearer(google_token()), json={"dry_run": True})
        assert response.status_code == 200, response.get_data(as_text=True)
    assert certs.fetches == 1


@pytest.mark.parametrize(
    "token",
    [
        # Claims Google as issuer, but is HS256 (signed with anything): not Google's.
        sign("x" * 32, {"iss": "https://accounts.google.com", "aud": AUDIENCE, "exp": int(time.time()) + 60}),
        # RS256 without a key id.
        google_token(kid=None),
        # For another function.
        google_token(audience="https://somewhere.else"),
    ],
    ids=["hs256 claiming google", "no kid", "other audience"],
)
def test_only_what_is_really_a_google_identity_token_for_us_triggers_a_fetch(client, certs, token):
    response = client.post("/", headers=bearer(token), json={"dry_run": True})
    assert response.status_code == 401
    assert certs.fetches == 0


def test_a_stalled_certificate_endpoint_holds_no_worker_long_and_answers_503_generically(
    client, certs, stack, log_lines
):
    certs.stall_seconds = 30
    answers: list[tuple[float, int, dict]] = []

    def call(token: str) -> tuple[float, int, dict]:
        started = time.monotonic()
        response = client.post("/", headers=bearer(token), json={"dry_run": True})
        return time.monotonic() - started, response.status_code, response.get_json()

    threads = [threading.Thread(target=lambda: answers.append(call(google_token()))) for _ in range(8)]
    for thread in threads:
        thread.start()
    time.sleep(0.2)
    operator_seconds, operator_status, _ = call(stack.service_role_key)  # a legitimate operator meanwhile
    for thread in threads:
        thread.join(timeout=60)

    assert operator_status == 200
    assert operator_seconds < KEY_FETCH_TIMEOUT_SECONDS
    assert len(answers) == 8
    for seconds, status, body in answers:
        assert status == 503
        assert seconds < KEY_FETCH_TIMEOUT_SECONDS + 2
        assert body["error"]["code"] == "verification_unavailable"
        assert "127.0.0.1" not in body["error"]["message"]  # the fetch's own error stays in the log
    rejected = [line for line in log_lines() if line["event"] == "request.rejected" and line["status"] == 503]
    assert rejected
    assert "certificates" in rejected[0]["detail"]


def test_a_google_token_signed_with_another_key_under_googles_key_id_is_refused_without_saying_why(client):
    forged = google_token(key=rsa.generate_private_key(public_exponent=65537, key_size=2048))
    response = client.post("/", headers=bearer(forged), json={"dry_run": True})
    assert response.status_code == 401
    assert response.get_json()["error"]["message"] == "the Google identity token is not valid"


def test_error_bodies_do_not_echo_the_configured_audience(client):
    response = client.post("/", headers=bearer(google_token(audience=AUDIENCE + "/x")), json={"dry_run": True})
    assert response.status_code == 401
    assert AUDIENCE not in response.get_data(as_text=True)


def test_supabase_auth_errors_do_not_echo_the_network_error(stack, monkeypatch):
    # No JWT secret: a user's token goes to Supabase Auth, here at a host that does not resolve.
    client = function_test_client(
        stack, monkeypatch, SUPABASE_JWT_SECRET=None, SUPABASE_URL="http://supabase.invalid:54321"
    )
    response = client.post("/", headers=bearer(user_access_token(DEFAULT_JWT_SECRET, uuid.uuid4())))
    assert response.status_code == 503
    assert "invalid" not in response.get_json()["error"]["message"]


# --- configuration ------------------------------------------------------------------------


@pytest.mark.parametrize("secret", ["", "short-but-not-empty"])
def test_an_empty_or_short_jwt_secret_stops_the_function_at_start(stack, monkeypatch, secret):
    monkeypatch.setenv("SUPABASE_URL", stack.url)
    monkeypatch.setenv("SUPABASE_SERVICE_ROLE_KEY", stack.service_role_key)
    monkeypatch.setenv("SUPABASE_JWT_SECRET", secret)
    with pytest.raises(ValidationError) as raised:
        Settings()
    message = str(raised.value)
    assert "SUPABASE_JWT_SECRET" in message
    assert "at least 32 characters" in message
    if secret:
        assert secret not in message
    with pytest.raises(ValidationError):
        functions_framework.create_app(target="certification_expiry_job", source="main.py")


# --- the request body ---------------------------------------------------------------------


@pytest.mark.parametrize(
    "body",
    [
        b"[" * 1000,
        b"[" * 60_000,
        b'{"dry_run": ' + b"[" * 5000 + b"]" * 5000 + b"}",
        b'{"dry_run": true, "dry_run": false}',
        b'{"max_mentors": NaN}',
        b'{"max_mentors": Infinity}',
        b'{"max_mentors": ' + b"9" * 5000 + b"}",
        b'{"max_mentors": 1e999}',
    ],
    ids=["nested 1000", "nested 60000", "nested value", "duplicate key", "NaN", "Infinity", "huge int", "huge float"],
)
def test_json_the_parser_cannot_take_is_a_400_and_a_rejected_line(client, stack, log_lines, body):
    response = client.post("/", headers=bearer(stack.service_role_key), data=body)
    assert response.status_code == 400, response.get_data(as_text=True)
    assert response.get_json()["error"]["code"] == "bad_request"
    assert [line["event"] for line in log_lines()] == ["request.rejected"]


# --- credentials anywhere but Authorization -----------------------------------------------


@pytest.mark.parametrize("parameter", ["access_token", "apikey", "key"])
def test_a_key_in_the_query_string_is_refused_and_never_logged_or_echoed(client, stack, log_lines, parameter):
    key = stack.service_role_key
    response = client.post(f"/?{parameter}={key}", headers=bearer(key), json={"dry_run": True})
    assert response.status_code == 400
    assert key not in response.get_data(as_text=True)
    lines = log_lines()
    assert [line["event"] for line in lines] == ["request.rejected"]
    assert key not in json.dumps(lines)


def test_no_log_line_copies_the_url_or_header_values(client, stack, log_lines):
    key = stack.service_role_key
    response = client.post(
        "/",
        headers={
            **bearer(key),
            "User-Agent": f"agent {key}",
            "X-Cloud-Trace-Context": key,
            "traceparent": key,
            "Referer": f"https://example.org/?k={key}",
        },
        json={"dry_run": True},
    )
    assert response.status_code == 200
    lines = log_lines()
    assert {line["event"] for line in lines} >= {"job.started", "job.finished"}
    assert key not in json.dumps(lines)
    assert lines[0]["httpRequest"] == {"requestMethod": "POST", "protocol": "HTTP/1.1"}


def test_a_well_formed_trace_header_is_still_kept(client, stack, log_lines):
    trace = uuid.uuid4().hex
    client.post(
        "/",
        headers={**bearer(stack.service_role_key), "X-Cloud-Trace-Context": f"{trace}/1;o=1"},
        json={"dry_run": True},
    )
    assert {line["logging.googleapis.com/trace"] for line in log_lines()} == {trace}
