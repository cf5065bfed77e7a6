"""Log lines on stdout: JSON for Cloud Logging, or one short readable line per event.

`json`: google-cloud-logging's StructuredLogHandler writes `severity`, `message`,
the trace of the current Flask request and the source location, and needs
neither credentials nor network. Every line we write also carries a
machine-readable `event` and its context as fields (log_events.py), never data
mashed into the message; the shape is pinned by log_line.schema.json.

`text`: the same records, for a person at a terminal: time, severity, event, the
run id shortened, and the figures. LOG_FORMAT chooses; unset, it is `json` on
Cloud Run (K_SERVICE set) or when stdout is not a terminal, `text` otherwise.
"""

from __future__ import annotations

import json
import logging
import os
import re
import sys
from typing import IO

import flask
from google.cloud.logging_v2.handlers import StructuredLogHandler

from .log_events import LOGGER_NAME

# The trace headers as Google's front end writes them; anything else a caller
# sent is not a trace and is not copied into the logs.
_TRACEPARENT = re.compile(r"00-([0-9a-f]{32})-([0-9a-f]{16})-([0-9a-f]{2})")
_CLOUD_TRACE = re.compile(r"([0-9a-f]{32})(?:/(\d{1,20}))?(?:;o=([01]))?")
_UUID = re.compile(r"[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}")


class RequestWithoutSecrets(logging.Filter):
    """What of the current request goes into every line, chosen before the handler's own filter.

    Left alone, StructuredLogHandler copies the full URL (query string included)
    and the User-Agent into `httpRequest` of every line, and takes any text from
    the trace headers as the trace id: a key a caller put in any of them would be
    logged, and a megabyte of it copied into every line of a run. Only the method
    and the protocol are kept, and a trace only when it has the shape Google's
    front end gives it. Cloud Run's own request log still has the URL.
    """

    def __init__(self, project_id: str | None) -> None:
        super().__init__()
        self.project_id = project_id

    def filter(self, record: logging.LogRecord) -> bool:
        if not flask.has_request_context():
            return True
        request = flask.request
        record.http_request = {"requestMethod": request.method, "protocol": request.environ.get("SERVER_PROTOCOL")}
        trace_id, span_id, sampled = None, None, False
        if match := _TRACEPARENT.fullmatch(request.headers.get("traceparent", "")):
            trace_id, span_id, sampled = match[1], match[2], match[3] == "01"
        elif match := _CLOUD_TRACE.fullmatch(request.headers.get("X-Cloud-Trace-Context", "")):
            trace_id, span_id, sampled = match[1], match[2], match[3] == "1"
        if trace_id and self.project_id:
            trace_id = f"projects/{self.project_id}/traces/{trace_id}"
        record.trace, record.span_id, record.trace_sampled = trace_id, span_id, sampled
        return True


def cloud_logging_handler(stream: IO[str]) -> StructuredLogHandler:
    """The handler every line of ours goes through, writing Cloud Logging's JSON to stream."""
    project_id = os.environ.get("GOOGLE_CLOUD_PROJECT")
    handler = StructuredLogHandler(stream=stream, project_id=project_id)  # type: ignore[no-untyped-call]
    # First, so that the handler's own CloudLoggingFilter takes these values
    # instead of inferring its own from the request.
    handler.filters.insert(0, RequestWithoutSecrets(project_id))
    return handler


class TextFormatter(logging.Formatter):
    """`14:02:07 INFO    mentors.paused      run=6320c6b8 count=2 mentor_ids=[e0000000,e0000001]`."""

    MAX_VALUE = 60

    def format(self, record: logging.LogRecord) -> str:
        fields = dict(getattr(record, "json_fields", {}))
        event = fields.pop("event", record.getMessage())
        run = fields.pop("job_run_id", None)
        parts = [self.formatTime(record, "%H:%M:%S"), f"{record.levelname:<7}", f"{event:<19}"]
        if run:
            parts.append(f"run={str(run)[:8]}")
        # Only what says something: no empty values, no flags that are off.
        shown = {name: value for name, value in fields.items() if value not in (None, [], {}) and value is not False}
        parts += [f"{name}={self._short(value)}" for name, value in shown.items()]
        return " ".join(parts)

    def _short(self, value: object) -> str:
        if isinstance(value, str) and _UUID.fullmatch(value):
            return value[:8]  # enough to tell apart at a glance; the JSON format has it whole
        if isinstance(value, list):
            shown = [self._short(item) for item in value[:3]]
            if len(value) > 3:
                shown.append(f"+{len(value) - 3}")  # and that many more; no space, one field stays one word
            text = f"[{','.join(shown)}]"
        else:
            text = value if isinstance(value, str) else json.dumps(value, separators=(",", ":"), default=str)
        return text if len(text) <= self.MAX_VALUE else text[: self.MAX_VALUE - 1] + "…"


class _OurHandler(logging.StreamHandler):  # type: ignore[type-arg]
    """Marks the text handler as ours, so that a second configure_logging replaces it."""


def resolve_format(log_format: str | None, stream: IO[str]) -> str:
    if log_format:
        return log_format
    return "json" if os.environ.get("K_SERVICE") or not stream.isatty() else "text"


def configure_logging(stream: IO[str] | None = None, log_format: str | None = None) -> logging.Logger:
    """The job's logger, with its own handler so that functions-framework's
    reconfiguration of the root logger (LOG_EXECUTION_ID) cannot silence it."""
    logger = logging.getLogger(LOGGER_NAME)
    for handler in list(logger.handlers):
        if isinstance(handler, StructuredLogHandler | _OurHandler):  # ours from an earlier call; others stay
            logger.removeHandler(handler)
    stream = stream or sys.stdout
    if resolve_format(log_format, stream) == "text":
        text = _OurHandler(stream)
        text.setFormatter(TextFormatter())
        logger.addHandler(text)
    else:
        logger.addHandler(cloud_logging_handler(stream))
    logger.setLevel(logging.INFO)
    logger.propagate = False
    return logger
