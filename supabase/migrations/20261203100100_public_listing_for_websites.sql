-- Chapter websites list mentors with the publishable key, never the secret key.
--
-- Until now a website's server read listed_peer_mentors with the secret key, which
-- also let it pause, renew and read everything. The listing is public by nature
-- (it is what the website shows), so anon may now read it, and only it.
--
-- A security_invoker view over peer_mentors cannot do that: the reader needs
-- SELECT on every column the view filters by, so anon could read the status and
-- expiry dates of listed mentors straight from peer_mentors. Instead the rows come
-- from a function that runs with its owner's rights and returns the listing's three
-- columns only, in the `private` schema, which the Data API does not expose; the
-- view stays security_invoker (lint 0010) and keeps its name and columns.
-- Signed-in users now see every listed mentor too, as anyone can.

-- Give up rather than queue the app's queries behind a lock (migration safety, .squawk.toml).
set local lock_timeout = '5s';
set local statement_timeout = '60s';

create schema if not exists private;
revoke all on schema private from public;
grant usage on schema private to anon, authenticated, service_role;

create function private.listed_peer_mentors()
returns table (id uuid, organization_id uuid, full_name text)
language sql
stable
security definer
set search_path = ''
as $$
  select m.id, m.organization_id, m.full_name
  from public.peer_mentors m
  where m.status = 'active'
    and (m.certification_expiry_date is null or m.certification_expiry_date >= public.certification_today())
$$;

revoke all on function private.listed_peer_mentors() from public, anon, authenticated, service_role;
grant execute on function private.listed_peer_mentors() to anon, authenticated, service_role;

create or replace view public.listed_peer_mentors
with (security_invoker = true)
as
select l.id, l.organization_id, l.full_name
from private.listed_peer_mentors() l;

revoke all on public.listed_peer_mentors from anon, authenticated, service_role;
grant select on public.listed_peer_mentors to anon, authenticated, service_role;
