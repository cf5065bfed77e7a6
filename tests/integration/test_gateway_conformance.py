"""The local gateway answers supabase-py as PostgREST on Supabase would.

supabase-py is used unmodified, configured with the URL and a key only. Where the
HTTP status matters (supabase-py hides it), the request is also made with httpx.
Comments cite the PostgREST documentation for the behaviour each test pins down.
"""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import Iterator

import httpx
import psycopg
import pytest
from postgrest.exceptions import APIError
from supabase import Client, acreate_client, create_client

from local_supabase.gateway.faults import FaultSettings
from local_supabase.keys import DEFAULT_JWT_SECRET, sign, user_access_token
from tests.builders import create_user, make_mentors

RPC = "update_mentor_status"


def rpc_error(client: Client, **params: object) -> APIError:
    with pytest.raises(APIError) as excinfo:
        client.rpc(RPC, params).execute()
    return excinfo.value


def status_of(stack, path: str, json: object, key: str) -> int:
    headers = {"apikey": key, "Authorization": f"Bearer {key}"}
    return httpx.post(f"{stack.url}{path}", json=json, headers=headers).status_code


# --- RPC ---------------------------------------------------------------------------------


def test_rpc_returns_the_functions_json(service, autocommit_db):
    [mentor] = make_mentors(autocommit_db, 1)
    result = service.rpc(RPC, {"p_mentor_id": mentor, "p_new_status": "paused"}).execute().data
    assert result["mentor_id"] == mentor
    assert (result["old_status"], result["new_status"], result["replayed"]) == ("active", "paused", False)


@pytest.mark.parametrize(
    ("case", "code", "http_status"),
    [
        ("same_state", "P0001", 400),  # P0001 -> 400 (errors.html, "raise" SQLSTATE)
        ("unknown_status", "22023", 400),  # any other SQLSTATE -> 400
        ("null_id", "22023", 400),
        ("not_found", "PT404", 404),  # custom PTxyz -> HTTP xyz
        ("stale_version", "PT409", 409),
    ],
)
def test_rpc_errors_arrive_with_the_sqlstate_as_code(stack, service, autocommit_db, case, code, http_status):
    [mentor] = make_mentors(autocommit_db, 1)
    params = {
        "same_state": {"p_mentor_id": mentor, "p_new_status": "active"},
        "unknown_status": {"p_mentor_id": mentor, "p_new_status": "archived"},
        "null_id": {"p_mentor_id": None, "p_new_status": "paused"},
        "not_found": {"p_mentor_id": str(uuid.uuid4()), "p_new_status": "paused"},
        "stale_version": {"p_mentor_id": mentor, "p_new_status": "paused", "p_expected_version": 7},
    }[case]
    error = rpc_error(service, **params)
    assert error.code == code
    assert error.message
    assert status_of(stack, f"/rest/v1/rpc/{RPC}", params, stack.secret_key) == http_status


def test_permission_errors_are_403_with_a_jwt_and_401_for_anon(stack, autocommit_db):
    [mentor] = make_mentors(autocommit_db, 1)
    outsider = create_user(autocommit_db)
    user_token = user_access_token(DEFAULT_JWT_SECRET, outsider)
    user = create_client(stack.url, stack.anon_key)
    user.postgrest.auth(user_token)
    params = {"p_mentor_id": mentor, "p_new_status": "paused", "p_actor_id": str(outsider)}

    assert rpc_error(user, **params).code == "42501"
    assert status_of(stack, f"/rest/v1/rpc/{RPC}", params, user_token) == 403
    # 42501 -> 403 if authenticated, 401 if anonymous (errors.html)
    anon = create_client(stack.url, stack.anon_key)
    assert rpc_error(anon, **params).code == "42501"
    assert status_of(stack, f"/rest/v1/rpc/{RPC}", params, stack.anon_key) == 401


def test_unknown_function_or_arguments_are_pgrst202(service):
    assert rpc_error(service, p_nothing=1).code == "PGRST202"
    with pytest.raises(APIError) as excinfo:
        service.rpc("no_such_function", {}).execute()
    assert excinfo.value.code == "PGRST202"


def test_void_function_answers_204_and_get_runs_read_only(stack, service, autocommit_db):
    autocommit_db.execute(
        "create function public.conformance_void() returns void language sql set search_path = '' as ''"
    )
    autocommit_db.execute(
        "create function public.conformance_touch(p_id uuid) returns integer language sql set search_path = ''"
        " as $$ update public.peer_mentors set full_name = full_name where id = p_id returning 1 $$"
    )
    try:
        headers = {"apikey": stack.secret_key}
        response = httpx.post(f"{stack.url}/rest/v1/rpc/conformance_void", json={}, headers=headers)
        assert response.status_code == 204  # functions returning void: 204 (functions.html)
        assert service.rpc("conformance_void", {}).execute().data in ([], None)
        # GET runs in a read-only transaction: a write fails with 25006 -> 405 (errors.html)
        response = httpx.get(
            f"{stack.url}/rest/v1/rpc/conformance_touch", params={"p_id": str(uuid.uuid4())}, headers=headers
        )
        assert (response.status_code, response.json()["code"]) == (405, "25006")
    finally:
        autocommit_db.execute("drop function public.conformance_void(); drop function public.conformance_touch(uuid)")


def test_bad_json_body_is_pgrst102(stack):
    response = httpx.post(
        f"{stack.url}/rest/v1/rpc/{RPC}",
        content=b"{not json",
        headers={"apikey": stack.secret_key, "Content-Type": "application/json"},
    )
    assert (response.status_code, response.json()["code"]) == (400, "PGRST102")


def test_async_client_gets_the_same_answers(stack, autocommit_db):
    [mentor] = make_mentors(autocommit_db, 1)

    async def scenario() -> tuple[dict, str]:
        client = await acreate_client(stack.url, stack.secret_key)
        paused = await client.rpc(RPC, {"p_mentor_id": mentor, "p_new_status": "paused"}).execute()
        try:
            await client.rpc(RPC, {"p_mentor_id": mentor, "p_new_status": "paused"}).execute()
        except APIError as error:
            return paused.data, error.code
        return paused.data, "no error"

    paused, code = asyncio.run(scenario())
    assert paused["new_status"] == "paused"
    assert code == "P0001"


# --- reads ---------------------------------------------------------------------------------


def test_reads_are_capped_at_max_rows_and_range_pages_through_all(service, autocommit_db):
    mentors = make_mentors(autocommit_db, 2500)
    table = service.table("peer_mentors")
    organization = table.select("organization_id").eq("id", mentors[0]).execute().data[0]["organization_id"]

    # Asking for 2000 rows gets 1000, silently, as with db-max-rows on Supabase.
    capped = table.select("id").eq("organization_id", organization).order("id").range(0, 1999).execute().data
    assert len(capped) == 1000

    seen: list[str] = []
    for start in range(0, 3000, 1000):
        page = table.select("id").eq("organization_id", organization).order("id").range(start, start + 999).execute()
        seen += [row["id"] for row in page.data]
    assert seen == mentors


def test_keyset_pages_with_an_or_filter_visit_every_row_once(service, autocommit_db):
    # The job's keyset: (date, id) > (last_date, last_id) written as PostgREST logic.
    mentors = make_mentors(autocommit_db, 1200)
    organization = (service.table("peer_mentors").select("organization_id").eq("id", mentors[0]).execute().data[0])[
        "organization_id"
    ]
    autocommit_db.execute(
        "update public.peer_mentors set certification_expiry_date = current_date - (abs(hashtext(id::text)) %% 3 + 1)"
        " where organization_id = %s",
        (organization,),
    )
    seen: list[str] = []
    last = None
    while True:
        query = (
            service.table("expired_active_mentors")
            .select("id,certification_expiry_date")
            .eq("organization_id", organization)
            .order("certification_expiry_date")
            .order("id")
            .limit(500)
        )
        if last:
            query = query.gte("certification_expiry_date", last["certification_expiry_date"]).or_(
                f"certification_expiry_date.gt.{last['certification_expiry_date']},id.gt.{last['id']}"
            )
        page = query.execute().data
        if not page:
            break
        seen += [row["id"] for row in page]
        last = page[-1]
    assert sorted(seen) == mentors
    assert len(seen) == len(set(seen))


def test_filters_order_and_exact_count(service, autocommit_db):
    mentors = make_mentors(autocommit_db, 30)
    table = service.table("peer_mentors")
    organization = table.select("organization_id").eq("id", mentors[0]).execute().data[0]["organization_id"]

    counted = table.select("id", count="exact").eq("organization_id", organization).limit(10).execute()
    assert (len(counted.data), counted.count) == (10, 30)  # Prefer: count=exact -> Content-Range a-b/total

    some = table.select("id").in_("id", mentors[:5]).neq("id", mentors[0]).order("id", desc=True).execute().data
    assert [row["id"] for row in some] == list(reversed(mentors[1:5]))
    assert table.select("id").eq("organization_id", organization).is_("user_id", "null").execute().data
    assert table.select("id").eq("organization_id", organization).lt("status_version", 0).execute().data == []
    assert len(table.select("id").eq("organization_id", organization).gte("status_version", 0).execute().data) == 30


def test_unknown_table_is_pgrst205(service):
    with pytest.raises(APIError) as excinfo:
        service.table("no_such_table").select("*").execute()
    assert excinfo.value.code == "PGRST205"


# --- writes ----------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def scratch_runs(stack) -> Iterator[str]:
    """A table shaped like the run ledger (defaults, checks, keys) that the service
    role may write: the product's own tables grant it no such writes any more
    (migration explicit_api_grants), and these tests are about the gateway's."""
    with psycopg.connect(stack.database.dsn, autocommit=True) as conn:
        conn.execute("create table public.gateway_scratch_runs (like public.certification_expiry_runs including all)")
        conn.execute("alter table public.gateway_scratch_runs enable row level security")
        conn.execute("grant select, insert, update, delete on public.gateway_scratch_runs to service_role")
        try:
            yield "gateway_scratch_runs"
        finally:
            conn.execute("drop table public.gateway_scratch_runs")


def run_row(run_id: uuid.UUID, status: str = "failed") -> dict[str, object]:
    """A finished run: at most one row may be `running` (the lease's unique index)."""
    return {
        "id": str(run_id),
        "trigger": "manual",
        "status": status,
        "lease_expires_at": "2000-01-01T00:00:00Z",  # expired: never blocks a real run
        "finished_at": None if status == "running" else "2026-01-01T00:00:00Z",
    }


def test_upsert_merges_or_ignores_duplicates(service, scratch_runs):
    runs = service.table(scratch_runs)
    run_id = uuid.uuid4()
    runs.insert(run_row(run_id, "partial"), returning="minimal").execute()

    runs.upsert(run_row(run_id, "failed"), on_conflict="id", ignore_duplicates=True, returning="minimal").execute()
    assert runs.select("status").eq("id", str(run_id)).execute().data == [{"status": "partial"}]

    merged = runs.upsert(run_row(run_id, "succeeded"), on_conflict="id").execute().data
    assert merged[0]["status"] == "succeeded"
    assert runs.select("status").eq("id", str(run_id)).execute().data == [{"status": "succeeded"}]

    with pytest.raises(APIError) as excinfo:  # a plain insert of the same key: 23505 -> 409
        runs.insert(run_row(run_id)).execute()
    assert excinfo.value.code == "23505"


def test_missing_columns_take_their_defaults(service, autocommit_db, scratch_runs):
    run_id = uuid.uuid4()
    service.table(scratch_runs).insert(
        [{"id": str(run_id), "trigger": "scheduled", "lease_expires_at": "2000-01-01T00:00:00Z"}],
        default_to_null=False,
    ).execute()
    started_at, status = autocommit_db.execute(
        "select started_at, status from public.gateway_scratch_runs where id = %s", (run_id,)
    ).fetchone()
    assert started_at is not None
    assert status == "running"


def test_patch_and_delete_with_filters(service, scratch_runs):
    runs = service.table(scratch_runs)
    first, second = uuid.uuid4(), uuid.uuid4()
    runs.insert([run_row(first), run_row(second)]).execute()
    updated = runs.update({"candidate_count": 5}).eq("id", str(first)).execute().data
    assert [row["id"] for row in updated] == [str(first)]
    counts = runs.select("id,candidate_count").in_("id", [str(first), str(second)]).order("id").execute().data
    assert {row["id"]: row["candidate_count"] for row in counts} == {str(first): 5, str(second): 0}
    runs.delete().eq("id", str(second)).execute()
    assert runs.select("id").eq("id", str(second)).execute().data == []


def test_writes_are_denied_to_api_users_by_the_database(stack):
    anon = create_client(stack.url, stack.anon_key)
    with pytest.raises(APIError) as excinfo:
        anon.table("certification_expiry_runs").insert(run_row(uuid.uuid4())).execute()
    assert excinfo.value.code == "42501"


# --- JWTs ------------------------------------------------------------------------------------


def test_jwt_cases(stack, autocommit_db):
    [mentor] = make_mentors(autocommit_db, 1)
    path = f"{stack.url}/rest/v1/peer_mentors?select=id&id=eq.{mentor}"

    def get(**headers: str) -> httpx.Response:
        return httpx.get(path, headers=headers)

    # No token: the anon role, which has no grant on the table (42501 as anon: 401).
    assert (get().status_code, get().json()["code"]) == (401, "42501")
    assert get(apikey=stack.secret_key).json() == [{"id": mentor}]  # apikey alone is enough
    assert get(Authorization=f"Bearer {stack.secret_key}").json() == [{"id": mentor}]

    forged = sign("another-secret-that-is-at-least-32-characters", {"role": "service_role"})
    expired = sign(DEFAULT_JWT_SECRET, {"role": "service_role", "exp": 1})
    for token, code in [(forged, "PGRST301"), ("not-a-jwt", "PGRST301"), (expired, "PGRST303")]:
        response = get(Authorization=f"Bearer {token}")
        assert (response.status_code, response.json()["code"]) == (401, code)
        assert "invalid_token" in response.headers["WWW-Authenticate"]

    owner = create_user(autocommit_db)
    autocommit_db.execute("update public.peer_mentors set user_id = %s where id = %s", (owner, mentor))
    as_mentor = get(Authorization=f"Bearer {user_access_token(DEFAULT_JWT_SECRET, owner)}")
    assert as_mentor.json() == [{"id": mentor}]  # authenticated, and the policy lets it see itself


# --- faults ------------------------------------------------------------------------------------


def test_injected_unavailability_and_latency(no_faults, service):
    stack = no_faults
    admin = {"apikey": stack.secret_key}
    httpx.put(f"{stack.url}/_gateway/faults", json={"unavailable_rate": 1}, headers=admin).raise_for_status()
    with pytest.raises(APIError) as excinfo:
        service.table("peer_mentors").select("id").limit(1).execute()
    assert excinfo.value.code == "PGRST001"

    httpx.put(
        f"{stack.url}/_gateway/faults", json={"refuse_path": "certification_expiry_audit"}, headers=admin
    ).raise_for_status()
    assert service.table("peer_mentors").select("id").limit(1).execute().data is not None
    with pytest.raises(APIError):
        service.table("certification_expiry_audit").select("*").execute()

    bad = httpx.put(f"{stack.url}/_gateway/faults", json={"unavailable_rate": 2}, headers=admin)
    assert bad.status_code == 422


def test_lost_response_commits_but_the_client_sees_a_transport_error(no_faults, service, autocommit_db):
    stack = no_faults
    [mentor] = make_mentors(autocommit_db, 1)
    stack.gateway.faults.configure(FaultSettings(lost_response_rate=1))
    with pytest.raises(httpx.TransportError):
        service.rpc(RPC, {"p_mentor_id": mentor, "p_new_status": "paused", "p_request_id": "lost-1"}).execute()
    stack.gateway.faults.configure(FaultSettings())

    (status,) = autocommit_db.execute("select status from public.peer_mentors where id = %s", (mentor,)).fetchone()
    assert status == "paused"
    replay = service.rpc(RPC, {"p_mentor_id": mentor, "p_new_status": "paused", "p_request_id": "lost-1"}).execute()
    assert replay.data["replayed"] is True
