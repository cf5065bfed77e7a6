-- The compliance check judges a night, not a window of hours.
--
-- It used to ask whether a full run had succeeded in the last 26 hours and count
-- every expired active mentor as a breach. On the nights clocks change, 26 hours
-- after the last success lands more than three hours after the run's time, and
-- mentors whose certification expired at the last midnight read as a breach on
-- every check between midnight and the nightly run, when they are the run's backlog.
--
-- Now the night being judged is today's once its run is due (p_run_at in Oslo plus
-- p_grace_minutes), and yesterday's before that. The night is kept when a full run
-- has succeeded since the midnight that began it (an operator's run after midnight
-- counts), and the mentors overdue are those still active whose certification
-- expired before that night: the run of that night should have paused them. Those
-- who expired at the last midnight before the run is due are the backlog
-- (listed_peer_mentors already hides them), never a breach on their own.
-- The function's NIGHTLY_RUN_AT and COMPLIANCE_GRACE_MINUTES pass the two
-- parameters, so the schedule is the deployment's (cloudbuild.yaml).

-- Give up rather than queue the app's queries behind a lock (migration safety, .squawk.toml).
set local lock_timeout = '5s';
set local statement_timeout = '60s';

drop function public.certification_compliance_status(integer);

create function public.certification_compliance_status(
  p_run_at time default '01:15', p_grace_minutes integer default 105
) returns jsonb language sql stable set search_path = '' as $$
  with night as (
    select case
      when (now() at time zone 'Europe/Oslo')
           >= public.certification_today() + p_run_at + make_interval(mins => p_grace_minutes)
      then public.certification_today()
      else public.certification_today() - 1
    end as night
  ),
  last_success as (
    select max(finished_at) as finished_at
    from public.certification_expiry_runs
    where status = 'succeeded' and not dry_run and organization_ids is null
  ),
  -- Active mentors whom no listing shows: expired and not yet paused.
  listing as (
    select (select count(*) from public.peer_mentors where status = 'active') as active,
      (select count(*) from public.listed_peer_mentors) as listed
  )
  select jsonb_build_object(
    'night', n.night,
    'expired_active_count', (select count(*) from public.expired_active_mentors),
    'overdue_count',
      (select count(*) from public.expired_active_mentors e where e.certification_expiry_date < n.night),
    'sample_mentor_ids', coalesce(
      (select jsonb_agg(s.id) from (
         select e.id from public.expired_active_mentors e
         where e.certification_expiry_date < n.night
         order by e.certification_expiry_date, e.id limit 20
       ) s),
      '[]'::jsonb),
    'hidden_active_count', listing.active - listing.listed,
    'last_success_at', l.finished_at,
    'recent_success', coalesce(l.finished_at >= (n.night::timestamp at time zone 'Europe/Oslo'), false),
    'checked_at', now()
  )
  from night n, last_success l, listing
$$;

revoke execute on function public.certification_compliance_status(time, integer) from public, anon, authenticated;
grant execute on function public.certification_compliance_status(time, integer) to service_role;
