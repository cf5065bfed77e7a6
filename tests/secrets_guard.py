"""Everything the function logs or answers during the test session, checked for secrets.

Secret keys (sb_secret_...), the JWT secret, and anything shaped like a JWT (the legacy keys are JWTs) (user and
scheduler tokens are JWTs too) must never appear in a log line or a response.
"""

from __future__ import annotations

import io
import logging
import re

from certification_expiry.structured_logging import cloud_logging_handler
from local_supabase.keys import DEFAULT_JWT_SECRET

JWT_SHAPE = re.compile(r"eyJ[\w-]{5,}\.eyJ[\w-]{5,}\.[\w-]+")
SECRET_KEY_SHAPE = re.compile(r"sb_secret_[\w-]{4,}")
SEEN: list[str] = []


class RecordingHandler(logging.Handler):
    """Keeps each record as the line Cloud Logging would receive: written by the
    function's own handler, so with the request data it adds (URL, headers, trace)."""

    def __init__(self) -> None:
        super().__init__()
        self.stream = io.StringIO()
        self.cloud_logging = cloud_logging_handler(self.stream)

    def emit(self, record: logging.LogRecord) -> None:
        self.cloud_logging.handle(record)
        SEEN.append(self.stream.getvalue())
        self.stream.seek(0)
        self.stream.truncate()


def record_response(text: str) -> None:
    SEEN.append(text)


def leaks(texts: list[str]) -> list[str]:
    return [
        text[:200]
        for text in texts
        if DEFAULT_JWT_SECRET in text or JWT_SHAPE.search(text) or SECRET_KEY_SHAPE.search(text)
    ]
