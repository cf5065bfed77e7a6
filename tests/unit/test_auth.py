"""Every decision of auth.py, with keys made here and no database: the deploy gate's
tier (cloudbuild.yaml) runs these, so a change that lets a token through fails there.

Google's certificates come from a loopback stand-in (tests/google_certs.py); the
project's JWKS from PyJWKClient's own fetch, pointed at a key made here.
"""

from __future__ import annotations

import time
import uuid
from collections.abc import Iterator
from typing import Any

import jwt
import pytest
from cryptography.hazmat.primitives.asymmetric import rsa

from certification_expiry.auth import Authenticator, GoogleIdentityTokens, SupabaseUserTokens
from certification_expiry.config import Settings
from certification_expiry.errors import AuthenticationError, PermissionDeniedError, VerificationUnavailableError
from certification_expiry.runtime import Runtime
from local_supabase.keys import SigningKey, sign
from tests.google_certs import AUDIENCE, SCHEDULER, GoogleCerts, google_certs, google_token

URL = "https://project-ref.supabase.co"
ISSUER = f"{URL}/auth/v1"
SECRET_KEY = "sb_secret_unit-tests-operator-key"
LEGACY_KEY = "eyJ.legacy-service-role-key.for-unit-tests"
JWT_SECRET = "a-legacy-jwt-secret-of-at-least-32-characters"
SIGNING_KEY = SigningKey.generate()


def session_claims(**overrides: Any) -> dict[str, Any]:
    """A signed-in user's session as Supabase Auth writes it."""
    now = int(time.time())
    claims = {"iss": ISSUER, "aud": "authenticated", "role": "authenticated", "sub": str(uuid.uuid4())}
    # A day ahead: parametrized cases are built at collection, long before they run.
    return {**claims, "iat": now, "exp": now + 86_400, **overrides}


def without(claims: dict[str, Any], name: str) -> dict[str, Any]:
    return {key: value for key, value in claims.items() if key != name}


class ProjectJwks:
    """The project's key set, as PyJWKClient's fetch returns it; counts fetches, can fail."""

    def __init__(self) -> None:
        self.fetches = 0
        self.down = False

    def __call__(self) -> dict[str, Any]:
        self.fetches += 1
        if self.down:
            raise jwt.PyJWKClientConnectionError("Fail to fetch data from the url, err: timed out")
        return SIGNING_KEY.jwks()


@pytest.fixture
def jwks(monkeypatch: pytest.MonkeyPatch) -> ProjectJwks:
    served = ProjectJwks()
    monkeypatch.setattr(jwt.PyJWKClient, "fetch_data", lambda client: served())
    return served


@pytest.fixture
def certs() -> Iterator[GoogleCerts]:
    with google_certs() as served:
        yield served


def authenticator(certs: GoogleCerts | None = None, **settings: Any) -> Authenticator:
    values = {"supabase_url": URL, "supabase_secret_key": SECRET_KEY, **settings}
    configured = Settings(**values)
    google = None
    if certs is not None:
        google = GoogleIdentityTokens(AUDIENCE, [SCHEDULER], certs_url=certs.url)
        configured = Settings(**values, oidc_audience=AUDIENCE, allowed_invokers=SCHEDULER)
    return Authenticator(configured, google)


def refusal(call: Any) -> tuple[type[Exception], str, str | None]:
    """How `call` refused: the error's kind, its words for the caller, and its detail for the log."""
    with pytest.raises((AuthenticationError, PermissionDeniedError, VerificationUnavailableError)) as raised:
        call()
    return type(raised.value), raised.value.message, raised.value.detail


def refused(call: Any) -> type[Exception]:
    return refusal(call)[0]


# --- operator keys --------------------------------------------------------------------


def test_each_operator_key_is_accepted_as_what_it_is():
    auth = authenticator(supabase_service_role_key=LEGACY_KEY, supabase_secret_key=f"{SECRET_KEY}, sb_secret_old")
    assert auth.authenticate(SECRET_KEY).kind == "secret_key"
    assert auth.authenticate("sb_secret_old").kind == "secret_key"
    assert auth.authenticate(LEGACY_KEY).kind == "service_role_key"


@pytest.mark.parametrize("token", ["sb_secret_revoked", SECRET_KEY[:-1], SECRET_KEY + "x", "", "not a jwt"])
def test_anything_else_that_is_not_a_jwt_is_refused(token):
    assert refused(lambda: authenticator().authenticate(token)) is AuthenticationError


# --- HS256, the legacy JWT secret ------------------------------------------------------


def test_hs256_is_refused_when_no_legacy_secret_is_configured():
    token = sign(JWT_SECRET, session_claims())
    assert refused(lambda: authenticator().authenticate(token)) is AuthenticationError


def test_the_legacy_service_role_jwt_is_the_system():
    token = sign(JWT_SECRET, {"iss": "supabase", "role": "service_role", "exp": int(time.time()) + 60})
    assert authenticator(supabase_jwt_secret=JWT_SECRET).authenticate(token).kind == "service_role_jwt"


def test_a_users_hs256_session_of_this_project_is_that_user():
    claims = session_claims()
    invoker = authenticator(supabase_jwt_secret=JWT_SECRET).authenticate(sign(JWT_SECRET, claims))
    assert (invoker.kind, str(invoker.user_id)) == ("user", claims["sub"])


@pytest.mark.parametrize(
    ("claims", "error"),
    [
        (session_claims(iss="https://evil.example"), AuthenticationError),
        (session_claims(aud="other"), AuthenticationError),
        (without(session_claims(), "aud"), AuthenticationError),
        (without(session_claims(), "iss"), AuthenticationError),
        (without(session_claims(), "exp"), AuthenticationError),
        (session_claims(exp=str(int(time.time()) + 600)), AuthenticationError),
        (session_claims(exp=int(time.time()) - 120), AuthenticationError),
        (session_claims(sub="not-a-uuid"), AuthenticationError),
        ({"iss": "supabase", "role": "anon", "exp": int(time.time()) + 86_400}, PermissionDeniedError),
        ({"role": "service_role", "exp": str(int(time.time()) + 86_400)}, AuthenticationError),
        ({"role": "service_role"}, AuthenticationError),
    ],
    ids=[
        "another issuer",
        "another audience",
        "no audience",
        "no issuer",
        "no expiry",
        "expiry as a string",
        "expired",
        "subject not a user id",
        "the anon key",
        "service role, expiry as a string",
        "service role, no expiry",
    ],
)
def test_hs256_tokens_are_held_to_the_claims_of_a_session(claims, error):
    token = sign(JWT_SECRET, claims)
    assert refused(lambda: authenticator(supabase_jwt_secret=JWT_SECRET).authenticate(token)) is error


def test_hs256_signed_with_another_secret_is_refused():
    token = sign("another-secret-that-is-also-32-characters-long", session_claims())
    assert refused(lambda: authenticator(supabase_jwt_secret=JWT_SECRET).authenticate(token)) is AuthenticationError


# --- ES256 against the project's JWKS --------------------------------------------------


def test_a_users_es256_session_is_verified_against_the_jwks_fetched_once(jwks):
    auth = authenticator()
    for _ in range(3):
        claims = session_claims()
        assert str(auth.authenticate(SIGNING_KEY.sign(claims)).user_id) == claims["sub"]
    assert jwks.fetches == 1


@pytest.mark.parametrize(
    "claims",
    [
        session_claims(iss="https://evil.example/auth/v1"),
        session_claims(aud="other"),
        without(session_claims(), "sub"),
        without(session_claims(), "exp"),
        session_claims(exp=str(int(time.time()) + 600)),
        session_claims(exp=int(time.time()) - 120),
    ],
    ids=["another issuer", "another audience", "no subject", "no expiry", "expiry as a string", "expired"],
)
def test_es256_sessions_are_held_to_the_same_claims(jwks, claims):
    assert refused(lambda: authenticator().authenticate(SIGNING_KEY.sign(claims))) is AuthenticationError


def test_an_es256_session_of_another_role_is_not_allowed(jwks):
    token = SIGNING_KEY.sign(session_claims(role="anon"))
    assert refused(lambda: authenticator().authenticate(token)) is PermissionDeniedError


def test_a_key_id_the_jwks_does_not_hold_is_refused_without_a_fetch_each(jwks):
    impostor = SigningKey.generate()
    auth = authenticator()
    for _ in range(3):
        assert refused(lambda: auth.authenticate(impostor.sign(session_claims()))) is AuthenticationError
    assert jwks.fetches <= 2  # the first fetch and at most one refresh for an unknown kid


def test_a_token_signed_by_another_key_under_the_projects_key_id_is_refused(jwks):
    impostor = SigningKey(SigningKey.generate().private_key, SIGNING_KEY.kid)
    assert refused(lambda: authenticator().authenticate(impostor.sign(session_claims()))) is AuthenticationError


def test_an_hs256_token_signed_with_the_public_key_is_refused(jwks):
    public = SIGNING_KEY.jwks()["keys"][0]
    forged = jwt.encode(session_claims(), str(public), algorithm="HS256", headers={"kid": SIGNING_KEY.kid})
    assert refused(lambda: authenticator().authenticate(forged)) is AuthenticationError


def test_after_a_failed_jwks_fetch_requests_are_refused_quickly_for_a_cooldown(jwks, monkeypatch):
    users = SupabaseUserTokens(URL)
    jwks.down = True
    token = SIGNING_KEY.sign(session_claims())
    assert refused(lambda: users.verify(token)) is VerificationUnavailableError
    assert refused(lambda: users.verify(token)) is VerificationUnavailableError
    assert jwks.fetches == 1  # the second was refused by the cooldown, without a fetch
    jwks.down = False
    later = time.monotonic() + SupabaseUserTokens.RETRY_AFTER_SECONDS + 1
    monkeypatch.setattr(time, "monotonic", lambda: later)
    assert users.verify(token).kind == "user"


def test_an_unsupported_algorithm_is_refused():
    token = jwt.encode(session_claims(), "x" * 64, algorithm="HS512")
    assert refused(lambda: authenticator(supabase_jwt_secret=JWT_SECRET).authenticate(token)) is AuthenticationError


# --- Google identity tokens (Cloud Scheduler) ------------------------------------------


def test_the_schedulers_identity_token_is_an_allowed_invoker(certs):
    invoker = authenticator(certs).authenticate(google_token())
    assert (invoker.kind, invoker.email) == ("oidc", SCHEDULER)


def test_google_tokens_are_refused_when_no_audience_is_configured(certs):
    assert refused(lambda: authenticator().authenticate(google_token())) is AuthenticationError
    assert certs.fetches == 0


def test_a_google_token_for_another_audience_is_refused_before_any_fetch(certs):
    assert refused(lambda: authenticator(certs).authenticate(google_token(audience="other"))) is AuthenticationError
    assert certs.fetches == 0


@pytest.mark.parametrize(
    ("token", "error"),
    [
        (lambda: google_token(email="intruder@project.iam.gserviceaccount.com"), PermissionDeniedError),
        (lambda: google_token(verified="true"), PermissionDeniedError),
        (lambda: google_token(verified=False), PermissionDeniedError),
        (lambda: google_token(key=rsa.generate_private_key(public_exponent=65537, key_size=2048)), AuthenticationError),
    ],
    ids=["not an allowed invoker", "email_verified as a string", "email not verified", "signed by another key"],
)
def test_google_tokens_that_do_not_check_out(certs, token, error):
    assert refused(lambda: authenticator(certs).authenticate(token())) is error


def test_only_an_rs256_token_with_a_key_id_and_googles_issuer_claims_to_be_googles():
    claims = {"iss": "https://accounts.google.com"}
    assert GoogleIdentityTokens.claims_to_be_one({"alg": "RS256", "kid": "k"}, claims)
    assert not GoogleIdentityTokens.claims_to_be_one({"alg": "RS256"}, claims)
    assert not GoogleIdentityTokens.claims_to_be_one({"alg": "ES256", "kid": "k"}, claims)
    assert not GoogleIdentityTokens.claims_to_be_one({"alg": "RS256", "kid": "k"}, {"iss": ISSUER})


def test_a_stalled_certificate_endpoint_is_unavailable_not_a_hang(certs):
    certs.stall_seconds = 2
    google = GoogleIdentityTokens(AUDIENCE, [SCHEDULER], certs_url=certs.url, timeout_seconds=0.3)
    token = google_token()
    started = time.monotonic()
    assert refused(lambda: google.verify(token, jwt.decode(token, options={"verify_signature": False}))) is (
        VerificationUnavailableError
    )
    assert time.monotonic() - started < 1.5


# --- the wiring production uses -------------------------------------------------------


def test_the_runtime_built_from_the_environment_accepts_each_kind_of_caller(certs, jwks, monkeypatch):
    """main.py's path: Settings() from the environment, Runtime.from_settings, no
    verifier handed in. Only Google's certificate URL is pointed at the stand-in,
    as DNS would point it; without the OIDC wiring the scheduler gets 401 every night."""
    monkeypatch.setattr("certification_expiry.auth.GOOGLE_CERTS_URL", certs.url)
    for name, value in {
        "SUPABASE_URL": URL,
        "SUPABASE_SECRET_KEY": SECRET_KEY,
        "OIDC_AUDIENCE": AUDIENCE,
        "ALLOWED_INVOKERS": SCHEDULER,
    }.items():
        monkeypatch.setenv(name, value)
    runtime = Runtime.from_settings(Settings())
    invoker = runtime.authenticator.authenticate(google_token())
    assert (invoker.kind, invoker.email) == ("oidc", SCHEDULER)
    assert runtime.authenticator.authenticate(SECRET_KEY).kind == "secret_key"
    claims = session_claims()
    user = runtime.authenticator.authenticate(SIGNING_KEY.sign(claims))
    assert (user.kind, str(user.user_id)) == ("user", claims["sub"])


# --- what each refusal tells the caller, and what only the log gets -----------------------


NOT_VALID_FOR_THIS_PROJECT = "the access token is not valid for this project"
CANNOT_VERIFY_NOW = "the token cannot be verified right now; try again later"
NOT_ALLOWED = "this identity is not an allowed invoker"


def test_each_refusal_of_a_users_session_says_why_in_words_for_the_caller(jwks):
    auth, hs256 = authenticator(), authenticator(supabase_jwt_secret=JWT_SECRET)
    cases = [
        (
            lambda: auth.authenticate("not a jwt"),
            AuthenticationError,
            "the bearer token is neither the service key nor a JWT",
        ),
        (
            lambda: auth.authenticate(sign(JWT_SECRET, session_claims())),
            AuthenticationError,
            "HS256 tokens are not accepted: this project verifies with its JWKS",
        ),
        (
            lambda: hs256.authenticate(jwt.encode(session_claims(), "x" * 64, algorithm="HS512")),
            AuthenticationError,
            "this token cannot be verified here",
        ),
        (
            lambda: hs256.authenticate(sign(JWT_SECRET, session_claims(exp=int(time.time()) - 120))),
            AuthenticationError,
            "the JWT has expired",
        ),
        (
            lambda: auth.authenticate(SIGNING_KEY.sign(session_claims(exp=int(time.time()) - 120))),
            AuthenticationError,
            "the access token has expired",
        ),
        (
            lambda: hs256.authenticate(sign(JWT_SECRET, session_claims(sub="x"))),
            AuthenticationError,
            "the token's subject is not a user id",
        ),
        (
            lambda: auth.authenticate(google_token()),
            AuthenticationError,
            "Google identity tokens are not accepted here",
        ),
    ]
    for call, kind, message in cases:
        assert refusal(call) == (kind, message, None)


def test_refusals_that_quote_a_library_keep_its_words_for_the_log(jwks):
    auth, hs256 = authenticator(), authenticator(supabase_jwt_secret=JWT_SECRET)
    other_secret = sign("another-secret-that-is-also-32-characters-long", session_claims())
    kind, message, detail = refusal(lambda: hs256.authenticate(other_secret))
    assert (kind, message, detail) == (
        AuthenticationError,
        "the JWT is not valid for this project",
        "Signature verification failed",
    )

    kind, message, detail = refusal(lambda: auth.authenticate(SIGNING_KEY.sign(session_claims(aud="other"))))
    assert (kind, message, detail) == (AuthenticationError, NOT_VALID_FOR_THIS_PROJECT, "Audience doesn't match")

    impostor = SigningKey.generate()
    kind, message, detail = refusal(lambda: auth.authenticate(impostor.sign(session_claims())))
    assert (kind, message) == (AuthenticationError, NOT_VALID_FOR_THIS_PROJECT)
    assert impostor.kid in (detail or "")

    kind, message, detail = refusal(
        lambda: auth.authenticate(SIGNING_KEY.sign(session_claims(exp=str(int(time.time()) + 600))))
    )
    assert kind is AuthenticationError
    assert detail  # PyJWT's or ours: the expiry is not a number

    token = sign(JWT_SECRET, {"role": "service_role", "exp": str(int(time.time()) + 600)})
    kind, message, detail = refusal(lambda: hs256.authenticate(token))
    assert (kind, detail) == (AuthenticationError, "exp is not a number")
    assert message == "the token is not valid for this project"

    anon = sign(JWT_SECRET, {"iss": "supabase", "role": "anon", "exp": int(time.time()) + 600})
    assert refusal(lambda: hs256.authenticate(anon)) == (
        PermissionDeniedError,
        "this token's role may not do this",
        "role 'anon'",
    )


def test_a_project_key_set_that_cannot_be_fetched_is_unavailable_and_the_log_says_from_where(jwks):
    users = SupabaseUserTokens(URL)
    jwks.down = True
    kind, message, detail = refusal(lambda: users.verify(SIGNING_KEY.sign(session_claims())))
    assert (kind, message) == (VerificationUnavailableError, CANNOT_VERIFY_NOW)
    assert (detail or "").startswith("the project's JWKS: ")
    assert refusal(lambda: users.verify(SIGNING_KEY.sign(session_claims()))) == (
        VerificationUnavailableError,
        CANNOT_VERIFY_NOW,
        None,
    )


def test_the_project_key_set_is_read_from_the_projects_auth_with_a_short_timeout_and_cached():
    users = SupabaseUserTokens(URL + "/")
    assert users.issuer == ISSUER
    assert users.jwks.uri == f"{ISSUER}/.well-known/jwks.json"
    assert users.jwks.timeout == 3.0
    assert users.jwks.jwk_set_cache is not None
    assert users.jwks.jwk_set_cache.lifespan == 600


def test_each_refusal_of_a_google_token_says_why(certs):
    auth = authenticator(certs)
    assert refusal(lambda: auth.authenticate(google_token(audience="other"))) == (
        AuthenticationError,
        "the Google identity token is not for this function",
        None,
    )
    assert refusal(lambda: auth.authenticate(google_token(verified=False))) == (
        PermissionDeniedError,
        NOT_ALLOWED,
        "email not verified",
    )
    assert refusal(lambda: auth.authenticate(google_token(email="intruder@project.iam.gserviceaccount.com"))) == (
        PermissionDeniedError,
        NOT_ALLOWED,
        "not in ALLOWED_INVOKERS",
    )
    other_key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    kind, message, detail = refusal(lambda: auth.authenticate(google_token(key=other_key)))
    assert (kind, message) == (AuthenticationError, "the Google identity token is not valid")
    assert detail


def test_googles_certificates_are_fetched_once_for_many_tokens_and_a_stall_is_told_apart(certs):
    auth = authenticator(certs)
    for _ in range(3):
        assert auth.authenticate(google_token()).email == SCHEDULER
    assert certs.fetches == 1
    certs.stall_seconds = 2
    stalled = GoogleIdentityTokens(AUDIENCE, [SCHEDULER], certs_url=certs.url, timeout_seconds=0.3)
    token = google_token()
    kind, message, detail = refusal(
        lambda: stalled.verify(token, jwt.decode(token, options={"verify_signature": False}))
    )
    assert (kind, message) == (VerificationUnavailableError, CANNOT_VERIFY_NOW)
    assert (detail or "").startswith("Google's certificates: ")
