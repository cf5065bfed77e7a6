"""What an instance builds once and reuses: settings, logger, Supabase client, job.

Built on the first request rather than at import, so that a cold start imports
quickly and opens no connection; behind a lock, because functions-framework
serves requests from several threads.
"""

from __future__ import annotations

import logging
import threading
import uuid
from dataclasses import dataclass
from typing import TYPE_CHECKING

from .auth import Authenticator
from .errors import AuthenticationError, DatabaseUnavailableError
from .job import CertificationExpiryJob
from .mentor_store import MentorStore, StoreError, StoreErrorKind

if TYPE_CHECKING:
    from .config import Settings


@dataclass(frozen=True)
class Runtime:
    settings: Settings
    logger: logging.Logger
    store: MentorStore
    authenticator: Authenticator
    job: CertificationExpiryJob

    @classmethod
    def from_environment(cls) -> Runtime:
        # Imported here, not at the top: supabase-py and google-cloud-logging are
        # most of the import time, and an instance needs them only once a request
        # arrives (bench scenario cold_start).
        from .config import Settings
        from .structured_logging import configure_logging
        from .supabase_store import SupabaseMentorStore, build_client

        settings = Settings()
        logger = configure_logging()
        store = SupabaseMentorStore(build_client(settings))
        authenticator = Authenticator(settings, verify_with_supabase_auth=lambda token: _ask_auth(store, token))
        return cls(settings, logger, store, authenticator, CertificationExpiryJob(store, settings, logger))


def _ask_auth(store: MentorStore, access_token: str) -> uuid.UUID:
    try:
        return store.user_for_access_token(access_token)
    except StoreError as error:
        if error.kind is StoreErrorKind.TRANSIENT:
            raise DatabaseUnavailableError(
                "Supabase Auth did not answer; try again later", detail=str(error)
            ) from error
        raise AuthenticationError("Supabase Auth does not accept this access token") from error


_lock = threading.Lock()
_runtime: Runtime | None = None


def get_runtime() -> Runtime:
    global _runtime
    if _runtime is None:
        with _lock:
            if _runtime is None:
                _runtime = Runtime.from_environment()
    return _runtime
