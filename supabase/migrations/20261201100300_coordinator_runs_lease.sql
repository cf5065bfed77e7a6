-- Coordinators' runs never keep the nightly run out.
--
-- The lease was one for the whole project, and any coordinator could start runs
-- (dry runs included) back to back: eight such loops held it 85% of the time and
-- Cloud Scheduler's full run got 409 on most attempts. Now:
--   * a full run (organization_ids null: the scheduler or an operator) is refused
--     only by another full run that works;
--   * a coordinator's run is refused (PT409) while any run covering one of its
--     organisations works: a full run, or a coordinator's run with an overlapping set;
--   * a coordinator's run is rate-limited per organisation set and kind (dry or
--     real): another one started less than p_coordinator_interval_seconds ago is
--     PT429, with the seconds to wait in the error's detail (the function's
--     Retry-After). A dry run can still be followed at once by the real one.
-- A full run and a coordinator's run may overlap on a mentor: update_mentor_status
-- locks the row and checks the version, so one pauses and the other skips.
-- Neither refusal names the run that holds the lease or a time (beyond the wait),
-- so a caller learns nothing that helps time a loop. Decided here, under one lock,
-- so that every instance of the function agrees.
--
-- The signature gains p_coordinator_interval_seconds, which the function's
-- COORDINATOR_RUN_INTERVAL_SECONDS sets: the old function is dropped, so that a
-- call with the old arguments cannot reach two overloads.

-- Give up rather than queue the app's queries behind a lock (migration safety, .squawk.toml).
set local lock_timeout = '5s';
set local statement_timeout = '60s';

drop function public.start_certification_expiry_run(uuid, text, boolean, integer, uuid, uuid[]);

-- The one-running-run guard, for full runs only: coordinators' runs may work
-- beside a full run and beside each other when their organisations are disjoint.
drop index public.certification_expiry_runs_one_running_idx;
create unique index if not exists certification_expiry_runs_one_running_full_run_idx
  on public.certification_expiry_runs ((true))
  where status = 'running' and organization_ids is null;

-- The rate limit reads the recent coordinators' runs, however many old runs exist.
create index if not exists certification_expiry_runs_coordinator_started_at_idx
  on public.certification_expiry_runs (started_at)
  where organization_ids is not null;

create function public.start_certification_expiry_run(
  p_run_id uuid, p_trigger text, p_dry_run boolean, p_lease_seconds integer, p_actor_id uuid default null,
  p_organization_ids uuid[] default null, p_coordinator_interval_seconds integer default 300
) returns jsonb language plpgsql set search_path = '' as $$
declare
  -- One spelling of an organisation set, so that "the same organisations" is equality.
  v_organizations uuid[] := (select array_agg(distinct o order by o) from unnest(p_organization_ids) o);
  v_holder public.certification_expiry_runs%rowtype;
  v_run public.certification_expiry_runs%rowtype;
  v_last_started timestamptz;
begin
  if p_lease_seconds is null or p_lease_seconds <= 0 then
    raise exception 'p_lease_seconds must be positive' using errcode = '22023';
  end if;
  if p_coordinator_interval_seconds is null or p_coordinator_interval_seconds < 0 then
    raise exception 'p_coordinator_interval_seconds must be zero or more' using errcode = '22023';
  end if;
  if p_organization_ids is not null and v_organizations is null then
    raise exception 'p_organization_ids must name at least one organisation, or be null for the whole project'
      using errcode = '22023';
  end if;

  -- Two invocations arriving together must not both find the lease free.
  perform pg_advisory_xact_lock(hashtext('public.certification_expiry_runs lease'));

  -- A run whose lease ran out was killed or crashed before it could finish.
  update public.certification_expiry_runs
  set status = 'failed', finished_at = now(), lease_expired = true
  where status = 'running' and lease_expires_at <= now();

  -- The same run asking again: its first call committed but the answer was lost.
  select * into v_holder from public.certification_expiry_runs where id = p_run_id and status = 'running';
  if found then
    return jsonb_build_object(
      'job_run_id', v_holder.id, 'started_at', v_holder.started_at, 'lease_expires_at', v_holder.lease_expires_at
    );
  end if;

  if v_organizations is null then
    perform 1 from public.certification_expiry_runs where status = 'running' and organization_ids is null;
  else
    perform 1 from public.certification_expiry_runs
    where status = 'running' and (organization_ids is null or organization_ids && v_organizations);
  end if;
  if found then
    raise exception 'another certification expiry run covering these organisations is working'
      using errcode = 'PT409', hint = 'try again when it has finished';
  end if;

  if v_organizations is not null then
    select max(started_at) into v_last_started from public.certification_expiry_runs
    where organization_ids is not null
      and started_at > now() - make_interval(secs => p_coordinator_interval_seconds)
      and organization_ids = v_organizations
      and dry_run = p_dry_run;
    if v_last_started is not null then
      raise exception 'a % run for these organisations started less than % seconds ago',
        case when p_dry_run then 'dry' else 'real' end, p_coordinator_interval_seconds
        using errcode = 'PT429',
              -- The seconds to wait, whole and at least one: the function's Retry-After.
              detail = greatest(1, ceil(extract(epoch from
                v_last_started + make_interval(secs => p_coordinator_interval_seconds) - now())))::integer::text;
    end if;
  end if;

  -- `on conflict do nothing`: the primary key and the one-running-full-run index
  -- are the lock's second guard; which one refused the row says what went wrong.
  insert into public.certification_expiry_runs
    (id, trigger, dry_run, actor_id, organization_ids, lease_expires_at)
  values
    (p_run_id, p_trigger, p_dry_run, p_actor_id, v_organizations, now() + make_interval(secs => p_lease_seconds))
  on conflict do nothing
  returning * into v_run;
  if not found then
    if exists (select 1 from public.certification_expiry_runs where id = p_run_id) then
      raise exception 'run id % was already used by a run that has finished', p_run_id
        using errcode = '22023', hint = 'start a new run with a new id';
    end if;
    raise exception 'another certification expiry run covering these organisations is working'
      using errcode = 'PT409';
  end if;

  return jsonb_build_object('job_run_id', v_run.id, 'started_at', v_run.started_at, 'lease_expires_at', v_run.lease_expires_at);
end
$$;

revoke execute on function public.start_certification_expiry_run(uuid, text, boolean, integer, uuid, uuid[], integer)
  from public, anon, authenticated;
grant execute on function public.start_certification_expiry_run(uuid, text, boolean, integer, uuid, uuid[], integer)
  to service_role;
