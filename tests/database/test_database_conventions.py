"""The main rules of Supabase's database linter (splinter), checked on the migrated schema."""

from __future__ import annotations

import psycopg
import pytest
from psycopg.rows import dict_row


@pytest.fixture(scope="module")
def catalog(database):
    with psycopg.connect(database.dsn, row_factory=dict_row) as conn:
        yield conn


def test_every_public_function_pins_its_search_path(catalog):
    # splinter 0011 function_search_path_mutable
    unpinned = catalog.execute(
        "select p.proname from pg_proc p join pg_namespace n on n.oid = p.pronamespace"
        " where n.nspname = 'public'"
        " and not exists (select 1 from pg_depend d where d.objid = p.oid and d.deptype = 'e')"
        " and not exists (select 1 from unnest(coalesce(p.proconfig, '{}')) c where c like 'search_path=%')"
    ).fetchall()
    assert unpinned == []


def test_every_public_table_has_row_level_security(catalog):
    # splinter 0013 rls_disabled_in_public
    tables = catalog.execute(
        "select c.relname, c.relrowsecurity from pg_class c join pg_namespace n on n.oid = c.relnamespace"
        " where n.nspname = 'public' and c.relkind in ('r', 'p')"
    ).fetchall()
    assert len(tables) == 5
    assert [t["relname"] for t in tables if not t["relrowsecurity"]] == []


def test_no_security_definer_function_is_executable_by_anon(catalog):
    # splinter 0028/0029 anon/authenticated security definer function executable
    exposed = catalog.execute(
        "select p.proname from pg_proc p join pg_namespace n on n.oid = p.pronamespace"
        " where n.nspname = 'public' and p.prosecdef and has_function_privilege('anon', p.oid, 'execute')"
    ).fetchall()
    assert exposed == []


def test_every_foreign_key_is_indexed(catalog):
    # splinter 0001 unindexed_foreign_keys: an index whose leading columns are the key's
    unindexed = catalog.execute(
        """
        select c.conrelid::regclass as tbl, c.conname
        from pg_constraint c
        join pg_namespace n on n.oid = c.connamespace
        where c.contype = 'f' and n.nspname = 'public'
          and not exists (
            select 1 from pg_index i
            where i.indrelid = c.conrelid
              and (i.indkey::int2[])[0:cardinality(c.conkey) - 1] operator(pg_catalog.@>) c.conkey
              and (i.indkey::int2[])[0:cardinality(c.conkey) - 1] operator(pg_catalog.<@) c.conkey
          )
        """
    ).fetchall()
    assert unindexed == []


def test_views_run_with_the_callers_rights(catalog):
    # splinter 0010 security_definer_view
    owner_rights = catalog.execute(
        "select c.relname from pg_class c join pg_namespace n on n.oid = c.relnamespace"
        " where n.nspname = 'public' and c.relkind = 'v'"
        " and not coalesce('security_invoker=true' = any(c.reloptions), false)"
    ).fetchall()
    assert owner_rights == []
