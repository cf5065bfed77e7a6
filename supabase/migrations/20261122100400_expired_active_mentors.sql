-- Mentors who are still active although their certification has expired.
-- Read by the job (what to pause) and by the compliance check (what was missed).

-- A certification is valid through its expiry date in Oslo, whatever the time zone
-- of the server or of the caller, and "today" is the database's, not the caller's.
-- security_invoker: readers see only what their own row level security allows.

-- Give up rather than queue the app's queries behind a lock (migration safety, .squawk.toml).
set local lock_timeout = '5s';
set local statement_timeout = '60s';

create view public.expired_active_mentors
with (security_invoker = true)
as
select
  m.id,
  m.organization_id,
  m.full_name,
  m.status,
  m.status_version,
  m.certification_expiry_date
from public.peer_mentors m
where m.status = 'active'
  and m.certification_expiry_date < (now() at time zone 'Europe/Oslo')::date;

-- Partial, so it holds only the active mentors with a certification; ordered by
-- (date, id) so that the job's keyset pages are index range scans that stop after
-- one page, at a thousand mentors or at a million.
create index if not exists peer_mentors_active_certification_expiry_idx
  on public.peer_mentors (certification_expiry_date, id)
  where status = 'active' and certification_expiry_date is not null;

revoke insert, update, delete, truncate, references, trigger
  on public.expired_active_mentors from anon, authenticated;
