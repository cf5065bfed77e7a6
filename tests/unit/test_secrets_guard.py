"""The session's secret guard finds what it is meant to find."""

from __future__ import annotations

import uuid

from local_supabase.keys import DEFAULT_JWT_SECRET, SECRET_KEY, api_key, user_access_token
from tests.secrets_guard import leaks


def test_keys_tokens_and_the_jwt_secret_are_flagged_and_ordinary_lines_are_not():
    service_key = api_key(DEFAULT_JWT_SECRET, "service_role")
    flagged = [
        f"refused Bearer {service_key}",
        f'{{"reason": "{user_access_token(DEFAULT_JWT_SECRET, uuid.uuid4())}"}}',
        f"secret={DEFAULT_JWT_SECRET}",
        f"key={SECRET_KEY}",
    ]
    clean = ['{"event": "mentor.failed", "mentor_id": "e0000000-0000-4000-8000-000000000001"}', "eyJ alone is fine"]
    assert len(leaks(flagged + clean)) == len(flagged)
