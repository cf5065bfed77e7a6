"""The demo data set applies cleanly and contains what its comments promise."""

from __future__ import annotations

from local_supabase.postgres import SEED_SQL


def test_seed_lists_exactly_the_six_expired_active_mentors(tx):
    tx.execute(SEED_SQL.read_text())
    rows = tx.execute(
        "select full_name from public.expired_active_mentors"
        " where organization_id in ('a0000000-0000-4000-8000-000000000001', 'a0000000-0000-4000-8000-000000000002')"
        " order by full_name"
    ).fetchall()
    assert [row["full_name"] for row in rows] == [
        "Bjørn Berg",
        "Ingrid Hansen",
        "Kari Olsen",
        "Lars Johansen",
        "Per Larsen",
        "Sigrid Karlsen",
    ]
    statuses = tx.execute(
        "select distinct status from public.peer_mentors where organization_id = 'a0000000-0000-4000-8000-000000000001'"
    ).fetchall()
    assert {row["status"] for row in statuses} == {"active", "paused", "inactive"}
