"""The job's HTTP contract through functions-framework's own app, against the local gateway,
configured with Supabase's legacy keys (the other tiers use the new ones).

Each refused request must leave the database as it was.
"""

from __future__ import annotations

import time
import uuid
from collections.abc import Callable

import psycopg
import pytest

from local_supabase.keys import DEFAULT_JWT_SECRET, api_key, sign, user_access_token
from tests.function_client import function_test_client
from tests.google_certs import AUDIENCE, SCHEDULER, google_token


@pytest.fixture
def client(stack, monkeypatch, certs):
    return function_test_client(
        stack,
        monkeypatch,
        certs.url,
        OIDC_AUDIENCE=AUDIENCE,
        ALLOWED_INVOKERS=f"{SCHEDULER}, other@project.iam.gserviceaccount.com",
        # The legacy tier: the JWT service-role key and the HS256 secret, no secret key.
        SUPABASE_SECRET_KEY=None,
        SUPABASE_SERVICE_ROLE_KEY=stack.service_role_key,
        SUPABASE_JWT_SECRET=DEFAULT_JWT_SECRET,
    )


@pytest.fixture
def database_writes(stack) -> Callable[[], bool]:
    """Counts of the rows a run can write, before and after the test."""

    def counts() -> tuple[int, ...]:
        with psycopg.connect(stack.database.dsn) as conn:
            return conn.execute(
                "select (select count(*) from public.certification_expiry_runs),"
                " (select count(*) from public.mentor_status_history),"
                " (select count(*) from public.certification_expiry_audit)"
            ).fetchone()

    before = counts()
    return lambda: counts() != before


def bearer(token: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {token}"}


def assert_error(response, status: int, code: str) -> None:
    assert response.status_code == status, response.get_data(as_text=True)
    body = response.get_json()
    assert body["error"]["code"] == code
    assert body["error"]["message"]


def test_only_post_is_allowed(client, stack, database_writes):
    for method in ("get", "put", "delete", "patch"):
        response = getattr(client, method)("/", headers=bearer(stack.service_role_key))
        assert_error(response, 405, "method_not_allowed")
        assert response.headers["Allow"] == "POST"
    assert not database_writes()


@pytest.mark.parametrize(
    ("headers", "status", "code"),
    [
        ({}, 401, "unauthenticated"),
        ({"Authorization": "Basic c2VydmljZTprZXk="}, 401, "unauthenticated"),
        (bearer("not-the-key"), 401, "unauthenticated"),
        (bearer(sign("some-other-secret-of-at-least-32-chars!", {"role": "service_role"})), 401, "unauthenticated"),
        (bearer(sign(DEFAULT_JWT_SECRET, {"role": "service_role", "exp": 1})), 401, "unauthenticated"),
        (bearer(sign(DEFAULT_JWT_SECRET, {"role": "service_role"})), 401, "unauthenticated"),
        (bearer(api_key(DEFAULT_JWT_SECRET, "anon")), 403, "forbidden"),
        (bearer(user_access_token(DEFAULT_JWT_SECRET, uuid.uuid4())), 401, "unauthenticated"),
        (bearer(google_token(audience="https://somewhere.else")), 401, "unauthenticated"),
        (bearer(google_token(email="intruder@evil.example")), 403, "forbidden"),
        (bearer(google_token(verified=False)), 403, "forbidden"),
        (bearer(google_token(verified="false")), 403, "forbidden"),
        (bearer(google_token(verified="true")), 403, "forbidden"),
    ],
    ids=[
        "none",
        "basic",
        "wrong key",
        "jwt from another project",
        "expired service jwt",
        "service jwt without exp",
        "anon key",
        "user jwt of another issuer",
        "oidc wrong audience",
        "oidc other email",
        "oidc unverified email",
        "oidc email_verified string false",
        "oidc email_verified string true",
    ],
)
def test_authentication_is_checked_before_anything_is_written(client, database_writes, headers, status, code):
    response = client.post("/", headers=headers, json={"dry_run": True})
    assert_error(response, status, code)
    if status == 401:
        assert response.headers["WWW-Authenticate"] == "Bearer"
    assert not database_writes()


def test_a_users_hs256_session_of_this_project_who_coordinates_nothing_is_403(client, stack, database_writes):
    token = user_access_token(DEFAULT_JWT_SECRET, uuid.uuid4(), issuer=f"{stack.url}/auth/v1")
    assert_error(client.post("/", headers=bearer(token)), 403, "forbidden")
    assert not database_writes()


@pytest.mark.parametrize(
    "credential",
    ["service key", "service jwt", "oidc"],
)
def test_accepted_credentials_start_a_run(client, stack, credential):
    token = {
        "service key": stack.service_role_key,
        "service jwt": sign(DEFAULT_JWT_SECRET, {"role": "service_role", "exp": int(time.time()) + 60}),
        "oidc": google_token(),
    }[credential]
    response = client.post("/", headers=bearer(token), json={"dry_run": True})
    assert response.status_code == 200, response.get_data(as_text=True)
    summary = response.get_json()
    assert summary["dry_run"] is True
    assert summary["status"] == "succeeded"
    assert summary["paused_count"] == 0
    uuid.UUID(summary["job_run_id"])


@pytest.mark.parametrize(
    ("body", "status", "code"),
    [
        (b"{not json", 400, "bad_request"),
        (b"[1, 2]", 400, "bad_request"),
        (b'"dry_run"', 400, "bad_request"),
        (b'{"dry_run": true, "surprise": 1}', 400, "bad_request"),
        (b'{"dry_run": "yes"}', 400, "bad_request"),
        (b'{"dry_run": 1}', 400, "bad_request"),
        (b'{"max_mentors": 0}', 400, "bad_request"),
        (b'{"max_mentors": "10"}', 400, "bad_request"),
        (b'{"max_mentors": 1.5}', 400, "bad_request"),
        (b"\xff\xfe", 400, "bad_request"),
        (b'{"pad": "' + b"x" * 70_000 + b'"}', 413, "payload_too_large"),
    ],
)
def test_bad_bodies_are_refused_with_a_clear_message(client, stack, database_writes, body, status, code):
    response = client.post("/", headers=bearer(stack.service_role_key), data=body)
    assert_error(response, status, code)
    assert not database_writes()


def test_an_empty_body_means_the_defaults(client, stack):
    response = client.post(
        "/", headers=bearer(stack.service_role_key), data=b"", content_type="application/octet-stream"
    )
    # A real run on the shared test database: whatever it finds, it must succeed.
    assert response.status_code == 200, response.get_data(as_text=True)
    assert response.get_json()["dry_run"] is False


def test_responses_never_echo_secrets(client, stack):
    secrets = (stack.service_role_key, DEFAULT_JWT_SECRET)
    for headers, body in [
        (bearer(stack.service_role_key), b"{bad"),
        (bearer(stack.service_role_key + "x"), b"{}"),
        (bearer(sign(DEFAULT_JWT_SECRET, {"role": "anon"})), b"{}"),
    ]:
        text = client.post("/", headers=headers, data=body).get_data(as_text=True)
        assert not any(secret in text for secret in secrets)
