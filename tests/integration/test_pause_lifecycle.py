"""Ending a pause and recording a renewal, through supabase-py and the gateway, as the
coordinators' admin interface and a hostile mentor would call them."""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from datetime import date, timedelta

import psycopg
import pytest
from postgrest.exceptions import APIError
from supabase import Client, create_client

from local_supabase.ephemeral import Stack
from tests.builders import SERVICE_ROLE, call_rpc, create_coordinator, create_mentor, create_user


@dataclass
class Chapter:
    """One organisation's mentor with a login, its coordinator, and a coordinator elsewhere."""

    stack: Stack
    mentor_user: uuid.UUID
    coordinator: uuid.UUID
    outsider: uuid.UUID
    organization_id: uuid.UUID

    def as_user(self, user_id: uuid.UUID) -> Client:
        client = create_client(self.stack.url, self.stack.publishable_key)
        client.postgrest.auth(self.stack.user_token(user_id))
        return client

    def add_mentor(self, expiry: date, paused_by: uuid.UUID | None) -> str:
        """A mentor of the chapter, paused by this user (None: the system)."""
        with psycopg.connect(self.stack.database.dsn, autocommit=True) as conn:
            mentor = create_mentor(conn, self.organization_id, expiry=expiry, user_id=self.mentor_user)
            call_rpc(conn, SERVICE_ROLE, p_mentor_id=mentor, p_new_status="paused", p_actor_id=paused_by)
        return str(mentor)


@pytest.fixture
def chapter(stack: Stack) -> Chapter:
    home = uuid.uuid4()
    with psycopg.connect(stack.database.dsn, autocommit=True) as conn:
        mentor_user = create_user(conn)
        coordinator, outsider = create_coordinator(conn, home), create_coordinator(conn, uuid.uuid4())
    return Chapter(stack, mentor_user, coordinator, outsider, organization_id=home)


def end_pause(client: Client, mentor: str, actor: uuid.UUID | None) -> dict:
    params = {"p_mentor_id": mentor, "p_new_status": "active", "p_actor_id": str(actor) if actor else None}
    return client.rpc("update_mentor_status", params).execute().data


def renew(client: Client, mentor: str, actor: uuid.UUID | None, **extra: object) -> dict:
    params = {
        "p_mentor_id": mentor,
        "p_new_expiry_date": (date.today() + timedelta(days=365)).isoformat(),
        "p_actor_id": str(actor) if actor else None,
        **extra,
    }
    return client.rpc("record_certification_renewal", params).execute().data


def code_of(call) -> str:
    with pytest.raises(APIError) as raised:
        call()
    return raised.value.code


VALID = date.today() + timedelta(days=200)
EXPIRED = date.today() - timedelta(days=60)


def test_a_mentor_may_not_end_a_coordinators_or_the_systems_pause(chapter):
    mentor = chapter.as_user(chapter.mentor_user)
    for pauser in (chapter.coordinator, None):
        target = chapter.add_mentor(VALID, paused_by=pauser)
        assert code_of(lambda target=target: end_pause(mentor, target, chapter.mentor_user)) == "42501"


def test_a_mentor_ends_their_own_pause_when_the_certification_is_valid(chapter):
    target = chapter.add_mentor(VALID, paused_by=chapter.mentor_user)
    result = end_pause(chapter.as_user(chapter.mentor_user), target, chapter.mentor_user)
    assert (result["old_status"], result["new_status"]) == ("paused", "active")


def test_nobody_reactivates_an_expired_mentor(chapter, service):
    target = chapter.add_mentor(EXPIRED, paused_by=None)
    coordinator = chapter.as_user(chapter.coordinator)
    assert code_of(lambda: end_pause(coordinator, target, chapter.coordinator)) == "P0001"
    with pytest.raises(APIError) as raised:
        end_pause(service, target, None)
    assert raised.value.code == "P0001"
    assert EXPIRED.isoformat() in raised.value.message


def test_a_coordinator_renews_and_reactivates_in_one_call_and_the_mentor_is_listed_again(chapter, service):
    target = chapter.add_mentor(EXPIRED, paused_by=None)
    listed = service.table("listed_peer_mentors").select("id").eq("id", target)
    assert listed.execute().data == []

    result = renew(chapter.as_user(chapter.coordinator), target, chapter.coordinator, p_reactivate=True)

    assert (result["status"], result["old_expiry_date"], result["replayed"]) == ("active", EXPIRED.isoformat(), False)
    assert listed.execute().data == [{"id": target}]
    history = service.table("mentor_status_history").select("new_status,actor_id,reason").eq("mentor_id", target)
    assert history.order("id").execute().data[-1] == {
        "new_status": "active",
        "actor_id": str(chapter.coordinator),
        "reason": "certification_renewed",
    }


def test_the_mentors_own_renewal_and_another_organisations_coordinator_are_refused(chapter):
    target = chapter.add_mentor(EXPIRED, paused_by=None)
    for user in (chapter.mentor_user, chapter.outsider):
        client = chapter.as_user(user)
        assert code_of(lambda client=client, user=user: renew(client, target, user, p_reactivate=True)) == "42501"
    with psycopg.connect(chapter.stack.database.dsn) as conn:
        status, expiry = conn.execute(
            "select status, certification_expiry_date from public.peer_mentors where id = %s", (target,)
        ).fetchone()
    assert (status, expiry) == ("paused", EXPIRED)


def test_a_renewal_retried_with_its_request_id_is_recorded_once(chapter):
    target = chapter.add_mentor(EXPIRED, paused_by=None)
    coordinator = chapter.as_user(chapter.coordinator)
    first = renew(coordinator, target, chapter.coordinator, p_reactivate=True, p_request_id="admin-app:42")
    again = renew(coordinator, target, chapter.coordinator, p_reactivate=True, p_request_id="admin-app:42")
    assert again == {**first, "replayed": True}
    renewals = coordinator.table("certification_renewals").select("id").eq("mentor_id", target).execute()
    assert len(renewals.data) == 1
