"""The lines a logger writes, captured as records, for tests that read what was logged."""

from __future__ import annotations

import contextlib
import logging
from collections.abc import Iterator
from typing import Any


class CapturedLines(logging.Handler):
    def __init__(self) -> None:
        super().__init__()
        self.records: list[logging.LogRecord] = []

    def emit(self, record: logging.LogRecord) -> None:
        self.records.append(record)

    def of(self, event: str) -> list[tuple[str, str, dict[str, Any]]]:
        """Each line of this event as (severity, message, fields but the event and run id)."""
        found = []
        for record in self.records:
            fields = dict(getattr(record, "json_fields", {}))
            if fields.pop("event", None) == event:
                fields.pop("job_run_id", None)
                found.append((record.levelname, record.getMessage(), fields))
        return found


@contextlib.contextmanager
def captured(logger: logging.Logger) -> Iterator[CapturedLines]:
    handler = CapturedLines()
    logger.addHandler(handler)
    level = logger.level
    logger.setLevel(logging.DEBUG)
    try:
        yield handler
    finally:
        logger.removeHandler(handler)
        logger.setLevel(level)
