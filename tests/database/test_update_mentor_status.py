"""update_mentor_status, called as PostgREST calls it, each test in a rolled-back transaction."""

from __future__ import annotations

import itertools
import uuid
from datetime import datetime

import psycopg
import pytest
from psycopg import errors

from certification_expiry.request_ids import request_id_for
from tests.builders import (
    SERVICE_ROLE,
    acting_as,
    call_rpc,
    create_coordinator,
    create_mentor,
    create_user,
    history_of,
    user_claims,
)

STATUSES = ("active", "paused", "inactive")
ALLOWED = {("active", "paused"), ("paused", "active"), ("active", "inactive")}
REFUSED = [pair for pair in itertools.product(STATUSES, STATUSES) if pair not in ALLOWED]


def status_of(tx: psycopg.Connection, mentor_id: uuid.UUID) -> dict:
    return tx.execute(
        "select status, status_version, status_changed_at from public.peer_mentors where id = %s", (mentor_id,)
    ).fetchone()


def sqlstate_of(excinfo: pytest.ExceptionInfo[psycopg.Error]) -> str | None:
    return excinfo.value.sqlstate


# --- the allowed transitions, who may make them, and a mentor that is not there ---------


def test_active_to_paused_writes_the_row_and_one_history_row(tx, organization_id):
    mentor_id = create_mentor(tx, organization_id)
    coordinator_id = create_coordinator(tx, organization_id)
    before = tx.execute("select now() as now").fetchone()["now"]

    result = call_rpc(
        tx,
        user_claims(coordinator_id),
        p_mentor_id=mentor_id,
        p_new_status="paused",
        p_actor_id=coordinator_id,
        p_reason="on leave",
    )

    assert result["old_status"] == "active"
    assert result["new_status"] == "paused"
    assert result["status_version"] == 1
    assert result["replayed"] is False
    mentor = status_of(tx, mentor_id)
    assert mentor["status"] == "paused"
    assert mentor["status_version"] == 1
    [history] = history_of(tx, mentor_id)
    assert history["id"] == result["history_id"]
    assert (history["old_status"], history["new_status"]) == ("active", "paused")
    assert history["actor_id"] == coordinator_id
    assert history["reason"] == "on leave"
    # The database clock (the transaction's), not a value the caller could choose.
    assert history["changed_at"] == before
    assert datetime.fromisoformat(result["changed_at"]) == before


def test_paused_to_active_is_allowed(tx, organization_id):
    mentor_id = create_mentor(tx, organization_id, status="paused")
    result = call_rpc(tx, SERVICE_ROLE, p_mentor_id=mentor_id, p_new_status="active")
    assert (result["old_status"], result["new_status"]) == ("paused", "active")
    assert status_of(tx, mentor_id)["status"] == "active"


def test_active_to_inactive_is_allowed(tx, organization_id):
    mentor_id = create_mentor(tx, organization_id)
    result = call_rpc(tx, SERVICE_ROLE, p_mentor_id=mentor_id, p_new_status="inactive")
    assert (result["old_status"], result["new_status"]) == ("active", "inactive")
    assert status_of(tx, mentor_id)["status"] == "inactive"


# Two concurrent calls on one mentor need two connections: test_concurrency.py.


def test_actor_who_is_not_the_caller_is_refused_with_42501(tx, organization_id):
    mentor_id = create_mentor(tx, organization_id)
    coordinator_id = create_coordinator(tx, organization_id)
    someone_else = create_coordinator(tx, organization_id)
    with pytest.raises(psycopg.Error) as excinfo:
        call_rpc(
            tx,
            user_claims(coordinator_id),
            p_mentor_id=mentor_id,
            p_new_status="paused",
            p_actor_id=someone_else,
        )
    assert sqlstate_of(excinfo) == "42501"
    assert status_of(tx, mentor_id)["status"] == "active"


def test_unknown_mentor_is_pt404(tx):
    with pytest.raises(psycopg.Error) as excinfo:
        call_rpc(tx, SERVICE_ROLE, p_mentor_id=uuid.uuid4(), p_new_status="paused")
    assert sqlstate_of(excinfo) == "PT404"
    assert "not found" in str(excinfo.value)


# --- every other pair and bad arguments --------------------------------------------------


@pytest.mark.parametrize(("old", "new"), REFUSED)
def test_every_other_transition_is_refused_with_p0001(tx, organization_id, old, new):
    mentor_id = create_mentor(tx, organization_id, status=old)
    with pytest.raises(errors.RaiseException) as excinfo:
        call_rpc(tx, SERVICE_ROLE, p_mentor_id=mentor_id, p_new_status=new)
    assert sqlstate_of(excinfo) == "P0001"
    assert excinfo.value.diag.message_detail == "transition_not_allowed"  # the job's skip (store_errors.py)
    assert f"cannot go from {old} to {new}" in str(excinfo.value)
    assert status_of(tx, mentor_id) == {"status": old, "status_version": 0, "status_changed_at": None}
    assert history_of(tx, mentor_id) == []


@pytest.mark.parametrize("new_status", ["archived", "ACTIVE", "", " paused", None])
def test_unknown_status_values_are_22023(tx, organization_id, new_status):
    mentor_id = create_mentor(tx, organization_id)
    with pytest.raises(psycopg.Error) as excinfo:
        call_rpc(tx, SERVICE_ROLE, p_mentor_id=mentor_id, p_new_status=new_status)
    assert sqlstate_of(excinfo) == "22023"
    assert "unknown status" in str(excinfo.value)


def test_null_mentor_id_is_22023(tx):
    with pytest.raises(psycopg.Error) as excinfo:
        call_rpc(tx, SERVICE_ROLE, p_mentor_id=None, p_new_status="paused")
    assert sqlstate_of(excinfo) == "22023"


def test_overlong_reason_is_refused_and_odd_printable_text_is_kept_verbatim(tx, organization_id):
    mentor_id = create_mentor(tx, organization_id)
    with pytest.raises(psycopg.Error) as excinfo:
        call_rpc(tx, SERVICE_ROLE, p_mentor_id=mentor_id, p_new_status="paused", p_reason="x" * 501)
    assert sqlstate_of(excinfo) == "22023"
    assert "at most 500" in str(excinfo.value)

    odd = '\'); drop table public.peer_mentors; -- "quotes" ünïcode 日本 ✓'
    call_rpc(tx, SERVICE_ROLE, p_mentor_id=mentor_id, p_new_status="paused", p_reason=odd)
    assert history_of(tx, mentor_id)[0]["reason"] == odd


@pytest.mark.parametrize(
    "text",
    ["line\nbreak", "tab\there", "\x1b[31m escape", "\u2028separator", "bidi \u202e override", "\u2066isolate"],
)
@pytest.mark.parametrize("argument", ["p_reason", "p_request_id"])
def test_control_and_bidi_characters_are_refused_and_nothing_is_written(tx, organization_id, argument, text):
    mentor_id = create_mentor(tx, organization_id)
    with pytest.raises(psycopg.Error) as excinfo:
        call_rpc(tx, SERVICE_ROLE, p_mentor_id=mentor_id, p_new_status="paused", **{argument: text})
    assert sqlstate_of(excinfo) == "22023"
    assert history_of(tx, mentor_id) == []


# --- optimistic locking and idempotency ---------------------------------------------------


def test_matching_expected_version_is_accepted_and_stale_one_is_pt409(tx, organization_id):
    mentor_id = create_mentor(tx, organization_id)
    result = call_rpc(tx, SERVICE_ROLE, p_mentor_id=mentor_id, p_new_status="paused", p_expected_version=0)
    assert result["status_version"] == 1

    with pytest.raises(psycopg.Error) as excinfo:
        call_rpc(tx, SERVICE_ROLE, p_mentor_id=mentor_id, p_new_status="active", p_expected_version=0)
    assert sqlstate_of(excinfo) == "PT409"
    assert status_of(tx, mentor_id)["status"] == "paused"


def test_replayed_request_id_returns_the_first_transition_without_a_second_row(tx, organization_id):
    mentor_id = create_mentor(tx, organization_id)
    first = call_rpc(
        tx, SERVICE_ROLE, p_mentor_id=mentor_id, p_new_status="paused", p_expected_version=0, p_request_id="run-1"
    )
    # A retry after a lost answer: same arguments, so the version is now stale too.
    again = call_rpc(
        tx, SERVICE_ROLE, p_mentor_id=mentor_id, p_new_status="paused", p_expected_version=0, p_request_id="run-1"
    )
    assert again["replayed"] is True
    assert {k: again[k] for k in ("history_id", "old_status", "new_status", "changed_at", "status_version")} == {
        k: first[k] for k in ("history_id", "old_status", "new_status", "changed_at", "status_version")
    }
    assert len(history_of(tx, mentor_id)) == 1
    assert status_of(tx, mentor_id)["status_version"] == 1


def test_request_id_reused_for_another_transition_is_refused(tx, organization_id):
    mentor_id = create_mentor(tx, organization_id)
    call_rpc(tx, SERVICE_ROLE, p_mentor_id=mentor_id, p_new_status="paused", p_request_id="r")
    with pytest.raises(psycopg.Error) as excinfo:
        call_rpc(tx, SERVICE_ROLE, p_mentor_id=mentor_id, p_new_status="active", p_request_id="r")
    assert sqlstate_of(excinfo) == "22023"
    assert status_of(tx, mentor_id)["status"] == "paused"


# --- who may act --------------------------------------------------------------------------


def test_service_role_acts_as_the_system(tx, organization_id):
    mentor_id = create_mentor(tx, organization_id)
    call_rpc(tx, SERVICE_ROLE, p_mentor_id=mentor_id, p_new_status="paused", p_reason="certification_expired")
    assert history_of(tx, mentor_id)[0]["actor_id"] is None


def test_mentor_may_pause_itself(tx, organization_id):
    user_id = create_user(tx)
    mentor_id = create_mentor(tx, organization_id, user_id=user_id)
    call_rpc(tx, user_claims(user_id), p_mentor_id=mentor_id, p_new_status="paused", p_actor_id=user_id)
    assert status_of(tx, mentor_id)["status"] == "paused"


def test_mentor_may_not_act_on_another_mentor(tx, organization_id):
    user_id = create_user(tx)
    create_mentor(tx, organization_id, user_id=user_id)
    other_mentor = create_mentor(tx, organization_id)
    with pytest.raises(psycopg.Error) as excinfo:
        call_rpc(tx, user_claims(user_id), p_mentor_id=other_mentor, p_new_status="paused", p_actor_id=user_id)
    assert sqlstate_of(excinfo) == "42501"
    assert status_of(tx, other_mentor)["status"] == "active"


def test_coordinator_of_another_organisation_is_refused(tx, organization_id):
    mentor_id = create_mentor(tx, organization_id)
    outsider = create_coordinator(tx, uuid.uuid4())
    with pytest.raises(psycopg.Error) as excinfo:
        call_rpc(tx, user_claims(outsider), p_mentor_id=mentor_id, p_new_status="paused", p_actor_id=outsider)
    assert sqlstate_of(excinfo) == "42501"
    assert status_of(tx, mentor_id)["status"] == "active"


def test_authenticated_caller_must_name_itself_as_actor(tx, organization_id):
    mentor_id = create_mentor(tx, organization_id)
    coordinator_id = create_coordinator(tx, organization_id)
    with pytest.raises(psycopg.Error) as excinfo:
        call_rpc(tx, user_claims(coordinator_id), p_mentor_id=mentor_id, p_new_status="paused")
    assert sqlstate_of(excinfo) == "42501"


def test_anon_has_no_execute(tx, organization_id):
    mentor_id = create_mentor(tx, organization_id)
    with pytest.raises(errors.InsufficientPrivilege):
        call_rpc(tx, {"role": "anon"}, p_mentor_id=mentor_id, p_new_status="paused")
    assert status_of(tx, mentor_id)["status"] == "active"


def test_authenticated_cannot_update_or_insert_mentors_directly(tx, organization_id):
    user_id = create_user(tx)
    mentor_id = create_mentor(tx, organization_id, user_id=user_id)
    for statement in (
        "update public.peer_mentors set status = 'paused' where id = %(id)s",
        "insert into public.mentor_status_history (mentor_id, old_status, new_status) values (%(id)s, 'a', 'b')",
        "delete from public.peer_mentors where id = %(id)s",
    ):
        with pytest.raises(errors.InsufficientPrivilege), acting_as(tx, user_claims(user_id)):
            tx.execute(statement, {"id": mentor_id})
    assert status_of(tx, mentor_id)["status"] == "active"


# --- the job's request ids are the job's ------------------------------------------------------


@pytest.mark.parametrize(
    "request_id",
    [
        request_id_for(uuid.uuid4(), uuid.uuid4()),
        "certification_expiry:not-a-uuid:x",
        "certification_expiry:",
    ],
)
@pytest.mark.parametrize("who", ["mentor", "coordinator"])
def test_nobody_but_the_service_role_may_use_the_jobs_prefix(tx, organization_id, request_id, who):
    mentor_user = create_user(tx)
    mentor_id = create_mentor(tx, organization_id, user_id=mentor_user)
    actor = mentor_user if who == "mentor" else create_coordinator(tx, organization_id)
    pause = {"p_mentor_id": mentor_id, "p_new_status": "paused", "p_actor_id": actor}
    with pytest.raises(errors.InsufficientPrivilege) as raised:
        call_rpc(tx, user_claims(actor), **pause, p_request_id=request_id)
    assert "belong to the certification expiry job" in str(raised.value)
    # Other request ids are theirs to use.
    assert call_rpc(tx, user_claims(actor), **pause, p_request_id="mine:1")["new_status"] == "paused"


def test_a_mentor_cannot_replay_the_jobs_transition_under_its_request_id(tx, organization_id):
    mentor_user = create_user(tx)
    mentor_id = create_mentor(tx, organization_id, user_id=mentor_user)
    request_id = request_id_for(uuid.uuid4(), mentor_id)
    call_rpc(tx, SERVICE_ROLE, p_mentor_id=mentor_id, p_new_status="paused", p_request_id=request_id)
    own_pause = {"p_mentor_id": mentor_id, "p_new_status": "paused", "p_actor_id": mentor_user}
    with pytest.raises(errors.InsufficientPrivilege):
        call_rpc(tx, user_claims(mentor_user), **own_pause, p_request_id=request_id)
