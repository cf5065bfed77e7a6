-- What the compliance check needs, in one request and by the database's clock:
-- how many expired mentors are still active (with a few of their ids), and when
-- the last successful run finished.

-- Give up rather than queue the app's queries behind a lock (migration safety, .squawk.toml).
set local lock_timeout = '5s';
set local statement_timeout = '60s';

create function public.certification_compliance_status(p_window_hours integer default 26)
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
    'last_success_at', last_success.finished_at,
    'recent_success', coalesce(last_success.finished_at >= now() - make_interval(hours => p_window_hours), false),
    'checked_at', now()
  )
  -- Only a full run counts: a dry run paused nobody, and a coordinator's run
  -- covered that coordinator's organisations only.
  from (
    select max(finished_at) as finished_at
    from public.certification_expiry_runs
    where status = 'succeeded' and not dry_run and organization_ids is null
  ) last_success
$$;

revoke execute on function public.certification_compliance_status(integer) from public, anon, authenticated;
grant execute on function public.certification_compliance_status(integer) to service_role;
