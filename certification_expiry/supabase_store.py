"""The three ports (ports.py) over supabase-py: the only module that speaks to Supabase."""

from __future__ import annotations

import uuid
from collections.abc import Callable, Sequence
from typing import Any, TypeVar

import httpx
from postgrest import CountMethod, ReturnMethod
from postgrest.exceptions import APIError
from supabase import Client, create_client
from supabase.lib.client_options import SyncClientOptions

from .config import Settings
from .models import AuditRepair, AuditRow, Candidate, ComplianceStatus, JobSummary, Transition, Trigger
from .ports import StoreError, StoreErrorKind

T = TypeVar("T")

CANDIDATE_COLUMNS = "id,organization_id,status_version,certification_expiry_date"
PAUSE_REASON = "certification_expired"
# SQLSTATE classes of a server that could not do the work right now.
_TRANSIENT_SQLSTATES = ("08", "53", "57P", "40001", "40P01")
# PostgREST's own: the database cannot be reached (503), or is unavailable.
_TRANSIENT_POSTGREST = {"PGRST000", "PGRST001", "PGRST002", "PGRST503"}


def build_client(settings: Settings) -> Client:
    """One client per instance, shared by the job's threads.

    The sync client on threads rather than the async client: threads were ahead
    at every concurrency measured side by side (README, "Performance", what was
    tried). HTTP/1.1 on purpose: a shared HTTP/2 connection used from several threads
    corrupts its state (httpx#3072), and the pool gives each thread its own
    connection. The timeout is set here because supabase-py ignores
    postgrest_client_timeout when it is handed a client.
    """
    connections = settings.job_concurrency + 2
    http = httpx.Client(
        http2=False,
        timeout=httpx.Timeout(settings.job_request_timeout_seconds),
        limits=httpx.Limits(max_connections=connections, max_keepalive_connections=connections),
    )
    options = SyncClientOptions(httpx_client=http, auto_refresh_token=False, persist_session=False)
    return create_client(settings.supabase_url, settings.database_key.get_secret_value(), options)


def classify(error: Exception) -> StoreError:
    if isinstance(error, httpx.TransportError):
        return StoreError(StoreErrorKind.TRANSIENT, type(error).__name__, str(error) or type(error).__name__)
    if isinstance(error, APIError):
        code = str(error.code or "unknown")
        message = str(error.message or "")
        kind = {
            "P0001": StoreErrorKind.NOT_ALLOWED,
            "PT404": StoreErrorKind.NOT_FOUND,
            "PT409": StoreErrorKind.CONFLICT,
        }.get(code)
        if kind is None:
            # PostgREST's own 503, a non-JSON 5xx (postgrest-py puts the status in
            # `code`), or a database that could not serve the request now.
            server_side = code in _TRANSIENT_POSTGREST or (code.isdigit() and code.startswith("5"))
            transient = server_side or code.startswith(_TRANSIENT_SQLSTATES)
            kind = StoreErrorKind.TRANSIENT if transient else StoreErrorKind.PERMANENT
        return StoreError(kind, code, message)
    raise error


def _translated(call: Callable[[], T]) -> T:
    try:
        return call()
    except (httpx.TransportError, APIError) as error:
        raise classify(error) from error


class SupabaseMentorStore:
    def __init__(self, client: Client) -> None:
        self.client = client

    def _rpc(self, function: str, params: dict[str, Any]) -> Any:
        return _translated(lambda: self.client.rpc(function, params).execute().data)

    def start_run(
        self,
        run_id: uuid.UUID,
        trigger: Trigger,
        dry_run: bool,
        lease_seconds: int,
        actor_id: uuid.UUID | None,
        organization_ids: Sequence[uuid.UUID] | None,
    ) -> None:
        try:
            self._rpc(
                "start_certification_expiry_run",
                {
                    "p_run_id": str(run_id),
                    "p_trigger": trigger.value,
                    "p_dry_run": dry_run,
                    "p_lease_seconds": lease_seconds,
                    "p_actor_id": str(actor_id) if actor_id else None,
                    "p_organization_ids": [str(o) for o in organization_ids] if organization_ids is not None else None,
                },
            )
        except StoreError as error:
            # The function's PT409 means one thing here: another run holds the lease.
            if error.kind is StoreErrorKind.CONFLICT:
                raise StoreError(StoreErrorKind.LEASE_HELD, error.code, error.message) from error
            raise

    def finish_run(self, summary: JobSummary) -> None:
        self._rpc(
            "finish_certification_expiry_run",
            {
                "p_run_id": str(summary.job_run_id),
                "p_status": summary.status.value,
                "p_candidate_count": summary.candidate_count,
                "p_paused_count": summary.paused_count,
                "p_skipped_count": summary.skipped_count,
                "p_error_count": summary.error_count,
            },
        )

    def _candidates(self) -> Any:
        return self.client.table("expired_active_mentors").select(CANDIDATE_COLUMNS)

    def expired_active_mentors(
        self, after: Candidate | None, limit: int, organization_ids: Sequence[uuid.UUID] | None
    ) -> list[Candidate]:
        # Keyset pagination on (certification_expiry_date, id), the order of the
        # partial index: each page is an index range scan that stops after `limit`
        # rows. PostgREST has no row comparison, so (d, i) > (D, I) is written as
        # d >= D and (d > D or i > I).
        query = self._candidates().order("certification_expiry_date").order("id").limit(limit)
        if organization_ids is not None:
            query = query.in_("organization_id", [str(o) for o in organization_ids])
        if after is not None:
            day = after.certification_expiry_date.isoformat()
            query = query.gte("certification_expiry_date", day).or_(
                f"certification_expiry_date.gt.{day},id.gt.{after.id}"
            )
        rows = _translated(lambda: query.execute().data)
        return [Candidate.model_validate(row) for row in rows]

    def count_expired_active(self, organization_ids: Sequence[uuid.UUID] | None) -> int:
        # HEAD with count=exact: the total from Content-Range, no rows.
        query = self.client.table("expired_active_mentors").select("id", count=CountMethod.exact, head=True)
        if organization_ids is not None:
            query = query.in_("organization_id", [str(o) for o in organization_ids])
        return int(_translated(lambda: query.execute().count) or 0)

    def current(self, mentor_id: uuid.UUID) -> Candidate | None:
        rows = _translated(lambda: self._candidates().eq("id", str(mentor_id)).execute().data)
        return Candidate.model_validate(rows[0]) if rows else None

    def pause(self, candidate: Candidate, request_id: str, actor_id: uuid.UUID | None) -> Transition:
        result = self._rpc(
            "update_mentor_status",
            {
                "p_mentor_id": str(candidate.id),
                "p_new_status": "paused",
                "p_actor_id": str(actor_id) if actor_id else None,
                "p_reason": PAUSE_REASON,
                "p_expected_version": candidate.status_version,
                "p_request_id": request_id,
            },
        )
        return Transition.model_validate(result)

    def repair_audit(self) -> AuditRepair:
        return AuditRepair.model_validate(self._rpc("repair_certification_expiry_audit", {}))

    def compliance_status(self, window_hours: int) -> ComplianceStatus:
        return ComplianceStatus.model_validate(
            self._rpc("certification_compliance_status", {"p_window_hours": window_hours})
        )

    def coordinated_organizations(self, user_id: uuid.UUID) -> list[uuid.UUID]:
        rows = _translated(
            lambda: (
                self.client.table("organization_coordinators")
                .select("organization_id")
                .eq("user_id", str(user_id))
                .execute()
                .data
            )
        )
        return sorted(uuid.UUID(str(row["organization_id"])) for row in rows if isinstance(row, dict))

    def write_audit(self, rows: Sequence[AuditRow]) -> None:
        payload = [row.model_dump(mode="json") for row in rows]
        # default_to_null=False: changed_at is not sent and takes the database's now().
        _translated(
            lambda: (
                self.client.table("certification_expiry_audit")
                .upsert(
                    payload,
                    on_conflict="job_run_id,mentor_id",
                    returning=ReturnMethod.minimal,
                    default_to_null=False,
                )
                .execute()
            )
        )
