"""What a stranger, a signed-in mentor or a broken client can send to the function.

Each test names the attack it stands for (docs/testing.md, which test holds each behaviour);
each was seen to fail with its guard removed.
"""

from __future__ import annotations

import base64
import gc
import hashlib
import hmac
import io
import json
import logging
import threading
import time
import uuid

import functions_framework
import pytest
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import rsa
from pydantic import ValidationError

from certification_expiry.auth import KEY_FETCH_TIMEOUT_SECONDS
from certification_expiry.config import Settings
from certification_expiry.log_events import LOGGER_NAME
from certification_expiry.structured_logging import cloud_logging_handler
from local_supabase.keys import DEFAULT_JWT_SECRET, SigningKey, sign, user_access_token
from tests.function_client import function_test_client
from tests.google_certs import AUDIENCE, SCHEDULER, google_token


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
    deadline = time.monotonic() + 10
    while certs.fetches == 0 and time.monotonic() < deadline:  # a fetch is stalled now
        time.sleep(0.01)
    assert certs.fetches, "no certificate fetch began"
    operator_seconds, operator_status, _ = call(stack.secret_key)  # a legitimate operator meanwhile
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


# --- the project's JWKS (users' tokens signed with asymmetric keys) --------------------------


def jwks_fetches(stack) -> int:
    return stack.gateway.requests["GET /auth/v1/.well-known/jwks.json"]


@pytest.fixture
def users_client(stack, monkeypatch):
    """New keys only: a user's token can be verified against the stack's JWKS and nothing else."""
    return function_test_client(stack, monkeypatch)


def test_forged_key_ids_cost_no_fetch_each(users_client, stack):
    other = SigningKey.generate()
    before = jwks_fetches(stack)
    for _ in range(5):
        forged = user_access_token(other, uuid.uuid4(), issuer=f"{stack.url}/auth/v1")
        response = users_client.post("/", headers=bearer(forged))
        assert response.status_code == 401
        assert response.get_json()["error"]["message"] == "the access token is not valid for this project"
    assert jwks_fetches(stack) - before <= 1


def test_a_token_signed_with_another_key_under_the_projects_key_id_is_refused(users_client, stack):
    impostor = SigningKey(SigningKey.generate().private_key, stack.signing_key.kid)
    token = user_access_token(impostor, uuid.uuid4(), issuer=f"{stack.url}/auth/v1")
    assert users_client.post("/", headers=bearer(token)).status_code == 401


@pytest.mark.parametrize("with_legacy_secret", [False, True])
def test_alg_confusion_an_hs256_token_signed_with_the_public_key_is_refused(stack, monkeypatch, with_legacy_secret):
    client = function_test_client(
        stack, monkeypatch, SUPABASE_JWT_SECRET=DEFAULT_JWT_SECRET if with_legacy_secret else None
    )
    public_pem = stack.signing_key.private_key.public_key().public_bytes(
        serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo
    )
    claims = {
        "iss": f"{stack.url}/auth/v1",
        "aud": "authenticated",
        "role": "authenticated",
        "sub": str(uuid.uuid4()),
        "exp": int(time.time()) + 600,
    }
    token = hmac_jwt(claims, public_pem, stack.signing_key.kid)
    assert client.post("/", headers=bearer(token)).status_code == 401


def hmac_jwt(claims: dict, secret: bytes, kid: str) -> str:
    """PyJWT refuses to HMAC with a PEM key, as it should: an attacker signs by hand."""

    def b64(data: bytes) -> bytes:
        return base64.urlsafe_b64encode(data).rstrip(b"=")

    signing_input = (
        b64(json.dumps({"alg": "HS256", "typ": "JWT", "kid": kid}).encode()) + b"." + b64(json.dumps(claims).encode())
    )
    return (signing_input + b"." + b64(hmac.new(secret, signing_input, hashlib.sha256).digest())).decode()


@pytest.mark.parametrize(
    ("overrides", "status"),
    [
        ({"expires_in": -60}, 401),
        ({"issuer": "https://another-project.supabase.co/auth/v1"}, 401),
    ],
    ids=["expired", "another project's issuer"],
)
def test_es256_tokens_must_be_current_and_of_this_project(users_client, stack, overrides, status):
    token = user_access_token(stack.signing_key, uuid.uuid4(), **{"issuer": f"{stack.url}/auth/v1", **overrides})
    assert users_client.post("/", headers=bearer(token)).status_code == status


def test_a_stalled_jwks_fetch_answers_503_quickly_and_generically(stack, monkeypatch, certs):
    certs.stall_seconds = 30  # any path of that server stalls: here, the project's JWKS
    client = function_test_client(stack, monkeypatch, SUPABASE_URL=certs.base_url)
    token = user_access_token(stack.signing_key, uuid.uuid4(), issuer=f"{certs.base_url}/auth/v1")
    answers: list[tuple[float, int, dict]] = []

    def call() -> None:
        started = time.monotonic()
        response = client.post("/", headers=bearer(token))
        answers.append((time.monotonic() - started, response.status_code, response.get_json()))

    threads = [threading.Thread(target=call) for _ in range(8)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=60)
    assert len(answers) == 8
    for seconds, status, body in answers:
        assert status == 503
        assert seconds < KEY_FETCH_TIMEOUT_SECONDS + 2
        assert body["error"]["message"] == "the token cannot be verified right now; try again later"


# --- configuration ------------------------------------------------------------------------


@pytest.mark.parametrize("secret", ["", "short-but-not-empty"])
def test_an_empty_or_short_jwt_secret_stops_the_function_at_start(stack, monkeypatch, secret):
    monkeypatch.setenv("SUPABASE_URL", stack.url)
    monkeypatch.setenv("SUPABASE_SERVICE_ROLE_KEY", stack.secret_key)
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
    # The garbage of earlier tests is collected first, and not during the request:
    # a finalizer that runs inside the parser's deep recursion cannot even report
    # its own warning, and pytest fails this test for it (seen in a random order).
    gc.collect()
    gc.disable()
    try:
        response = client.post("/", headers=bearer(stack.secret_key), data=body)
    finally:
        gc.enable()
    assert response.status_code == 400, response.get_data(as_text=True)
    assert response.get_json()["error"]["code"] == "bad_request"
    assert [line["event"] for line in log_lines()] == ["request.rejected"]


# --- credentials anywhere but Authorization -----------------------------------------------


@pytest.mark.parametrize("parameter", ["access_token", "apikey", "key"])
def test_a_key_in_the_query_string_is_refused_and_never_logged_or_echoed(client, stack, log_lines, parameter):
    key = stack.secret_key
    response = client.post(f"/?{parameter}={key}", headers=bearer(key), json={"dry_run": True})
    assert response.status_code == 400
    assert key not in response.get_data(as_text=True)
    lines = log_lines()
    assert [line["event"] for line in lines] == ["request.rejected"]
    assert key not in json.dumps(lines)


def test_no_log_line_copies_the_url_or_header_values(client, stack, log_lines):
    key = stack.secret_key
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
        headers={**bearer(stack.secret_key), "X-Cloud-Trace-Context": f"{trace}/1;o=1"},
        json={"dry_run": True},
    )
    assert {line["logging.googleapis.com/trace"] for line in log_lines()} == {trace}
