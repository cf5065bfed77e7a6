"""The project's keys, through the Data API, as a project created today grants them
(migration explicit_api_grants, docs/database.md "Privileges").

The secret key is the service role, which bypasses row level security but not
privileges: it cannot set a mentor's lifecycle columns or rewrite the records. The
publishable key (chapter websites) reads the listing, and nothing else.
"""

from __future__ import annotations

import uuid

import httpx
import pytest

from tests.builders import (
    SERVICE_ROLE,
    call_rpc,
    create_mentor,
    days_from_today,
    finish_run,
    pause_as_the_job,
    start_run,
    value_of,
)

LISTING_COLUMNS = {"id", "organization_id", "full_name"}


def api(stack, key: str) -> httpx.Client:
    return httpx.Client(base_url=f"{stack.url}/rest/v1", headers={"apikey": key, "Authorization": f"Bearer {key}"})


def snapshot(conn, table: str) -> list[str]:
    """Every row of the table, in an order that does not depend on the plan."""
    return sorted(map(repr, conn.execute(f"select * from public.{table}").fetchall()))


@pytest.fixture
def records(autocommit_db):
    """An expired mentor the job paused (history and audit), renewed once."""
    organization_id = uuid.uuid4()
    mentor_id = create_mentor(autocommit_db, organization_id, expiry=days_from_today(-3))
    run_id = start_run(autocommit_db)
    pause_as_the_job(autocommit_db, run_id, mentor_id, days_from_today(-3))
    finish_run(autocommit_db, run_id)
    call_rpc(
        autocommit_db,
        SERVICE_ROLE,
        "record_certification_renewal",
        p_mentor_id=mentor_id,
        p_new_expiry_date=days_from_today(30),
    )
    return mentor_id


@pytest.mark.parametrize(
    "change",
    [{"status": "active"}, {"certification_expiry_date": None}, {"status_version": 0}, {"status_changed_at": None}],
    ids=lambda change: next(iter(change)),
)
def test_the_secret_key_cannot_set_a_mentors_lifecycle_columns(stack, autocommit_db, records, change):
    before = snapshot(autocommit_db, "peer_mentors")
    with api(stack, stack.secret_key) as client:
        answer = client.patch("/peer_mentors", params={"id": f"eq.{records}"}, json=change)
    assert (answer.status_code, answer.json()["code"]) == (403, "42501")
    assert snapshot(autocommit_db, "peer_mentors") == before


def test_the_secret_key_keeps_a_mentors_other_columns_up_to_date(stack, autocommit_db, records):
    with api(stack, stack.secret_key) as client:
        answer = client.patch("/peer_mentors", params={"id": f"eq.{records}"}, json={"full_name": "Renamed"})
    assert answer.status_code == 204
    assert value_of(autocommit_db, "select full_name from public.peer_mentors where id = %s", (records,)) == "Renamed"


@pytest.mark.parametrize("table", ["mentor_status_history", "certification_renewals", "certification_expiry_audit"])
@pytest.mark.parametrize("method", ["PATCH", "DELETE"])
def test_the_secret_key_cannot_rewrite_the_records(stack, autocommit_db, records, table, method):
    before = snapshot(autocommit_db, table)
    with api(stack, stack.secret_key) as client:
        body = {"reason": "rewritten"} if table != "certification_expiry_audit" else {"new_status": "active"}
        answer = client.request(
            method, f"/{table}", params={"mentor_id": f"eq.{records}"}, json=body if method == "PATCH" else None
        )
    assert (answer.status_code, answer.json()["code"]) == (403, "42501")
    assert snapshot(autocommit_db, table) == before


def test_the_secret_key_cannot_write_the_run_ledger(stack, autocommit_db):
    run_id = start_run(autocommit_db)
    try:
        with api(stack, stack.secret_key) as client:
            answer = client.patch(
                "/certification_expiry_runs", params={"id": f"eq.{run_id}"}, json={"status": "succeeded"}
            )
        status = value_of(autocommit_db, "select status from public.certification_expiry_runs where id = %s", (run_id,))
    finally:
        finish_run(autocommit_db, run_id)
    assert (answer.status_code, answer.json()["code"]) == (403, "42501")
    assert status == "running"


def test_the_publishable_key_lists_valid_active_mentors_with_public_columns_only(stack, autocommit_db):
    organization_id = uuid.uuid4()
    listed = {
        str(create_mentor(autocommit_db, organization_id, expiry=days_from_today(0))),
        str(create_mentor(autocommit_db, organization_id, expiry=None)),
    }
    create_mentor(autocommit_db, organization_id, expiry=days_from_today(-1))
    create_mentor(autocommit_db, organization_id, status="paused", expiry=days_from_today(30))
    create_mentor(autocommit_db, organization_id, status="inactive")
    with api(stack, stack.publishable_key) as client:
        answer = client.get("/listed_peer_mentors", params={"organization_id": f"eq.{organization_id}"})
    assert answer.status_code == 200
    rows = answer.json()
    assert {row["id"] for row in rows} == listed
    assert all(set(row) == LISTING_COLUMNS for row in rows)


@pytest.mark.parametrize(
    "relation",
    [
        "peer_mentors",
        "mentor_status_history",
        "organization_coordinators",
        "certification_renewals",
        "certification_expiry_audit",
        "certification_expiry_runs",
        "expired_active_mentors",
        "certification_expiry_pauses",
        "certifications_expiring_soon",
    ],
)
def test_the_publishable_key_reads_nothing_else(stack, relation):
    with api(stack, stack.publishable_key) as client:
        answer = client.get(f"/{relation}")
    assert (answer.status_code, answer.json()["code"]) == (401, "42501")


@pytest.mark.parametrize(
    ("function", "params"),
    [
        ("update_mentor_status", {"p_mentor_id": str(uuid.uuid4()), "p_new_status": "paused"}),
        ("record_certification_renewal", {"p_mentor_id": str(uuid.uuid4()), "p_new_expiry_date": "2030-01-01"}),
        (
            "start_certification_expiry_run",
            {"p_run_id": str(uuid.uuid4()), "p_trigger": "manual", "p_dry_run": True, "p_lease_seconds": 60},
        ),
    ],
    ids=lambda value: value if isinstance(value, str) else "",
)
def test_the_publishable_key_calls_no_function(stack, function, params):
    with api(stack, stack.publishable_key) as client:
        answer = client.post(f"/rpc/{function}", json=params)
    assert (answer.status_code, answer.json()["code"]) == (401, "42501")
