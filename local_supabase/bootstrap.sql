-- What a hosted Supabase project (or `supabase start`) already has before the first
-- migration runs, recreated for a plain PostgreSQL. The tests and the local stack
-- apply it; a real Supabase project never sees this file.
-- Idempotent, so it can run against a cluster that already has it.

do $$
begin
  -- Supabase's API roles: PostgREST logs in as `authenticator` and switches to one
  -- of the other three per request, after the JWT's `role` claim.
  if not exists (select 1 from pg_roles where rolname = 'anon') then
    create role anon nologin;
  end if;
  if not exists (select 1 from pg_roles where rolname = 'authenticated') then
    create role authenticated nologin;
  end if;
  if not exists (select 1 from pg_roles where rolname = 'service_role') then
    create role service_role nologin bypassrls;
  end if;
  if not exists (select 1 from pg_roles where rolname = 'authenticator') then
    create role authenticator login noinherit password 'postgres';
  end if;
end
$$;

grant anon, authenticated, service_role to authenticator;

-- The hosted roles' settings (supabase/postgres's role migrations): the API roles
-- inherit, and statements through the API give up after a few seconds. PostgREST
-- applies the impersonated role's settings to each request, so a slow read as anon
-- ends at 3 s, and a row lock held too long ends a request with 55P03.
alter role anon inherit;
alter role authenticated inherit;
alter role service_role inherit;
alter role anon set statement_timeout = '3s';
alter role authenticated set statement_timeout = '8s';
alter role authenticator set statement_timeout = '8s';
alter role authenticator set lock_timeout = '8s';

-- Supabase Auth's schema, reduced to what migrations and policies refer to.
create schema if not exists auth;
grant usage on schema auth to anon, authenticated, service_role;

create table if not exists auth.users (
  id uuid primary key default gen_random_uuid(),
  email text unique,
  created_at timestamptz not null default now()
);
grant select on auth.users to service_role;

-- The same three helpers Supabase ships: they read the claims PostgREST puts in
-- `request.jwt.claims`, falling back to the older per-claim settings.
create or replace function auth.jwt() returns jsonb
language sql stable
as $$
  select coalesce(
    nullif(current_setting('request.jwt.claim', true), ''),
    nullif(current_setting('request.jwt.claims', true), '')
  )::jsonb
$$;

create or replace function auth.uid() returns uuid
language sql stable
as $$
  select coalesce(
    nullif(current_setting('request.jwt.claim.sub', true), ''),
    (nullif(current_setting('request.jwt.claims', true), '')::jsonb ->> 'sub')
  )::uuid
$$;

create or replace function auth.role() returns text
language sql stable
as $$
  select coalesce(
    nullif(current_setting('request.jwt.claim.role', true), ''),
    (nullif(current_setting('request.jwt.claims', true), '')::jsonb ->> 'role')
  )::text
$$;

grant execute on function auth.jwt(), auth.uid(), auth.role() to anon, authenticated, service_role;

-- A project created today (Supabase's changelog, 2026-04-28, in force for every
-- project since 2026-10-30) grants the API roles nothing on new objects in
-- `public`: only the schema's usage. Every right the product needs is granted by
-- its migrations, explicitly; tests/database/test_privileges.py also runs them
-- over the older defaults, which granted everything.
grant usage on schema public to anon, authenticated, service_role;

-- Supabase keeps extensions out of `public` (lint 0014), in a schema of their own
-- on every role's search path; pgTAP lives there when `supabase test db` runs.
create schema if not exists extensions;
grant usage on schema extensions to anon, authenticated, service_role;
alter role postgres set search_path = "$user", public, extensions;
