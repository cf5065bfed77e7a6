-- What chapter websites and apps list mentors from. An expired mentor leaves it
-- at midnight in Oslo by the database's clock, whether or not the nightly job
-- has run: the job only reconciles `status` and writes the audit, and is no
-- longer all that stands between an expiry and a breach.

-- "Today" for certifications: the database's clock, in Oslo's calendar. The one
-- definition of the expiry rule's date; a certification is valid through its
-- expiry date, so it is expired when certification_expiry_date < this. Stable,
-- so the planner evaluates it once per scan and can use it as an index bound.

-- Give up rather than queue the app's queries behind a lock (migration safety, .squawk.toml).
set local lock_timeout = '5s';
set local statement_timeout = '60s';

create function public.certification_today()
returns date
language sql
stable
parallel safe
set search_path = ''
as $$
  select (now() at time zone 'Europe/Oslo')::date
$$;

-- The two views read the rule from the function: expired_active_mentors as before,
-- now written against it, and the listing as its complement among active mentors.
create or replace view public.expired_active_mentors
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
  and m.certification_expiry_date < public.certification_today();

-- Columns: what a listing shows (the name) and what it is filtered by (the
-- organisation), and the id to link to a profile. Not user_id (an auth account),
-- not the status or version (always active here), not the expiry date (personal
-- data a listing does not need). security_invoker: readers see what their own row
-- level security on peer_mentors allows.
create view public.listed_peer_mentors
with (security_invoker = true)
as
select
  m.id,
  m.organization_id,
  m.full_name
from public.peer_mentors m
where m.status = 'active'
  and (m.certification_expiry_date is null or m.certification_expiry_date >= public.certification_today());

-- Who reads it: signed-in users (through RLS: a coordinator their organisations'
-- listed mentors, a mentor their own row) and the service role (every listed
-- mentor: a chapter website's server, with the project's secret key). Not anon:
-- mentors' names are personal data, and the publishable key ships in every
-- browser. An organisation that decides to publish names to anyone adds a
-- policy for anon on peer_mentors and grants this view to anon, on purpose.
revoke all on public.listed_peer_mentors from anon, authenticated;
grant select on public.listed_peer_mentors to authenticated, service_role;

-- The compliance check also reports the job's backlog: active mentors the listing
-- already hides, which the job has yet to pause. Not a breach while websites read
-- the listing; the breach reasons stay as they were.
create or replace function public.certification_compliance_status(p_window_hours integer default 26)
returns jsonb
language sql
stable
set search_path = ''
as $$
  select jsonb_build_object(
    'expired_active_count', (select count(*) from public.expired_active_mentors),
    'sample_mentor_ids', coalesce(
      (select jsonb_agg(s.id) from (
         select id from public.expired_active_mentors
         order by certification_expiry_date, id limit 20
       ) s),
      '[]'::jsonb),
    'hidden_active_count',
      (select count(*) from public.peer_mentors where status = 'active')
      - (select count(*) from public.listed_peer_mentors),
    'last_success_at', last_success.finished_at,
    'recent_success', coalesce(last_success.finished_at >= now() - make_interval(hours => p_window_hours), false),
    'checked_at', now()
  )
  from (
    select max(finished_at) as finished_at
    from public.certification_expiry_runs
    where status = 'succeeded' and not dry_run and organization_ids is null
  ) last_success
$$;
