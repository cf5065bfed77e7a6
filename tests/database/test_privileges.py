"""Every right of the API roles, read from the catalog, held to the table in
docs/database.md ("Privileges"): role by object by privilege, functions included.

Twice: on a cluster as Supabase creates a project today (no default grants), and on
one with the defaults older projects still carry (everything new in `public`
granted to the three roles). The migrations must give both the same rights. An
object the table does not list, or a right it does not show, fails the test.
"""

from __future__ import annotations

import uuid
from collections.abc import Iterator

import psycopg
import pytest
from psycopg import sql

from local_supabase.postgres import Cluster, push_migrations
from tools.privileges import catalog_matrix, differences, documented_matrix

# What Supabase granted on every new object in `public` before 2026-10-30.
OLD_DEFAULTS = """
alter default privileges for role postgres in schema public grant all on tables to anon, authenticated, service_role;
alter default privileges for role postgres in schema public grant all on sequences to anon, authenticated, service_role;
alter default privileges for role postgres in schema public grant all on functions to anon, authenticated, service_role;
"""


@pytest.fixture(scope="module")
def old_defaults_dsn(database: Cluster) -> Iterator[str]:
    """A database of its own in the tier's cluster, with the older projects' default
    grants in force before the first migration, migrated by the Supabase CLI."""
    name = f"old_defaults_{uuid.uuid4().hex[:12]}"
    with psycopg.connect(database.dsn, autocommit=True) as admin:
        admin.execute(sql.SQL("create database {}").format(sql.Identifier(name)))
        dsn = database.dsn.rsplit("/", 1)[0] + f"/{name}"
        try:
            with psycopg.connect(dsn, autocommit=True) as conn:
                conn.execute(OLD_DEFAULTS)
            push_migrations(dsn)
            yield dsn
        finally:
            admin.execute(sql.SQL("drop database {} with (force)").format(sql.Identifier(name)))


def test_a_project_created_today_grants_exactly_the_documented_rights(database):
    assert differences(catalog_matrix(database.dsn), documented_matrix()) == []


def test_a_project_with_the_old_default_grants_ends_with_the_same_rights(old_defaults_dsn):
    assert differences(catalog_matrix(old_defaults_dsn), documented_matrix()) == []


def test_the_old_defaults_would_have_granted_more(old_defaults_dsn):
    """The old-defaults cluster is what it claims: an object created after the
    migrations gets every right there, and none on a project created today."""
    with psycopg.connect(old_defaults_dsn, autocommit=True) as conn:
        conn.execute("create table public.probe (id int)")
        try:
            granted = conn.execute("select has_table_privilege('service_role', 'public.probe', 'DELETE')").fetchone()[0]
        finally:
            conn.execute("drop table public.probe")
    assert granted
