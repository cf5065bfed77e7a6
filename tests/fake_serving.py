"""Both entry points served by functions-framework over the in-memory store: the real
HTTP layer, service and job, the real JSON log lines, no network and no database."""

from __future__ import annotations

import io
import json

import functions_framework
import pytest

from certification_expiry import runtime as runtime_module
from certification_expiry.config import Settings
from certification_expiry.runtime import Runtime
from certification_expiry.structured_logging import configure_logging
from tests.fakes import FakeStore

OPERATOR_KEY = "sb_secret_fake-serving-operator-key"


class FakeServing:
    """One entry point over one fake store, and the JSON log lines it wrote."""

    def __init__(
        self, store: FakeStore, monkeypatch: pytest.MonkeyPatch, target: str = "certification_expiry_job"
    ) -> None:
        self.store = store
        self.stream = io.StringIO()
        # main.py reads the settings at import, as it does on Cloud Run.
        monkeypatch.setenv("SUPABASE_URL", "https://unused.invalid")
        monkeypatch.setenv("SUPABASE_SECRET_KEY", OPERATOR_KEY)
        monkeypatch.delenv("SUPABASE_SERVICE_ROLE_KEY", raising=False)
        settings = Settings(job_page_size=7)
        wired = Runtime.wired(settings, store, configure_logging(self.stream), sleep=lambda seconds: None)
        monkeypatch.setattr(runtime_module, "_runtime", wired)
        self.client = functions_framework.create_app(target=target, source="main.py").test_client()

    def post(self, key: str = OPERATOR_KEY) -> tuple[int, dict]:
        response = self.client.post("/", headers={"Authorization": f"Bearer {key}"})
        assert response.headers["Content-Type"] == "application/json"
        return response.status_code, response.get_json()

    def lines(self) -> list[dict]:
        return [json.loads(line) for line in self.stream.getvalue().splitlines() if line.strip()]

    def events(self, name: str) -> list[dict]:
        return [line for line in self.lines() if line.get("event") == name]
