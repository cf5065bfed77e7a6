-- Whose certification runs out soon: how coordinators chase a renewal before the
-- night that would pause the mentor, instead of after it.
--
-- Mentors who are active or paused (a paused mentor renewed before the date need
-- not wait for it) whose certification expires today or within the next 30 days
-- in Oslo, by the one definition of "today" (certification_today). days_left is 0
-- on the last valid day. security_invoker: a coordinator sees their organisations,
-- a mentor their own row, through peer_mentors' policy; anon nothing. Readable by
-- signed-in users on purpose: a deliberate exception to lint 0027, as the listing is.

-- Give up rather than queue the app's queries behind a lock (migration safety, .squawk.toml).
set local lock_timeout = '5s';
set local statement_timeout = '60s';

create view public.certifications_expiring_soon
with (security_invoker = true)
as
select
  m.id as mentor_id,
  m.organization_id,
  m.full_name,
  m.status,
  m.certification_expiry_date,
  m.certification_expiry_date - public.certification_today() as days_left
from public.peer_mentors m
where m.status in ('active', 'paused')
  and m.certification_expiry_date >= public.certification_today()
  and m.certification_expiry_date <= public.certification_today() + 30;

-- The window is a range of dates among mentors who can still be listed: a partial
-- index on the date answers it with a range scan at a million mentors (make bench,
-- scenario database_scale), where the job's index covers active mentors only.
create index if not exists peer_mentors_listable_certification_expiry_idx
  on public.peer_mentors (certification_expiry_date)
  where status in ('active', 'paused');

revoke all on public.certifications_expiring_soon from anon, authenticated;
grant select on public.certifications_expiring_soon to authenticated, service_role;
