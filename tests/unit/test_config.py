"""Configuration that cannot work is refused at start, naming the variables and never their values."""

from __future__ import annotations

import functions_framework
import pytest
from pydantic import ValidationError

from certification_expiry.config import Settings

VARIABLES = ("SUPABASE_SECRET_KEY", "SUPABASE_SERVICE_ROLE_KEY")


@pytest.mark.parametrize(
    "keys",
    [
        {"SUPABASE_SECRET_KEY": ","},
        {"SUPABASE_SECRET_KEY": " , ,", "SUPABASE_SERVICE_ROLE_KEY": ""},
        {"SUPABASE_SERVICE_ROLE_KEY": "   "},
        {"SUPABASE_SECRET_KEY": "", "SUPABASE_SERVICE_ROLE_KEY": ""},
        {},
    ],
    ids=["only commas", "commas and an empty legacy key", "a blank legacy key", "both empty", "neither set"],
)
def test_no_usable_database_credential_stops_the_function_at_start(monkeypatch, keys):
    monkeypatch.setenv("SUPABASE_URL", "https://project-ref.supabase.co")
    for name in VARIABLES:
        monkeypatch.delenv(name, raising=False)
    for name, value in keys.items():
        monkeypatch.setenv(name, value)
    with pytest.raises(ValidationError) as raised:
        Settings()
    message = str(raised.value)
    assert all(name in message for name in VARIABLES)
    with pytest.raises(ValidationError):
        functions_framework.create_app(target="certification_expiry_job", source="main.py")


def test_a_key_among_commas_is_the_database_credential_and_no_value_is_ever_shown(monkeypatch):
    monkeypatch.setenv("SUPABASE_URL", "https://project-ref.supabase.co")
    monkeypatch.setenv("SUPABASE_SECRET_KEY", " , sb_secret_the-one-key ,")
    monkeypatch.setenv("SUPABASE_SERVICE_ROLE_KEY", "")
    settings = Settings()
    assert settings.database_key.get_secret_value() == "sb_secret_the-one-key"
    assert settings.supabase_service_role_key is None
    assert "the-one-key" not in repr(settings)
