"""Everything the function logs or answers during the test session, checked for secrets.

The service-role key, the JWT secret, and anything shaped like a JWT (user and
scheduler tokens are JWTs too) must never appear in a log line or a response.
"""

from __future__ import annotations

import json
import logging
import re

from local_supabase.gateway.app import DEFAULT_JWT_SECRET

JWT_SHAPE = re.compile(r"eyJ[\w-]{5,}\.eyJ[\w-]{5,}\.[\w-]+")
SEEN: list[str] = []


class RecordingHandler(logging.Handler):
    """Keeps each record as the text Cloud Logging would receive: message and fields."""

    def emit(self, record: logging.LogRecord) -> None:
        SEEN.append(record.getMessage() + " " + json.dumps(getattr(record, "json_fields", {}), default=str))


def record_response(text: str) -> None:
    SEEN.append(text)


def leaks(texts: list[str]) -> list[str]:
    return [text[:200] for text in texts if DEFAULT_JWT_SECRET in text or JWT_SHAPE.search(text)]
