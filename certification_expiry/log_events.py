"""Log calls with a machine-readable `event` and their context as fields.

Fields are made JSON-ready by pydantic-core (uuids, enums, dates), which the
package's shapes import anyway; the handlers are attached by structured_logging.configure_logging.
"""

from __future__ import annotations

import logging
from typing import Any

from pydantic_core import to_jsonable_python

LOGGER_NAME = "certification_expiry"


EXCERPT_CHARACTERS = 120


def excerpt(text: str | None) -> str | None:
    """Caller-controlled text as a log line may carry it: short, with every control,
    line-separator and bidi character escaped (repr's rules), so that it cannot
    forge a line or hide what follows."""
    if text is None:
        return None
    shown = repr(text[:EXCERPT_CHARACTERS])[1:-1]
    return shown + ("…" if len(text) > EXCERPT_CHARACTERS else "")


def log_event(logger: logging.Logger, level: int, event: str, message: str, **fields: Any) -> None:
    """One line: `event` and the fields go to Cloud Logging as jsonPayload keys."""
    # stacklevel: the line's sourceLocation is the caller's, not this function's.
    fields = {"event": event, **to_jsonable_python(fields, fallback=str)}
    logger.log(level, message, extra={"json_fields": fields}, stacklevel=2)
