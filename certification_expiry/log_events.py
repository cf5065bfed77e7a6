"""Log calls with a machine-readable `event` and their context as fields.

Standard library only, so that importing the job costs nothing; the JSON
handler for Cloud Logging is attached by structured_logging.configure_logging.
"""

from __future__ import annotations

import logging
import uuid
from enum import Enum
from typing import Any

LOGGER_NAME = "certification_expiry"


def _jsonable(value: Any) -> Any:
    if isinstance(value, uuid.UUID | Enum):
        return str(value.value if isinstance(value, Enum) else value)
    if isinstance(value, list | tuple):
        return [_jsonable(item) for item in value]
    if isinstance(value, dict):
        return {key: _jsonable(item) for key, item in value.items()}
    return value


def log_event(logger: logging.Logger, level: int, event: str, message: str, **fields: Any) -> None:
    """One line: `event` and the fields go to Cloud Logging as jsonPayload keys."""
    logger.log(level, message, extra={"json_fields": {"event": event, **_jsonable(fields)}})
