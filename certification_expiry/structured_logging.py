"""JSON log lines for Cloud Logging, one object per line on stdout.

google-cloud-logging's StructuredLogHandler writes `severity`, `message`, the
trace of the current Flask request and the source location, and needs neither
credentials nor network. Every line we write also carries a machine-readable
`event` and its context as fields (log_events.py), never data mashed into the
message; the shape is pinned by log_line.schema.json.
"""

from __future__ import annotations

import logging
import os
import sys
from typing import IO

from google.cloud.logging_v2.handlers import StructuredLogHandler

from .log_events import LOGGER_NAME


def configure_logging(stream: IO[str] | None = None) -> logging.Logger:
    """The job's logger, with its own handler so that functions-framework's
    reconfiguration of the root logger (LOG_EXECUTION_ID) cannot silence it."""
    logger = logging.getLogger(LOGGER_NAME)
    for handler in list(logger.handlers):
        if isinstance(handler, StructuredLogHandler):  # ours from an earlier call; others stay
            logger.removeHandler(handler)
    handler = StructuredLogHandler(stream=stream or sys.stdout, project_id=os.environ.get("GOOGLE_CLOUD_PROJECT"))
    logger.addHandler(handler)
    logger.setLevel(logging.INFO)
    logger.propagate = False
    return logger
