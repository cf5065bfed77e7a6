"""What fails on Supabase's PostgREST (14.x) must fail here too: each case through
raw httpx, where a client would hide the status, and through supabase-py where
it reaches it."""

from __future__ import annotations

import asyncio
import time
import uuid

import httpx
import pytest
from postgrest import CountMethod
from postgrest.exceptions import APIError
from supabase import create_async_client, create_client

from local_supabase.keys import DEFAULT_JWT_SECRET, sign
from tests.builders import make_mentors


def rest(stack, path: str, method: str = "GET", key: str | None = None, **kwargs) -> httpx.Response:
    key = key or stack.secret_key
    headers = {"apikey": key, **kwargs.pop("headers", {})}
    return httpx.request(method, f"{stack.url}/rest/v1/{path}", headers=headers, timeout=30, **kwargs)


def error_of(response: httpx.Response) -> tuple[int, str]:
    return response.status_code, response.json()["code"]


def rename(stack, mentor: str, name: str, prefer: str, select: str | None = None) -> httpx.Response:
    """PATCH the mentor's full_name over HTTP, with this Prefer header and select=."""
    selected = f"&select={select}" if select else ""
    return rest(
        stack, f"peer_mentors?id=eq.{mentor}{selected}", "PATCH", json={"full_name": name}, headers={"Prefer": prefer}
    )


# --- .single() ---------------------------------------------------------------------------------


def test_a_single_object_is_one_row_or_406(stack, autocommit_db, service):
    [mentor] = make_mentors(autocommit_db, 1)
    accept = {"Accept": "application/vnd.pgrst.object+json"}
    one = rest(stack, f"peer_mentors?select=id&id=eq.{mentor}", headers=accept)
    assert (one.status_code, one.json()) == (200, {"id": mentor})
    none = rest(stack, f"peer_mentors?select=id&id=eq.{uuid.uuid4()}", headers=accept)
    assert error_of(none) == (406, "PGRST116")
    assert none.json()["details"] == "The result contains 0 rows"
    assert service.table("peer_mentors").select("id").eq("id", mentor).single().execute().data == {"id": mentor}
    with pytest.raises(APIError) as raised:
        service.table("peer_mentors").select("id").eq("id", str(uuid.uuid4())).single().execute()
    assert raised.value.code == "PGRST116"


# --- safeupdate ---------------------------------------------------------------------------------


@pytest.mark.parametrize(("method", "verb"), [("PATCH", "UPDATE"), ("DELETE", "DELETE")])
def test_an_update_or_delete_without_a_filter_is_refused(stack, autocommit_db, method, verb):
    make_mentors(autocommit_db, 2)
    (before,) = autocommit_db.execute(
        "select count(*) from public.peer_mentors where full_name is distinct from 'x'"
    ).fetchone()
    response = rest(stack, "peer_mentors", method, json={"full_name": "x"} if method == "PATCH" else None)
    assert error_of(response) == (400, "21000")
    assert response.json()["message"] == f"{verb} requires a WHERE clause"
    (after,) = autocommit_db.execute(
        "select count(*) from public.peer_mentors where full_name is distinct from 'x'"
    ).fetchone()
    assert after == before


def test_supabase_py_update_without_a_filter_is_refused(service):
    with pytest.raises(APIError) as raised:
        service.table("organization_coordinators").delete().execute()
    assert raised.value.code == "21000"


# --- schemas, ranges, counts -------------------------------------------------------------------


def test_an_unknown_schema_is_406_not_served_from_public(stack):
    response = rest(stack, "peer_mentors?select=id&limit=1", headers={"Accept-Profile": "private"})
    assert error_of(response) == (406, "PGRST106")
    assert rest(stack, "peer_mentors?select=id&limit=1", headers={"Accept-Profile": "public"}).status_code == 200


def test_a_range_past_the_end_is_416_with_postgrest_s_error(stack, autocommit_db):
    organization = uuid.uuid4()
    autocommit_db.execute(
        "insert into public.peer_mentors (organization_id) values (%s), (%s)", (organization, organization)
    )
    response = rest(
        stack, f"peer_mentors?select=id&organization_id=eq.{organization}&offset=10", headers={"Prefer": "count=exact"}
    )
    assert error_of(response) == (416, "PGRST103")
    assert response.json()["details"] == "An offset of 10 was requested, but there are only 2 rows."


@pytest.mark.parametrize("count", ["planned", "estimated"])
def test_planned_and_estimated_counts_are_numbers(stack, autocommit_db, count):
    organization = uuid.uuid4()
    autocommit_db.execute(
        "insert into public.peer_mentors (organization_id) values (%s), (%s)", (organization, organization)
    )
    response = rest(
        stack, f"peer_mentors?select=id&organization_id=eq.{organization}", headers={"Prefer": f"count={count}"}
    )
    assert response.headers["Content-Range"] == "0-1/2"


# --- hostile query strings ---------------------------------------------------------------------


@pytest.mark.parametrize(
    "query", ["select=%25s", "select=id,%25s%25s", "order=%25s", "%25s=eq.1", "or=(%25s.eq.1,id.eq.x)"]
)
def test_a_percent_in_a_column_name_is_an_unknown_column_not_an_outage(stack, query):
    response = rest(stack, f"peer_mentors?{query}")
    assert error_of(response) == (400, "42703")


def test_a_deeply_nested_or_is_a_400_not_a_crash(stack):
    nested = "or=" + "or(" * 3000 + "id.eq.1" + ")" * 3000
    response = rest(stack, f"peer_mentors?{nested.replace('or=or(', 'or=(', 1)}")
    assert error_of(response) == (400, "PGRST100")


# --- JWT expiry --------------------------------------------------------------------------------


def test_an_expired_jwt_is_accepted_within_thirty_seconds_of_skew(stack):
    def status(expired_seconds_ago: int) -> int:
        token = sign(DEFAULT_JWT_SECRET, {"role": "service_role", "exp": int(time.time()) - expired_seconds_ago})
        return rest(stack, "peer_mentors?select=id&limit=1", headers={"Authorization": f"Bearer {token}"}).status_code

    assert status(10) == 200
    assert status(60) == 401


# --- the admin endpoints -------------------------------------------------------------------------


@pytest.mark.parametrize("path", ["/_gateway/faults", "/_gateway/stats"])
def test_the_admin_endpoints_take_the_secret_key(no_faults, path):
    stack = no_faults
    url = f"{stack.url}{path}"
    assert httpx.get(url).status_code == 401
    assert httpx.get(url, headers={"apikey": stack.publishable_key}).status_code == 401
    if path.endswith("faults"):
        assert httpx.put(url, json={"unavailable_rate": 1}).status_code == 401
        assert stack.gateway.faults.settings.unavailable_rate == 0  # nothing was taken down
    assert httpx.get(url, headers={"apikey": stack.secret_key}).status_code == 200


# --- set-returning functions: filters, order, paging, counts -----------------------------------


@pytest.fixture
def mentor_rows(autocommit_db):
    """A set-returning function of the test's own, dropped afterwards."""
    autocommit_db.execute(
        "create function public.test_mentor_rows(p_organization uuid) returns setof public.peer_mentors"
        " language sql stable set search_path = '' as"
        " $$ select * from public.peer_mentors where organization_id = p_organization $$"
    )
    yield "test_mentor_rows"
    autocommit_db.execute("drop function public.test_mentor_rows(uuid)")


def test_a_set_returning_function_takes_filters_order_paging_and_count(stack, autocommit_db, service, mentor_rows):
    mentors = make_mentors(autocommit_db, 5)
    (organization,) = autocommit_db.execute(
        "select organization_id::text from public.peer_mentors where id = %s", (mentors[0],)
    ).fetchone()
    response = rest(
        stack,
        f"rpc/{mentor_rows}?select=full_name&full_name=neq.Mentor 3&order=full_name.desc&limit=2&offset=1",
        "POST",
        json={"p_organization": organization},
        headers={"Prefer": "count=exact"},
    )
    assert response.status_code == 200, response.text
    assert response.json() == [{"full_name": "Mentor 4"}, {"full_name": "Mentor 2"}]
    assert response.headers["Content-Range"] == "1-2/4"

    rows = (
        service.rpc(mentor_rows, {"p_organization": organization}, count=CountMethod.exact)
        .lt("full_name", "Mentor 3")
        .order("full_name")
        .execute()
    )
    assert [row["full_name"] for row in rows.data] == ["Mentor 1", "Mentor 2"]
    assert rows.count == 2


def test_a_function_s_filter_on_a_name_that_is_not_a_column_is_refused(stack, autocommit_db, mentor_rows):
    response = rest(stack, f"rpc/{mentor_rows}?%25s=eq.1", "POST", json={"p_organization": str(uuid.uuid4())})
    assert error_of(response) == (400, "42703")


# --- writes: select= and counts ------------------------------------------------------------------


def test_a_write_returns_only_the_selected_columns_and_its_count(stack, autocommit_db, service):
    [mentor] = make_mentors(autocommit_db, 1)
    response = rename(stack, mentor, "Renamed", "return=representation,count=exact", select="id,full_name")
    assert response.status_code == 200, response.text
    assert response.json() == [{"id": mentor, "full_name": "Renamed"}]
    assert response.headers["Content-Range"] == "0-0/1"

    minimal = rename(stack, mentor, "Again", "count=exact")
    assert (minimal.status_code, minimal.headers["Content-Range"]) == (204, "0-0/1")

    updated = service.table("peer_mentors").update({"full_name": "Third"}, count=CountMethod.exact).eq("id", mentor)
    result = updated.execute()
    assert result.count == 1
    assert result.data[0]["full_name"] == "Third"


def test_a_write_selecting_a_column_that_does_not_exist_is_refused_and_writes_nothing(stack, autocommit_db):
    [mentor] = make_mentors(autocommit_db, 1)
    response = rename(stack, mentor, "Never", "return=representation", select="%25s")
    assert error_of(response) == (400, "42703")
    (name,) = autocommit_db.execute("select full_name from public.peer_mentors where id = %s", (mentor,)).fetchone()
    assert name != "Never"


# --- the async client sees the same ------------------------------------------------------------


def test_the_async_client_meets_the_same_refusals(stack, autocommit_db):
    [mentor] = make_mentors(autocommit_db, 1)

    async def scenario() -> tuple[object, list[str]]:
        client = await create_async_client(stack.url, stack.secret_key)
        single = await client.table("peer_mentors").select("id").eq("id", mentor).single().execute()
        codes = []
        for request in (
            client.table("peer_mentors").select("id").eq("id", str(uuid.uuid4())).single(),
            client.table("organization_coordinators").delete(),
        ):
            try:
                await request.execute()
            except APIError as error:
                codes.append(error.code)
        return single.data, codes

    data, codes = asyncio.run(scenario())
    assert data == {"id": mentor}
    assert codes == ["PGRST116", "21000"]


@pytest.mark.parametrize(
    ("query", "named"),
    [
        ("select=id,organization_coordinators(user_id)", "organization_coordinators(user_id)"),
        ("select=id::text", "id::text"),
        ("select=id&full_name=fts.Mentor", "fts"),
        ("select=id&organization_id=cs.{x}", "cs"),
    ],
    ids=["embedding", "cast", "full-text", "contains"],
)
def test_what_the_gateway_does_not_support_is_a_400_that_names_it(stack, query, named):
    response = rest(stack, f"peer_mentors?{query}")
    assert response.status_code == 400
    assert named in response.json()["message"]


def test_writes_and_functions_name_their_schema_with_content_profile(stack, mentor_rows):
    for path, method, body in (
        ("organization_coordinators", "POST", {"organization_id": str(uuid.uuid4()), "user_id": str(uuid.uuid4())}),
        (f"rpc/{mentor_rows}", "POST", {"p_organization": str(uuid.uuid4())}),
    ):
        response = rest(stack, path, method, json=body, headers={"Content-Profile": "private"})
        assert error_of(response) == (406, "PGRST106")


def test_a_count_on_a_function_without_filters_has_its_content_range(stack, autocommit_db, mentor_rows):
    mentors = make_mentors(autocommit_db, 3)
    (organization,) = autocommit_db.execute(
        "select organization_id::text from public.peer_mentors where id = %s", (mentors[0],)
    ).fetchone()
    response = rest(
        stack, f"rpc/{mentor_rows}", "POST", json={"p_organization": organization}, headers={"Prefer": "count=exact"}
    )
    assert (len(response.json()), response.headers["Content-Range"]) == (3, "0-2/3")


# --- a bearer that is not a JWT, and a `%` in an alias ---------------------------------------


@pytest.mark.parametrize(("token", "parts"), [("not-a-jwt", 1), ("a.b", 2), ("a.b.c.d", 4)])
def test_a_bearer_that_is_not_a_jwt_beside_an_api_key_is_401_pgrst301(stack, token, parts):
    for key in (stack.publishable_key, stack.secret_key):
        response = rest(
            stack, "rpc/update_mentor_status", "POST", key=key, json={}, headers={"Authorization": f"Bearer {token}"}
        )
        assert error_of(response) == (401, "PGRST301")
        if parts != 3:
            assert response.json()["message"] == f"Expected 3 parts in JWT; got {parts}"
        assert response.headers["WWW-Authenticate"].startswith('Bearer error="invalid_token"')


def test_an_empty_bearer_is_401_and_the_api_key_in_bearer_counts_only_as_itself(stack):
    response = rest(
        stack, "peer_mentors?select=id&limit=1", key=stack.publishable_key, headers={"Authorization": "Bearer"}
    )
    assert error_of(response) == (401, "PGRST301")
    assert response.json()["message"] == "Empty JWT is sent in Authorization header"
    same = rest(stack, "peer_mentors?select=id&limit=1", headers={"Authorization": f"Bearer {stack.secret_key}"})
    assert same.status_code == 200


def test_supabase_py_with_a_session_that_is_not_a_jwt_gets_pgrst301(stack):
    client = create_client(stack.url, stack.publishable_key)
    client.postgrest.auth("not-a-jwt")
    with pytest.raises(APIError) as raised:
        client.rpc("update_mentor_status", {}).execute()
    assert raised.value.code == "PGRST301"


def test_a_percent_in_an_alias_is_the_alias_on_reads_and_on_writes(stack, autocommit_db, service):
    [mentor] = make_mentors(autocommit_db, 1)
    read = rest(stack, f"peer_mentors?select=x%25s:id,%25%25:full_name&id=eq.{mentor}")
    assert read.status_code == 200, read.text
    assert read.json() == [{"x%s": mentor, "%%": "Mentor 1"}]
    written = service.table("peer_mentors").update({"full_name": "100% renewed"}).eq("id", mentor).execute()
    assert written.data[0]["full_name"] == "100% renewed"
    patched = rename(stack, mentor, "x", "return=representation", select="x%25s:id")
    assert patched.status_code == 200, patched.text
    assert patched.json() == [{"x%s": mentor}]
