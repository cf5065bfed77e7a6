"""Who may read and write what, through the gateway, as the table below says.

Expected: a set of row labels for reads that row level security filters, or the
HTTP status for requests the grants refuse (401 anonymous, 403 with a JWT).
"""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from datetime import date, timedelta

import httpx
import psycopg
import pytest

from local_supabase.keys import PUBLISHABLE_KEY
from tests.builders import SERVICE_ROLE, call_rpc, create_coordinator, create_mentor, create_user, days_from_today

ACTORS = ("anon", "mentor", "other_mentor", "coordinator", "other_coordinator", "service")


@dataclass
class World:
    url: str
    tokens: dict[str, str]
    users: dict[str, uuid.UUID]
    mentors: dict[str, str]  # label -> mentor id
    organizations: dict[str, uuid.UUID]
    dsn: str

    def request(self, actor: str, method: str, path: str, **kwargs) -> httpx.Response:
        # The API key decides the role unless Authorization holds a JWT (a user's session).
        api_key = self.tokens["service"] if actor == "service" else PUBLISHABLE_KEY
        headers = {"apikey": api_key, "Authorization": f"Bearer {self.tokens[actor]}"}
        return httpx.request(method, f"{self.url}/rest/v1/{path}", headers=headers, timeout=10, **kwargs)

    def rpc(self, actor: str, function: str, **arguments: object) -> httpx.Response:
        """Call the function as `actor`, acting as themselves: their user id as p_actor_id
        (null for anon and the service role, which act for no user)."""
        user = self.users.get(actor)
        arguments["p_actor_id"] = str(user) if user else None
        return self.request(actor, "POST", f"rpc/{function}", json=arguments)

    def status_of(self, mentor: str) -> str:
        with psycopg.connect(self.dsn) as conn:
            return conn.execute("select status from public.peer_mentors where id = %s", (mentor,)).fetchone()[0]


@pytest.fixture(scope="module")
def world(stack) -> World:
    home, away = uuid.uuid4(), uuid.uuid4()
    with psycopg.connect(stack.database.dsn, autocommit=True) as conn:
        users = {name: create_user(conn) for name in ("mentor", "other_mentor")}
        users |= {"coordinator": create_coordinator(conn, home), "other_coordinator": create_coordinator(conn, away)}

        def mentor(organization: uuid.UUID, user: uuid.UUID | None) -> str:
            return str(create_mentor(conn, organization, expiry=days_from_today(-10), user_id=user, full_name="Matrix"))

        mentors = {
            "own": mentor(home, users["mentor"]),
            "colleague": mentor(home, users["other_mentor"]),
            "away": mentor(away, None),
        }
        for label in mentors.values():  # a history and a renewal for each, and back to active
            pause_and_renew(conn, label)
    tokens = {name: stack.user_token(user) for name, user in users.items()}
    tokens |= {"anon": stack.publishable_key, "service": stack.secret_key}
    return World(stack.url, tokens, users, mentors, {"home": home, "away": away}, stack.database.dsn)


def pause_and_renew(conn: psycopg.Connection, mentor: str, actor: uuid.UUID | None = None) -> dict:
    """Pause the mentor, record a renewal that ends the pause, then let the
    certification lapse again as the owner, so the matrix's mentors stay expired and
    active. Returns the pause's transition."""
    paused = conn.execute("select public.update_mentor_status(%s, 'paused', %s)", (mentor, actor)).fetchone()[0]
    conn.execute("select public.record_certification_renewal(%s, current_date + 365, null, null, true)", (mentor,))
    conn.execute(
        "update public.peer_mentors set certification_expiry_date = current_date - 10 where id = %s", (mentor,)
    )
    return paused


MENTOR_KEYED = ("mentor_status_history", "certification_expiry_audit", "certification_renewals")


def visible(world: World, actor: str, relation: str) -> set[str] | int:
    """Which of the matrix's mentors the actor sees in a mentor-keyed relation."""
    key = "mentor_id" if relation in MENTOR_KEYED or relation == "certifications_expiring_soon" else "id"
    ids = ",".join(world.mentors.values())
    response = world.request(actor, "GET", f"{relation}?select={key}&{key}=in.({ids})")
    if response.status_code != 200:
        return response.status_code
    seen = {row[key] for row in response.json()}
    return {label for label, mentor in world.mentors.items() if mentor in seen}


ALL = {"own", "colleague", "away"}
HOME = {"own", "colleague"}
READS = {
    # relation:               anon   mentor   other_mentor    coordinator  other_coordinator  service
    # anon: 401, no grant at all (pg_graphql would otherwise list the relation to anyone).
    "peer_mentors": (401, {"own"}, {"colleague"}, HOME, {"away"}, ALL),
    "mentor_status_history": (401, {"own"}, {"colleague"}, HOME, {"away"}, ALL),
    "expired_active_mentors": (401, {"own"}, {"colleague"}, HOME, {"away"}, ALL),
    "certification_renewals": (401, {"own"}, {"colleague"}, HOME, {"away"}, ALL),
}


@pytest.mark.parametrize("relation", READS)
@pytest.mark.parametrize("actor", ACTORS)
def test_mentor_reads(world, relation, actor):
    assert visible(world, actor, relation) == READS[relation][ACTORS.index(actor)]


def test_coordinator_memberships_are_read_only_by_their_user_and_the_service(world):
    expected = {"anon": 401, "mentor": 0, "other_mentor": 0, "coordinator": 1, "other_coordinator": 1, "service": 2}
    for actor, count in expected.items():
        response = world.request(
            actor,
            "GET",
            f"organization_coordinators?organization_id=in.({world.organizations['home']},{world.organizations['away']})",
        )
        if response.status_code != 200:
            assert response.status_code == count, actor
            continue
        rows = response.json()
        assert len(rows) == count, actor
        if actor.endswith("coordinator"):
            assert rows[0]["user_id"] == str(world.users[actor])


@pytest.mark.parametrize(
    ("actor", "status"),
    [
        ("anon", 401),
        ("mentor", 403),
        ("other_mentor", 403),
        ("coordinator", 403),
        ("other_coordinator", 403),
        ("service", 200),
    ],
)
def test_the_run_table_is_the_service_roles_alone(world, actor, status):
    assert world.request(actor, "GET", "certification_expiry_runs?select=*&limit=1").status_code == status


WRITES = [
    # what, method, path, body
    ("rename a mentor", "PATCH", "peer_mentors?id=eq.{own}", {"full_name": "Matrix"}),
    ("pause a mentor directly", "PATCH", "peer_mentors?id=eq.{own}", {"status": "paused"}),
    ("forge history", "POST", "mentor_status_history", {"mentor_id": "{own}", "old_status": "a", "new_status": "b"}),
    ("make oneself coordinator", "POST", "organization_coordinators", {"organization_id": "{home}", "user_id": "{me}"}),
    ("delete a mentor", "DELETE", "peer_mentors?id=eq.{own}", None),
    (
        "fake a run",
        "POST",
        "certification_expiry_runs",
        {"id": "{new}", "trigger": "manual", "lease_expires_at": "2000-01-01"},
    ),
    ("write through the view", "PATCH", "expired_active_mentors?id=eq.{own}", {"full_name": "x"}),
    (
        "forge a renewal",
        "POST",
        "certification_renewals",
        {"mentor_id": "{own}", "new_expiry_date": "2099-01-01", "status": "active", "status_version": "0"},
    ),
    ("renew by writing the date", "PATCH", "peer_mentors?id=eq.{own}", {"certification_expiry_date": "2099-01-01"}),
    (
        "forge an audit row",
        "POST",
        "certification_expiry_audit",
        {
            "job_run_id": "{new}",
            "mentor_id": "{own}",
            "old_status": "active",
            "new_status": "paused",
            "history_id": "1",
        },
    ),
]


@pytest.mark.parametrize(("what", "method", "path", "body"), WRITES, ids=[w[0] for w in WRITES])
@pytest.mark.parametrize("actor", [a for a in ACTORS if a != "service"])
def test_nobody_but_the_service_role_writes(world, actor, what, method, path, body):
    values = {
        **world.mentors,
        "home": str(world.organizations["home"]),
        "me": str(world.users.get(actor, uuid.uuid4())),
        "new": str(uuid.uuid4()),
    }
    payload = {key: value.format(**values) for key, value in body.items()} if body else None
    response = world.request(actor, method, path.format(**values), json=payload)
    assert response.status_code == (401 if actor == "anon" else 403), response.text
    with psycopg.connect(world.dsn) as conn:
        status, name = conn.execute(
            "select status, full_name from public.peer_mentors where id = %s", (world.mentors["own"],)
        ).fetchone()
    assert (status, name) == ("active", "Matrix")


RPC = {"anon": 401, "mentor": 200, "other_mentor": 403, "coordinator": 200, "other_coordinator": 403, "service": 200}


@pytest.mark.parametrize("actor", ACTORS)
def test_who_may_pause_a_mentor_through_the_rpc(world, actor):
    with psycopg.connect(world.dsn, autocommit=True) as conn:
        target = str(create_mentor(conn, world.organizations["home"], user_id=world.users["mentor"]))
    response = world.rpc(actor, "update_mentor_status", p_mentor_id=target, p_new_status="paused")
    assert response.status_code == RPC[actor], response.text
    assert world.status_of(target) == ("paused" if RPC[actor] == 200 else "active")


# What each caller sees of the mentors whose certifications expire soon: as the mentors.
EXPIRING_SOON = {"anon": 401, "mentor": {"own"}, "other_mentor": {"colleague"}, "coordinator": HOME}
EXPIRING_SOON |= {"other_coordinator": {"away"}, "service": ALL}


@pytest.fixture
def valid_certifications(world):
    """The matrix's mentors with a valid certification for this test, expired again after it."""
    ids = list(world.mentors.values())
    with psycopg.connect(world.dsn, autocommit=True) as conn:
        conn.execute(
            "update public.peer_mentors set certification_expiry_date = current_date + 30 where id::text = any(%s)",
            (ids,),
        )
        yield
        conn.execute(
            "update public.peer_mentors set certification_expiry_date = current_date - 10 where id::text = any(%s)",
            (ids,),
        )


@pytest.mark.parametrize("actor", ACTORS)
def test_the_listing_is_public_every_caller_sees_every_listed_mentor(world, valid_certifications, actor):
    assert visible(world, actor, "listed_peer_mentors") == ALL


@pytest.mark.parametrize("actor", ACTORS)
def test_what_expires_soon_is_seen_as_the_mentors_are(world, valid_certifications, actor):
    assert visible(world, actor, "certifications_expiring_soon") == EXPIRING_SOON[actor]


@pytest.mark.parametrize("actor", ACTORS)
def test_the_listing_never_shows_an_expired_mentor_to_anyone(world, actor):
    assert visible(world, actor, "listed_peer_mentors") in (set(), 401)


@pytest.fixture(scope="module")
def pauses(world) -> uuid.UUID:
    """Each matrix mentor paused once by a run of the job, audited, and active again;
    the colleague's pause by a coordinator's manual run. Returns that run's id."""
    system_run, manual_run = uuid.uuid4(), uuid.uuid4()
    coordinator = world.users["coordinator"]
    with psycopg.connect(world.dsn, autocommit=True) as conn:
        for run, actor in ((system_run, None), (manual_run, coordinator)):
            conn.execute(
                "insert into public.certification_expiry_runs (id, trigger, actor_id, status, finished_at,"
                " lease_expires_at) values (%s, 'manual', %s, 'succeeded', now(), now())",
                (run, actor),
            )
        for label, mentor in world.mentors.items():
            run, actor = (manual_run, coordinator) if label == "colleague" else (system_run, None)
            transition = pause_and_renew(conn, mentor, actor)
            conn.execute(
                "insert into public.certification_expiry_audit"
                " (job_run_id, mentor_id, certification_expiry_date, old_status, new_status, history_id)"
                " values (%s, %s, current_date - 10, 'active', 'paused', %s)",
                (run, mentor, transition["history_id"]),
            )
    return manual_run


@pytest.mark.parametrize("actor", ACTORS)
def test_audit_rows_are_read_as_their_mentors_are(world, pauses, actor):
    expected = {"anon": 401, "mentor": {"own"}, "other_mentor": {"colleague"}, "coordinator": HOME}
    expected |= {"other_coordinator": {"away"}, "service": ALL}
    assert visible(world, actor, "certification_expiry_audit") == expected[actor]


@pytest.mark.parametrize("actor", ACTORS)
def test_the_pauses_are_seen_as_their_mentors_are(world, pauses, actor):
    expected = {"anon": 401, "mentor": {"own"}, "other_mentor": {"colleague"}, "coordinator": HOME}
    expected |= {"other_coordinator": {"away"}, "service": ALL}
    response = world.request(actor, "GET", f"certification_expiry_pauses?select=*&job_run_id=neq.{uuid.uuid4()}")
    if response.status_code != 200:
        assert response.status_code == expected[actor]
        return
    rows = [row for row in response.json() if row["mentor_id"] in world.mentors.values()]
    assert {label for label, mentor in world.mentors.items() if mentor in {r["mentor_id"] for r in rows}} == expected[
        actor
    ]
    for row in rows:  # the coordinator's manual run names the coordinator as actor
        manual = row["job_run_id"] == str(pauses)
        assert row["actor_id"] == (str(world.users["coordinator"]) if manual else None)
        assert set(row) == {
            "mentor_id",
            "organization_id",
            "full_name",
            "certification_expiry_date",
            "paused_at",
            "job_run_id",
            "actor_id",
        }


# Ending a pause: who paused decides who may end it (migration ending_a_pause), and
# nobody ends the pause of an expired mentor. 400 is P0001, 403 is 42501.
ENDING = {
    # paused by:      anon  mentor  other_mentor  coordinator  other_coordinator  service
    "mentor": (401, 200, 403, 200, 403, 200),
    "coordinator": (401, 403, 403, 200, 403, 200),
    "system": (401, 403, 403, 200, 403, 200),
    "system, expired": (401, 403, 403, 400, 403, 400),
}


def paused_target(world: World, expired: bool, pauser: uuid.UUID | None) -> str:
    """A new mentor of the home organisation, with the matrix's mentor as its login, paused by `pauser`."""
    with psycopg.connect(world.dsn, autocommit=True) as conn:
        expiry = days_from_today(-10 if expired else 30)
        target = create_mentor(conn, world.organizations["home"], expiry=expiry, user_id=world.users["mentor"])
        call_rpc(conn, SERVICE_ROLE, p_mentor_id=target, p_new_status="paused", p_actor_id=pauser)
    return str(target)


@pytest.mark.parametrize("paused_by", ENDING)
@pytest.mark.parametrize("actor", ACTORS)
def test_who_may_end_a_pause(world, paused_by, actor):
    pauser = {"mentor": world.users["mentor"], "coordinator": world.users["coordinator"]}.get(paused_by)
    target = paused_target(world, paused_by.endswith("expired"), pauser)
    response = world.rpc(actor, "update_mentor_status", p_mentor_id=target, p_new_status="active")
    expected = ENDING[paused_by][ACTORS.index(actor)]
    assert response.status_code == expected, response.text
    assert world.status_of(target) == ("active" if expected == 200 else "paused")


RENEWAL = {"anon": 401, "mentor": 403, "other_mentor": 403, "coordinator": 200, "other_coordinator": 403}
RENEWAL |= {"service": 200}


@pytest.mark.parametrize("actor", ACTORS)
def test_who_may_record_a_renewal(world, actor):
    target = paused_target(world, expired=True, pauser=None)
    renewed_until = date.today() + timedelta(days=365)
    response = world.rpc(
        actor,
        "record_certification_renewal",
        p_mentor_id=target,
        p_new_expiry_date=renewed_until.isoformat(),
        p_reactivate=True,
    )
    assert response.status_code == RENEWAL[actor], response.text
    with psycopg.connect(world.dsn) as conn:
        (expiry,) = conn.execute(
            "select certification_expiry_date from public.peer_mentors where id = %s", (target,)
        ).fetchone()
    renewed = RENEWAL[actor] == 200
    assert (world.status_of(target), expiry == renewed_until) == (("active", True) if renewed else ("paused", False))
