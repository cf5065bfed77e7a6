"""The lines a logger writes, captured as records for tests that read what was logged,
or waited for by a test that needs a stage only the log tells."""

from __future__ import annotations

import contextlib
import logging
import threading
from collections.abc import Iterator
from typing import Any

from certification_expiry.log_events import LOGGER_NAME


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


class EventLogged(logging.Handler):
    """Set once the function logs a line with this `event`: something to wait on,
    instead of a sleep, for a stage of a run that only its log tells."""

    def __init__(self, event: str) -> None:
        super().__init__()
        self.event = event
        self.seen = threading.Event()

    def emit(self, record: logging.LogRecord) -> None:
        if getattr(record, "json_fields", {}).get("event") == self.event:
            self.seen.set()

    def __enter__(self) -> threading.Event:
        logging.getLogger(LOGGER_NAME).addHandler(self)
        return self.seen

    def __exit__(self, *exc: object) -> None:
        logging.getLogger(LOGGER_NAME).removeHandler(self)
