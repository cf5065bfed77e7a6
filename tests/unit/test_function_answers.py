"""What the function says, to callers and to its log, whatever it is sent: a
configuration that cannot work stops it at start; every answer is JSON; a log line
names a user by id, never by email, and quotes what a caller sent short and escaped."""

from __future__ import annotations

import base64
import json
import os
import subprocess
import sys
import uuid

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from pydantic import ValidationError

from certification_expiry import errors
from certification_expiry.config import Settings
from certification_expiry.http_api import error_response
from certification_expiry.log_events import EXCERPT_CHARACTERS, excerpt
from local_supabase.keys import SigningKey, sign
from tests.fake_serving import FakeServing
from tests.fakes import FakeStore
from tests.google_certs import google_certs, google_token
from tests.unit.test_auth import JWT_SECRET, SIGNING_KEY, authenticator, session_claims
from tools.paths import PROJECT_ROOT


@pytest.mark.parametrize(
    "url",
    ["not-a-url", "", "   ", "ftp://project.supabase.co", "http://project.supabase.co", "https://", "//x.co"],
)
def test_a_supabase_url_that_cannot_work_is_refused_at_start(url):
    with pytest.raises(ValidationError, match="SUPABASE_URL"):
        Settings(supabase_url=url, supabase_secret_key="sb_secret_x")


@pytest.mark.parametrize(
    "url",
    ["https://project.supabase.co", "http://127.0.0.1:54321", "http://localhost:54321", "http://[::1]:54321"],
)
def test_https_or_this_machine_is_accepted(url):
    assert Settings(supabase_url=url, supabase_secret_key="sb_secret_x").supabase_url == url


@pytest.mark.parametrize("secret", [" " * 32, " " * 40 + "short", "\t" * 64])
def test_a_jwt_secret_of_blanks_is_refused_at_start(secret):
    with pytest.raises(ValidationError, match="SUPABASE_JWT_SECRET"):
        Settings(supabase_url="https://p.supabase.co", supabase_secret_key="sb_secret_x", supabase_jwt_secret=secret)


def test_keys_that_are_all_empty_are_refused_at_start():
    with pytest.raises(ValidationError, match="no usable database credential"):
        Settings(supabase_url="https://p.supabase.co", supabase_secret_key=",", supabase_service_role_key=" ")


def test_the_function_does_not_start_on_a_bad_url_and_names_the_variable_not_its_value():
    environment = {**os.environ, "SUPABASE_URL": "not-a-url-secretish", "SUPABASE_SECRET_KEY": "sb_secret_start"}
    completed = subprocess.run(
        [sys.executable, "-c", "import main"], cwd=PROJECT_ROOT, env=environment, capture_output=True, text=True
    )
    assert completed.returncode != 0
    assert "SUPABASE_URL" in completed.stderr
    assert "not-a-url-secretish" not in completed.stderr


# Werkzeug's test client reads a path that starts with "//" as a host ("//[", "//::"):
# those are generated without the second slash here, and the doubled and trailing
# slashes that a server does pass on are tested below by name.
PATHS = st.text(
    alphabet=st.characters(codec="ascii", exclude_categories=["Cc"], exclude_characters="?#"), max_size=40
).map(lambda text: "/" + text.lstrip("/"))
METHODS = st.sampled_from(["GET", "POST", "PUT", "PATCH", "DELETE", "HEAD", "OPTIONS", "TRACE", "PROPFIND"])


@pytest.mark.parametrize("target", ["certification_expiry_job", "certification_compliance_check"])
@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(path=PATHS, method=METHODS)
def test_every_answer_to_any_path_and_method_is_json(monkeypatch, target, path, method):
    serving = FakeServing(FakeStore(), monkeypatch, target)
    response = serving.client.open(path, method=method)
    if method == "HEAD":
        assert response.headers["Content-Type"] == "application/json"
        return
    assert response.headers["Content-Type"] == "application/json"
    body = response.get_json()
    if response.status_code >= 400:
        assert set(body["error"]) == {"code", "message"}


@pytest.mark.parametrize("path", ["//", "/x//y", "/x/", "///"])
def test_doubled_and_trailing_slashes_are_answered_by_the_function_not_redirected(monkeypatch, path):
    response = FakeServing(FakeStore(), monkeypatch).client.get(path)
    assert (response.status_code, response.headers["Content-Type"]) == (405, "application/json")


@pytest.mark.parametrize("path", ["/robots.txt", "/favicon.ico"])
def test_the_frameworks_own_routes_answer_json_404(monkeypatch, path):
    serving = FakeServing(FakeStore(), monkeypatch)
    response = serving.client.get(path)
    assert (response.status_code, response.headers["Content-Type"]) == (404, "application/json")
    assert response.get_json()["error"]["code"] == "not_found"


def test_a_users_email_never_names_them_only_their_id():
    claims = session_claims(email="kari.nordmann@example.org")
    invoker = authenticator(supabase_jwt_secret=JWT_SECRET).authenticate(sign(JWT_SECRET, claims))
    described = invoker.describe()
    assert claims["sub"] in described
    assert "kari.nordmann" not in described
    assert invoker.email is None


@pytest.mark.parametrize("verified", [True, False])
def test_a_refused_google_identity_is_not_described_by_its_email(verified):
    """A refused identity may be a person's Google account."""
    with google_certs() as certs:
        token = google_token(email="kari.nordmann@gmail.example", verified=verified)
        with pytest.raises(errors.PermissionDeniedError) as refused:
            authenticator(certs).authenticate(token)
    assert "kari.nordmann" not in f"{refused.value.message} {refused.value.detail}"


def test_caller_text_in_a_log_line_is_short_and_escaped(caplog):
    kid = "../../etc/passwd\n[system] forged line\u202e" + "x" * 8000
    with caplog.at_level("WARNING", logger="certification_expiry"):
        error_response(errors.AuthenticationError("the access token is not valid", detail=f'no key "{kid}"'), ("POST",))
    [record] = [r for r in caplog.records if getattr(r, "json_fields", {}).get("event") == "request.rejected"]
    detail = record.json_fields["detail"]
    assert len(detail) <= EXCERPT_CHARACTERS * 2
    assert "\n" not in detail
    assert "\u202e" not in detail
    assert "\\n" in detail
    assert "\\u202e" in detail


def test_an_unknown_key_id_is_quoted_escaped_in_the_log(monkeypatch, caplog):
    """The token's `kid` header is the caller's: PyJWT quotes it in its error."""
    token = SigningKey.generate().sign(session_claims())
    _header, rest = token.split(".", 1)
    forged = json.dumps({"alg": "ES256", "typ": "JWT", "kid": "k\n" * 3000})
    token = base64.urlsafe_b64encode(forged.encode()).rstrip(b"=").decode() + "." + rest
    serving = FakeServing(FakeStore(), monkeypatch)
    monkeypatch.setattr("jwt.PyJWKClient.fetch_data", lambda client: SIGNING_KEY.jwks())
    status, _ = serving.post(token)
    assert status == 401
    lines = [line for line in serving.lines() if line.get("event") == "request.rejected"]
    assert lines
    assert all(len(line.get("detail") or "") <= EXCERPT_CHARACTERS * 2 for line in lines)
    assert all("\n" not in (line.get("detail") or "") for line in lines)


def test_an_excerpt_keeps_short_plain_text_as_it_is():
    assert excerpt("kid-2026") == "kid-2026"
    assert excerpt(None) is None
    assert excerpt(str(uuid.UUID(int=1))) == str(uuid.UUID(int=1))


def test_a_project_that_publishes_no_asymmetric_key_refuses_such_tokens_with_401(monkeypatch):
    monkeypatch.setattr("jwt.PyJWKClient.fetch_data", lambda client: {"keys": []})
    serving = FakeServing(FakeStore(), monkeypatch)
    status, body = serving.post(SigningKey.generate().sign(session_claims()))
    assert (status, body["error"]["code"]) == (401, "unauthenticated")
