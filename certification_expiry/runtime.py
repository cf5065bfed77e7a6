"""What an instance builds once and reuses: the Supabase clients, the authenticator
and the service with its job; the one place that wires them.

Built on the first request rather than at import, so that a cold start imports
quickly and opens no connection; behind a lock, because functions-framework
serves requests from several threads.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING

from .log_events import log_event

if TYPE_CHECKING:
    from .auth import Authenticator
    from .config import Settings
    from .ports import MentorStore
    from .service import CertificationExpiryService


@dataclass(frozen=True)
class Runtime:
    settings: Settings
    authenticator: Authenticator
    service: CertificationExpiryService

    @classmethod
    def from_settings(cls, settings: Settings) -> Runtime:
        """What production runs: the store over supabase-py, logs to stdout."""
        # Imported here, not at the top: supabase-py, google-cloud-logging and
        # PyJWT (with cryptography) are most of the import time, and an instance
        # needs them only once a request arrives (bench scenario cold_start).
        from .structured_logging import configure_logging
        from .supabase_store import SupabaseMentorStore, client_factory

        logger = configure_logging(log_format=settings.log_format)
        log_event(
            logger,
            logging.INFO,
            "runtime.configured",
            f"talking to Supabase with {settings.database_key_name}",
            database_key=settings.database_key_name,
            operator_keys={kind: len(keys) for kind, keys in settings.operator_keys.items()},
            jwt_secret=settings.supabase_jwt_secret is not None,
            oidc=settings.oidc_audience is not None,
        )
        return cls.wired(settings, SupabaseMentorStore(client_factory(settings)), logger)

    @classmethod
    def wired(
        cls, settings: Settings, store: MentorStore, logger: logging.Logger, sleep: Callable[[float], None] = time.sleep
    ) -> Runtime:
        """The authenticator, and the service with its job over one store that serves
        the three ports: one set of clients, lent one per call."""
        from .auth import Authenticator
        from .job import CertificationExpiryJob
        from .service import CertificationExpiryService

        service = CertificationExpiryService(
            job=CertificationExpiryJob(store, settings, logger, sleep=sleep),
            compliance=store,
            access=store,
            nightly_schedule=settings.nightly_schedule,
            logger=logger,
        )
        return cls(settings, Authenticator(settings), service)


_lock = threading.Lock()
_runtime: Runtime | None = None


def get_runtime(settings: Settings) -> Runtime:
    """The instance's runtime, built from these settings on the first request."""
    global _runtime
    if _runtime is None:
        with _lock:
            if _runtime is None:
                _runtime = Runtime.from_settings(settings)
    return _runtime
