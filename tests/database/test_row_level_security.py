"""What each API role can read, with the policies of the migrations and Supabase's grants."""

from __future__ import annotations

import uuid
from typing import Any

import psycopg
import pytest

from tests.builders import acting_as, call_rpc, create_coordinator, create_mentor, create_user, user_claims


def visible(tx: psycopg.Connection, claims: dict[str, Any], table: str, ids: list[uuid.UUID]) -> set[uuid.UUID]:
    key = "mentor_id" if table == "mentor_status_history" else "id"
    with acting_as(tx, claims):
        rows = tx.execute(f"select {key} as id from public.{table} where {key} = any(%s)", (ids,)).fetchall()
    return {row["id"] for row in rows}


@pytest.fixture
def two_organisations(tx):
    oslo, bergen = uuid.uuid4(), uuid.uuid4()
    mentor_user = create_user(tx)
    world = {
        "mentor_user": mentor_user,
        "coordinator": create_coordinator(tx, oslo),
        "own": create_mentor(tx, oslo, user_id=mentor_user),
        "colleague": create_mentor(tx, oslo),
        "elsewhere": create_mentor(tx, bergen),
    }
    for mentor in ("own", "colleague", "elsewhere"):
        call_rpc(tx, {"role": "service_role"}, p_mentor_id=world[mentor], p_new_status="paused")
    return world


@pytest.mark.parametrize("table", ["peer_mentors", "mentor_status_history"])
def test_a_mentor_reads_only_itself(tx, two_organisations, table):
    w = two_organisations
    ids = [w["own"], w["colleague"], w["elsewhere"]]
    assert visible(tx, user_claims(w["mentor_user"]), table, ids) == {w["own"]}


@pytest.mark.parametrize("table", ["peer_mentors", "mentor_status_history"])
def test_a_coordinator_reads_its_organisation(tx, two_organisations, table):
    w = two_organisations
    ids = [w["own"], w["colleague"], w["elsewhere"]]
    assert visible(tx, user_claims(w["coordinator"]), table, ids) == {w["own"], w["colleague"]}


@pytest.mark.parametrize("table", ["peer_mentors", "mentor_status_history"])
def test_anon_may_not_even_ask_and_service_role_reads_everything(tx, two_organisations, table):
    w = two_organisations
    ids = [w["own"], w["colleague"], w["elsewhere"]]
    # No grant at all, not just no rows: pg_graphql would otherwise show anon the table.
    with pytest.raises(psycopg.errors.InsufficientPrivilege):
        visible(tx, {"role": "anon"}, table, ids)
    assert visible(tx, {"role": "service_role"}, table, ids) == set(ids)


def test_the_run_table_is_closed_to_api_users_and_the_audit_to_anon(tx, two_organisations):
    for claims in ({"role": "anon"}, user_claims(two_organisations["coordinator"])):
        with pytest.raises(psycopg.errors.InsufficientPrivilege), acting_as(tx, claims):
            tx.execute("select * from public.certification_expiry_runs")
    # Signed-in users read the audit rows of the mentors they see (test_access_matrix.py).
    with pytest.raises(psycopg.errors.InsufficientPrivilege), acting_as(tx, {"role": "anon"}):
        tx.execute("select * from public.certification_expiry_audit")
