"""The job's entry point served by functions-framework's own app, wired to a local stack."""

from __future__ import annotations

import dataclasses

import functions_framework
import pytest
from flask.testing import FlaskClient

from certification_expiry import runtime as runtime_module
from certification_expiry.auth import Authenticator, GoogleIdentityTokens
from certification_expiry.config import Settings
from local_supabase.ephemeral import Stack
from tests.secrets_guard import record_response


def function_test_client(
    stack: Stack,
    monkeypatch: pytest.MonkeyPatch,
    google_certs_url: str | None = None,
    target: str = "certification_expiry_job",
    **environment: str | None,
) -> FlaskClient:
    """Configured only through the environment, as in production; the runtime is
    built fresh so that no test inherits another's. A variable given as None is unset."""
    # Supabase's current keys by default: a secret key, users' tokens against the JWKS.
    defaults = {
        "SUPABASE_URL": stack.url,
        "SUPABASE_SECRET_KEY": stack.secret_key,
        "SUPABASE_SERVICE_ROLE_KEY": None,
        "SUPABASE_JWT_SECRET": None,
    }
    for name, value in {**defaults, **environment}.items():
        if value is None:
            monkeypatch.delenv(name, raising=False)
        else:
            monkeypatch.setenv(name, value)
    built = runtime_module.Runtime.from_settings(Settings())
    if google_certs_url is not None:
        settings = built.settings
        assert settings.oidc_audience, "set OIDC_AUDIENCE and ALLOWED_INVOKERS with google_certs_url"
        google = GoogleIdentityTokens(settings.oidc_audience, settings.allowed_invokers, certs_url=google_certs_url)
        built = dataclasses.replace(
            built,
            authenticator=Authenticator(settings, google, built.authenticator.users),
        )
    monkeypatch.setattr(runtime_module, "_runtime", built)
    app = functions_framework.create_app(target=target, source="main.py")

    @app.after_request
    def remember(response):
        record_response(response.get_data(as_text=True))
        return response

    return app.test_client()


def post_run(client, stack: Stack, **body) -> tuple[int, dict]:
    response = client.post(
        "/",
        headers={"Authorization": f"Bearer {stack.secret_key}", "X-CloudScheduler-JobName": "nightly"},
        json=body,
    )
    return response.status_code, response.get_json()
