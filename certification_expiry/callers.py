"""Who is calling: the credential a caller presented, once authenticated."""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from enum import StrEnum


class InvokerKind(StrEnum):
    """The credential a caller presented."""

    SECRET_KEY = "secret_key"  # noqa: S105 - a kind of credential, not one: one of the project's secret keys
    SERVICE_ROLE_KEY = "service_role_key"  # the legacy JWT service-role key
    SERVICE_ROLE_JWT = "service_role_jwt"  # a JWT signed with the legacy secret, role service_role
    OIDC = "oidc"  # a Google identity token of an allowed invoker (Cloud Scheduler)
    USER = "user"  # a signed-in user's Supabase session


@dataclass(frozen=True)
class Invoker:
    """An authenticated caller."""

    kind: InvokerKind
    email: str | None = None
    user_id: uuid.UUID | None = None

    @property
    def is_system(self) -> bool:
        """The operator's key, the service role or the scheduler: may do anything."""
        return self.kind is not InvokerKind.USER

    def describe(self) -> str:
        """Who, for the logs: the kind of credential and, where there is one, the
        identity: a user's id, or the allowed service account's email."""
        identity = self.user_id if self.kind is InvokerKind.USER else self.email
        return ":".join(str(part) for part in (self.kind, identity) if part)
