-- The public listing read by index again.
--
-- public_listing_for_websites gave the listing's rows from a function with its
-- owner's rights; PostgreSQL cannot look inside such a function, so a website's
-- `organization_id=eq.…` read built the whole listing first and filtered it
-- after (`make bench`, scenario database_scale, caught it). Now the owner's rights
-- come from a view in the `private` schema, which the Data API does not serve:
-- a view is expanded into the query, so the organisation's index serves the read.
-- The API roles may select from it at the SQL level, but reach it only through
-- listed_peer_mentors, which keeps its three columns, runs with the reader's
-- rights (lint 0010) and is a security barrier, so that no filter a caller adds
-- runs before its own.

-- Give up rather than queue the app's queries behind a lock (migration safety, .squawk.toml).
set local lock_timeout = '5s';
set local statement_timeout = '60s';

-- The mentors as the listing needs them, with the owner's rights: no row level
-- security, no grant on peer_mentors needed by the reader.
create view private.mentor_listing as
select m.id, m.organization_id, m.full_name, m.status, m.certification_expiry_date
from public.peer_mentors m;

revoke all on private.mentor_listing from public, anon, authenticated, service_role;
grant select on private.mentor_listing to anon, authenticated, service_role;

create or replace view public.listed_peer_mentors
with (security_invoker = true, security_barrier = true)
as
select l.id, l.organization_id, l.full_name
from private.mentor_listing l
where l.status = 'active'
  and (l.certification_expiry_date is null or l.certification_expiry_date >= public.certification_today());

-- The listing's rule reads today's date with the reader's rights.
grant execute on function public.certification_today() to anon;

drop function private.listed_peer_mentors();
