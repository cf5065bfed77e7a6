"""The three ports (ports.py) over supabase-py: the only module that speaks to Supabase."""

from __future__ import annotations

import queue
import uuid
from collections.abc import Callable, Sequence
from typing import Any, TypeVar

import httpx
from postgrest import CountMethod, ReturnMethod
from postgrest.exceptions import APIError
from pydantic import ValidationError
from supabase import Client, create_client
from supabase.lib.client_options import SyncClientOptions

from .bodies import JobSummary
from .config import NightlySchedule, Settings
from .ports import StoreError, StoreErrorKind
from .records import (
    AuditRepair,
    AuditRow,
    Candidate,
    ComplianceStatus,
    PageCursor,
    Transition,
    Trigger,
    UnreadableCandidate,
)
from .store_errors import classify

T = TypeVar("T")

CANDIDATE_COLUMNS = "id,organization_id,status_version,certification_expiry_date"
PAUSE_REASON = "certification_expired"


def client_factory(settings: Settings) -> Callable[[], Client]:
    """How the store makes a client: supabase-py's sync client over one HTTP/1.1 connection.

    The sync client on threads rather than the async client: threads were ahead
    at every concurrency measured side by side (bench/README.md). One connection
    per client, because the store lends each client to one call at a time
    (SupabaseMentorStore). HTTP/1.1 on purpose: HTTP/2 would share
    a connection between threads, which corrupts its state (httpx#3072). The
    timeout is set here because supabase-py ignores postgrest_client_timeout when
    it is handed a client. The TLS context is made once and shared: making one is
    nearly all of a client's cost.
    """
    tls = httpx.create_ssl_context()
    key = settings.database_key.get_secret_value()

    def connect() -> Client:
        http = httpx.Client(
            http2=False,
            verify=tls,
            timeout=httpx.Timeout(settings.job_request_timeout_seconds),
            limits=httpx.Limits(max_connections=1, max_keepalive_connections=1),
        )
        options = SyncClientOptions(httpx_client=http, auto_refresh_token=False, persist_session=False)
        return create_client(settings.supabase_url, key, options)

    return connect


def _candidate_or_unreadable(row: dict[str, Any]) -> Candidate | UnreadableCandidate:
    """One row of a page, read on its own: a row the job cannot read fails alone."""
    try:
        return Candidate.model_validate(row)
    except ValidationError as error:
        # The keyset columns are the view's key and a date PostgreSQL wrote: they are
        # text here even when the date means nothing to Python ('-infinity').
        mentor_id = uuid.UUID(str(row["id"]))
        problems = "; ".join(f"{'.'.join(map(str, e['loc']))}: {e['msg']}" for e in error.errors())
        return UnreadableCandidate(mentor_id, PageCursor(str(row["certification_expiry_date"]), mentor_id), problems)


class SupabaseMentorStore:
    """Every call borrows a client that no other call is using, and gives it back.

    The job's threads could share one client with a pool of connections, but then
    httpcore walks every pooled connection, and polls the socket of each idle one,
    on every request: the clients of one connection each, lent one per call, spend
    less CPU per mentor (bench/README.md). There are never more clients than
    calls that were at once in flight, and they live as long as the store.
    """

    def __init__(self, connect: Callable[[], Client]) -> None:
        self._connect = connect
        self._idle: queue.SimpleQueue[Client] = queue.SimpleQueue()

    def _call(self, request: Callable[[Client], T]) -> T:
        """`request(client)` on a client of its own, with Supabase's errors as StoreErrors."""
        try:
            client = self._idle.get_nowait()
        except queue.Empty:
            client = self._connect()
        try:
            return request(client)
        except (httpx.TransportError, APIError) as error:
            raise classify(error) from error
        finally:
            self._idle.put(client)

    def _rpc(self, function: str, params: dict[str, Any]) -> Any:
        return self._call(lambda client: client.rpc(function, params).execute().data)

    def start_run(
        self,
        run_id: uuid.UUID,
        trigger: Trigger,
        dry_run: bool,
        lease_seconds: int,
        actor_id: uuid.UUID | None,
        organization_ids: Sequence[uuid.UUID] | None,
        coordinator_interval_seconds: int,
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
                    "p_coordinator_interval_seconds": coordinator_interval_seconds,
                },
            )
        except StoreError as error:
            # The function's PT409 means one thing here: another run covering these
            # organisations holds the lease.
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

    @staticmethod
    def _candidates(client: Client) -> Any:
        return client.table("expired_active_mentors").select(CANDIDATE_COLUMNS)

    def expired_active_mentors(
        self, after: PageCursor | None, limit: int, organization_ids: Sequence[uuid.UUID] | None
    ) -> list[Candidate | UnreadableCandidate]:
        # Keyset pagination on (certification_expiry_date, id), the order of the
        # partial index: each page is an index range scan that stops after `limit`
        # rows. PostgREST has no row comparison, so (d, i) > (D, I) is written as
        # d >= D and (d > D or i > I).
        def read(client: Client) -> Any:
            query = self._candidates(client).order("certification_expiry_date").order("id").limit(limit)
            if organization_ids is not None:
                query = query.in_("organization_id", [str(o) for o in organization_ids])
            if after is not None:
                day = after.certification_expiry_date
                query = query.gte("certification_expiry_date", day).or_(
                    f"certification_expiry_date.gt.{day},id.gt.{after.id}"
                )
            return query.execute().data

        return [_candidate_or_unreadable(row) for row in self._call(read)]

    def count_expired_active(self, organization_ids: Sequence[uuid.UUID] | None) -> int:
        # HEAD with count=exact: the total from Content-Range, no rows.
        def count(client: Client) -> int | None:
            query = client.table("expired_active_mentors").select("id", count=CountMethod.exact, head=True)
            if organization_ids is not None:
                query = query.in_("organization_id", [str(o) for o in organization_ids])
            return query.execute().count

        return int(self._call(count) or 0)

    def current(self, mentor_id: uuid.UUID) -> Candidate | None:
        rows = self._call(lambda client: self._candidates(client).eq("id", str(mentor_id)).execute().data)
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

    def compliance_status(self, schedule: NightlySchedule) -> ComplianceStatus:
        return ComplianceStatus.model_validate(
            self._rpc(
                "certification_compliance_status",
                {"p_run_at": schedule.run_at.isoformat(), "p_grace_minutes": schedule.grace_minutes},
            )
        )

    def coordinated_organizations(self, user_id: uuid.UUID) -> list[uuid.UUID]:
        rows = self._call(
            lambda client: (
                client.table("organization_coordinators")
                .select("organization_id")
                .eq("user_id", str(user_id))
                .execute()
                .data
            )
        )
        return sorted(uuid.UUID(str(row["organization_id"])) for row in rows if isinstance(row, dict))

    def write_audit(self, rows: Sequence[AuditRow]) -> None:
        payload = [row.model_dump(mode="json") for row in rows]
        # An insert that skips rows already there (a retried chunk): the audit is
        # append-only, so the service role may insert and never update.
        # default_to_null=False: changed_at is not sent and takes the database's now().
        self._call(
            lambda client: (
                client.table("certification_expiry_audit")
                .upsert(
                    payload,
                    on_conflict="job_run_id,mentor_id",
                    ignore_duplicates=True,
                    returning=ReturnMethod.minimal,
                    default_to_null=False,
                )
                .execute()
            )
        )
