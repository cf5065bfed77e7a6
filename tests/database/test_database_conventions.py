"""Supabase's database advisor lints (splinter 0001 to 0029), checked on the migrated schema.

Each rule that a schema can break is a query of our own here, written from the
lint's public documentation, that returns its findings by name; the only
findings allowed are the deliberate exceptions in EXCEPTIONS, each explained in
the migration that causes it. A new finding fails its test.

Not checked, because nothing in a schema decides them: 0005 unused_index and
0020 table_bloat (runtime statistics), 0012 auth_allow_anonymous_sign_ins (Auth
settings), 0019 insecure_queue_exposed_in_api and 0025 public_bucket_allows_listing
(pgmq and Storage, which the project does not use), 0022 extension_versions_outdated
(the platform's extension builds).
"""

from __future__ import annotations

import psycopg
import pytest
from psycopg.rows import dict_row

API_ROLES = ("anon", "authenticated")
EXCEPTIONS = {
    # Chapter websites list mentors with the publishable key: the public listing's
    # three columns, nothing else (migration public_listing_for_websites).
    "0026_pg_graphql_anon_table_exposed": {"listed_peer_mentors"},
    # Signed-in users read these through the API under row level security
    # (migration api_exposure).
    "0027_pg_graphql_authenticated_table_exposed": {
        "peer_mentors",
        "organization_coordinators",
        "mentor_status_history",
        "expired_active_mentors",
        "listed_peer_mentors",
        "certification_expiry_audit",
        "certification_expiry_pauses",
        # A coordinator's follow-up of renewals (migrations certification_renewals
        # and certifications_expiring_soon).
        "certification_renewals",
        "certifications_expiring_soon",
    },
    # Mentors and coordinators change statuses through it; it checks the caller
    # itself (migrations update_mentor_status and job_request_ids).
    # Coordinators record renewals through the other, which checks its caller the same way
    # (migration certification_renewals).
    "0029_authenticated_security_definer_function_executable": {"update_mentor_status", "record_certification_renewal"},
    # The job's run ledger: the service role's alone, no policy on purpose.
    "0008_rls_enabled_no_policy": {"certification_expiry_runs"},
}
# Column names the 0023 lint reads as sensitive data.
SENSITIVE = (
    "password|passwd|pwd|secret|api_key|token|jwt|ssn|social_security|passport|national_id|tax_id|credit_card"
    "|card_number|cvv|bank_account|iban|health_record|medical_record|diagnosis|fingerprint|biometric"
)


@pytest.fixture(scope="module")
def catalog(database):
    with psycopg.connect(database.dsn, row_factory=dict_row) as conn:
        yield conn


def names(catalog: psycopg.Connection, query: str, *params: object) -> set[str]:
    return {row["name"] for row in catalog.execute(query, params or None)}


def assert_only_exceptions(rule: str, found: set[str]) -> None:
    assert found == EXCEPTIONS.get(rule, set()), f"{rule}: {sorted(found ^ EXCEPTIONS.get(rule, set()))}"


# Relations of public as pg_graphql and PostgREST see them (tables, views,
# materialized views, foreign tables), not those an extension owns.
PUBLIC_RELATIONS = """
    select c.oid, c.relname as name, c.relkind, c.relrowsecurity
    from pg_class c join pg_namespace n on n.oid = c.relnamespace
    where n.nspname = 'public' and c.relkind in ('r', 'p', 'v', 'm', 'f')
      and not exists (select 1 from pg_depend d where d.objid = c.oid and d.deptype = 'e')
"""
PUBLIC_FUNCTIONS = """
    select p.oid, p.proname as name, p.prosecdef, p.proconfig
    from pg_proc p join pg_namespace n on n.oid = p.pronamespace
    where n.nspname = 'public'
      and not exists (select 1 from pg_depend d where d.objid = p.oid and d.deptype = 'e')
"""


def test_0001_every_foreign_key_is_indexed(catalog):
    # An index whose leading columns are exactly the key's columns.
    found = names(
        catalog,
        """
        select c.conrelid::regclass::text || '.' || c.conname as name
        from pg_constraint c join pg_namespace n on n.oid = c.connamespace
        where c.contype = 'f' and n.nspname = 'public'
          and not exists (
            select 1 from pg_index i
            where i.indrelid = c.conrelid
              and (i.indkey::int2[])[0:cardinality(c.conkey) - 1] operator(pg_catalog.@>) c.conkey
              and (i.indkey::int2[])[0:cardinality(c.conkey) - 1] operator(pg_catalog.<@) c.conkey)
        """,
    )
    assert_only_exceptions("0001_unindexed_foreign_keys", found)


def test_0002_no_api_view_exposes_auth_users(catalog):
    found = names(
        catalog,
        f"""
        select distinct r.name from ({PUBLIC_RELATIONS}) r
        join pg_depend d on d.refobjid = 'auth.users'::regclass
        join pg_rewrite w on w.oid = d.objid and w.ev_class = r.oid
        where r.relkind in ('v', 'm')
          and (has_table_privilege('anon', r.oid, 'select') or has_table_privilege('authenticated', r.oid, 'select'))
        """,
    )
    assert_only_exceptions("0002_auth_users_exposed", found)


def test_0003_policies_call_auth_functions_once_per_statement(catalog):
    # auth.uid() and current_setting() wrapped in a (select …), not evaluated per row.
    found = names(
        catalog,
        """
        select tablename || '.' || policyname as name from pg_policies
        where schemaname = 'public'
          and regexp_replace(coalesce(qual, '') || ' ' || coalesce(with_check, ''),
                             '\\(\\s*select\\s+(auth\\.\\w+\\(\\)|current_setting\\([^)]*\\))', '', 'gi')
              ~* '(auth\\.(uid|jwt|role|email)\\(\\)|current_setting\\()'
        """,
    )
    assert_only_exceptions("0003_auth_rls_initplan", found)


def test_0004_every_table_has_a_primary_key(catalog):
    found = names(
        catalog,
        f"""select r.name from ({PUBLIC_RELATIONS}) r where r.relkind in ('r', 'p')
            and not exists (select 1 from pg_constraint c where c.conrelid = r.oid and c.contype = 'p')""",
    )
    assert_only_exceptions("0004_no_primary_key", found)


def test_0006_at_most_one_permissive_policy_per_role_and_action(catalog):
    found = names(
        catalog,
        """
        select tablename || ':' || role || ':' || action as name
        from (
          select p.tablename, unnest(p.roles) as role,
                 unnest(case p.cmd when 'ALL' then array['SELECT','INSERT','UPDATE','DELETE'] else array[p.cmd] end)
                   as action
          from pg_policies p where p.schemaname = 'public' and p.permissive = 'PERMISSIVE'
        ) expanded
        group by tablename, role, action having count(*) > 1
        """,
    )
    assert_only_exceptions("0006_multiple_permissive_policies", found)


def test_0007_no_policy_on_a_table_without_row_level_security(catalog):
    found = names(
        catalog,
        f"""select distinct r.name from ({PUBLIC_RELATIONS}) r join pg_policy p on p.polrelid = r.oid
            where not r.relrowsecurity""",
    )
    assert_only_exceptions("0007_policy_exists_rls_disabled", found)


def test_0008_row_level_security_without_a_policy_is_deliberate(catalog):
    found = names(
        catalog,
        f"""select r.name from ({PUBLIC_RELATIONS}) r
            where r.relrowsecurity and not exists (select 1 from pg_policy p where p.polrelid = r.oid)""",
    )
    assert_only_exceptions("0008_rls_enabled_no_policy", found)


def test_0009_no_duplicate_index(catalog):
    found = names(
        catalog,
        """
        select string_agg(i.indexrelid::regclass::text, ' = ' order by i.indexrelid) as name
        from pg_index i join pg_class c on c.oid = i.indrelid join pg_namespace n on n.oid = c.relnamespace
        where n.nspname = 'public'
        group by i.indrelid, i.indkey::text, i.indclass::text, coalesce(pg_get_expr(i.indexprs, i.indrelid), ''),
                 coalesce(pg_get_expr(i.indpred, i.indrelid), '')
        having count(*) > 1
        """,
    )
    assert_only_exceptions("0009_duplicate_index", found)


def test_0010_views_run_with_the_readers_rights(catalog):
    # security_invoker, stored as 'security_invoker=true' or '=on' (or 1, yes).
    found = names(
        catalog,
        f"""select r.name from ({PUBLIC_RELATIONS}) r
            join pg_class c on c.oid = r.oid
            where r.relkind = 'v' and not exists (
              select 1 from unnest(coalesce(c.reloptions, '{{}}')) o
              where lower(o) in ('security_invoker=true', 'security_invoker=on',
                                 'security_invoker=1', 'security_invoker=yes'))""",
    )
    assert_only_exceptions("0010_security_definer_view", found)


def test_0011_every_function_pins_its_search_path(catalog):
    found = names(
        catalog,
        f"""select f.name from ({PUBLIC_FUNCTIONS}) f
            where not exists (select 1 from unnest(coalesce(f.proconfig, '{{}}')) c where c like 'search_path=%')""",
    )
    assert_only_exceptions("0011_function_search_path_mutable", found)


def test_0013_every_table_has_row_level_security(catalog):
    tables = catalog.execute(f"select r.name, r.relrowsecurity from ({PUBLIC_RELATIONS}) r where r.relkind = 'r'")
    rows = tables.fetchall()
    assert {row["name"] for row in rows} >= {"peer_mentors", "certification_expiry_runs"}  # the query sees tables
    assert_only_exceptions("0013_rls_disabled_in_public", {row["name"] for row in rows if not row["relrowsecurity"]})


def test_0014_no_extension_in_public(catalog):
    found = names(
        catalog,
        "select e.extname as name from pg_extension e join pg_namespace n on n.oid = e.extnamespace"
        " where n.nspname = 'public'",
    )
    assert_only_exceptions("0014_extension_in_public", found)


def test_0015_no_policy_trusts_user_metadata(catalog):
    found = names(
        catalog,
        "select tablename || '.' || policyname as name from pg_policies where schemaname = 'public'"
        " and (coalesce(qual, '') || coalesce(with_check, '')) ~* 'user_metadata'",
    )
    assert_only_exceptions("0015_rls_references_user_metadata", found)


@pytest.mark.parametrize(
    ("rule", "relkind"), [("0016_materialized_view_in_api", "m"), ("0017_foreign_table_in_api", "f")]
)
def test_0016_0017_no_materialized_view_or_foreign_table_in_the_api(catalog, rule, relkind):
    found = names(
        catalog,
        f"""select r.name from ({PUBLIC_RELATIONS}) r where r.relkind = %s
            and (has_table_privilege('anon', r.oid, 'select')
                 or has_table_privilege('authenticated', r.oid, 'select'))""",
        relkind,
    )
    assert_only_exceptions(rule, found)


def test_0018_no_reg_type_column(catalog):
    found = names(
        catalog,
        f"""select r.name || '.' || a.attname as name from ({PUBLIC_RELATIONS}) r
            join pg_attribute a on a.attrelid = r.oid and a.attnum > 0 and not a.attisdropped
            where a.atttypid::regtype::text in
              ('regcollation', 'regconfig', 'regdictionary', 'regnamespace', 'regoper', 'regoperator',
               'regproc', 'regprocedure')""",
    )
    assert_only_exceptions("0018_unsupported_reg_types", found)


def test_0021_no_foreign_key_to_a_non_primary_unique_key_of_auth(catalog):
    found = names(
        catalog,
        """
        select c.conrelid::regclass::text || '.' || c.conname as name
        from pg_constraint c
        join pg_class t on t.oid = c.confrelid join pg_namespace n on n.oid = t.relnamespace
        where c.contype = 'f' and n.nspname = 'auth'
          and exists (select 1 from pg_constraint u where u.conindid = c.conindid and u.contype = 'u')
        """,
    )
    assert_only_exceptions("0021_fkey_to_auth_unique", found)


def test_0023_no_sensitive_column_without_row_level_security(catalog):
    found = names(
        catalog,
        f"""select r.name || '.' || a.attname as name from ({PUBLIC_RELATIONS}) r
            join pg_attribute a on a.attrelid = r.oid and a.attnum > 0 and not a.attisdropped
            where r.relkind = 'r' and not r.relrowsecurity and a.attname ~* %s""",
        SENSITIVE,
    )
    assert_only_exceptions("0023_sensitive_columns_exposed", found)


def test_0024_no_policy_lets_every_row_through(catalog):
    found = names(
        catalog,
        """
        select tablename || '.' || policyname as name from pg_policies
        where schemaname = 'public' and permissive = 'PERMISSIVE'
          and (lower(replace(coalesce(qual, ''), ' ', '')) in ('true', '(true)', '(1=1)', '1=1')
               or lower(replace(coalesce(with_check, ''), ' ', '')) in ('true', '(true)', '(1=1)', '1=1')
               or (cmd in ('SELECT', 'ALL') and qual is null)
               or (cmd in ('INSERT', 'UPDATE') and with_check is null and qual is null))
        """,
    )
    assert_only_exceptions("0024_permissive_rls_policy", found)


@pytest.mark.parametrize("role", API_ROLES)
def test_0026_0027_what_pg_graphql_shows_each_api_role(catalog, role):
    rule = {
        "anon": "0026_pg_graphql_anon_table_exposed",
        "authenticated": "0027_pg_graphql_authenticated_table_exposed",
    }
    found = names(
        catalog,
        f"""select r.name from ({PUBLIC_RELATIONS}) r
            where r.relkind in ('r', 'v', 'm', 'f') and has_table_privilege(%s, r.oid, 'select')""",
        role,
    )
    assert_only_exceptions(rule[role], found)


@pytest.mark.parametrize("role", API_ROLES)
def test_0028_0029_security_definer_functions_executable_by_an_api_role(catalog, role):
    rule = {
        "anon": "0028_anon_security_definer_function_executable",
        "authenticated": "0029_authenticated_security_definer_function_executable",
    }
    found = names(
        catalog,
        f"""select f.name from ({PUBLIC_FUNCTIONS}) f
            where f.prosecdef and has_function_privilege(%s, f.oid, 'execute')""",
        role,
    )
    assert_only_exceptions(rule[role], found)


def test_no_sequence_is_usable_by_an_api_role(catalog):
    # Part of 0026/0027's exposure: nextval() by anyone who can see the sequence.
    found = names(
        catalog,
        """
        select c.relname || ':' || role as name
        from pg_class c join pg_namespace n on n.oid = c.relnamespace, unnest(array['anon', 'authenticated']) role
        where n.nspname = 'public' and c.relkind = 'S'
          and (has_sequence_privilege(role, c.oid, 'usage') or has_sequence_privilege(role, c.oid, 'update'))
        """,
    )
    assert found == set()
