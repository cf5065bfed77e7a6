"""What authenticating a request costs, per credential kind, in one run.

The Google identity token is verified as in production, over real HTTP through
the function's cached session, against a loopback stand-in of Google's
certificate endpoint: after the first request the certificates come from the
cache, so what is left is parsing and the RSA signature check.
"""

from __future__ import annotations

import time
from collections.abc import Callable

from bench.results import record
from certification_expiry.auth import Authenticator, GoogleIdentityTokens
from certification_expiry.config import Settings
from local_supabase.keys import DEFAULT_JWT_SECRET, api_key, sign
from tests.google_certs import AUDIENCE, SCHEDULER, google_certs, google_token


def _per_call_ms(call: Callable[[], object], calls: int) -> float:
    call()  # warm: imports, and the certificate cache for the OIDC path
    started = time.perf_counter()
    for _ in range(calls):
        call()
    return (time.perf_counter() - started) / calls * 1000


def main(calls: int) -> None:
    service_key = api_key(DEFAULT_JWT_SECRET, "service_role")
    settings = Settings(
        supabase_url="http://127.0.0.1:9",
        supabase_service_role_key=service_key,
        supabase_jwt_secret=DEFAULT_JWT_SECRET,
        oidc_audience=AUDIENCE,
        allowed_invokers=[SCHEDULER],
        _env_file=None,
    )
    service_jwt = sign(DEFAULT_JWT_SECRET, {"role": "service_role", "exp": int(time.time()) + 3600})
    with google_certs() as certs:
        google = GoogleIdentityTokens(AUDIENCE, [SCHEDULER], certs_url=certs.url)
        authenticator = Authenticator(settings, google)
        oidc = google_token()
        figures = {
            "calls": calls,
            "service_key_ms": _per_call_ms(lambda: authenticator.authenticate(service_key), calls),
            "service_jwt_ms": _per_call_ms(lambda: authenticator.authenticate(service_jwt), calls),
            "oidc_warm_cache_ms": _per_call_ms(lambda: authenticator.authenticate(oidc), calls),
            "certificate_fetches": certs.fetches,
        }
    record(
        "auth_cost",
        {name: round(value, 3) if isinstance(value, float) else value for name, value in figures.items()},
        target="Google's certificates fetched once for every OIDC request of the run",
        met=figures["certificate_fetches"] == 1,
    )
