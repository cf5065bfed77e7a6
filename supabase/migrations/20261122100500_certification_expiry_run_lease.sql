-- The run lease: at most one certification expiry run works at a time. Cloud
-- Scheduler delivers at least once and retries while a slow attempt still runs,
-- and an operator or coordinator may start a run by hand at any moment.

-- Give up rather than queue the app's queries behind a lock (migration safety, .squawk.toml).
set local lock_timeout = '5s';
set local statement_timeout = '60s';

create function public.start_certification_expiry_run(
  p_run_id uuid,
  p_trigger text,
  p_dry_run boolean,
  p_lease_seconds integer,
  p_actor_id uuid default null,
  p_organization_ids uuid[] default null
) returns jsonb
language plpgsql
set search_path = ''
as $$
declare
  v_holder public.certification_expiry_runs%rowtype;
  v_run public.certification_expiry_runs%rowtype;
begin
  if p_lease_seconds is null or p_lease_seconds <= 0 then
    raise exception 'p_lease_seconds must be positive' using errcode = '22023';
  end if;

  -- Two invocations arriving together must not both find the lease free: the
  -- check and the insert below happen under one lock, released at commit.
  perform pg_advisory_xact_lock(hashtext('public.certification_expiry_runs lease'));

  -- A run whose lease ran out was killed or crashed before it could finish.
  -- Marking it failed keeps "running" meaning "working right now".
  update public.certification_expiry_runs
  set status = 'failed', finished_at = now()
  where status = 'running' and lease_expires_at <= now();

  select * into v_holder from public.certification_expiry_runs where status = 'running' limit 1;
  -- The same run asking again: its first call committed but the answer was lost.
  -- Idempotent on the run id, so the job can retry this call like any other.
  if found and v_holder.id = p_run_id then
    return jsonb_build_object(
      'job_run_id', v_holder.id, 'started_at', v_holder.started_at, 'lease_expires_at', v_holder.lease_expires_at
    );
  end if;
  if found then
    raise exception 'certification expiry run % holds the lease until %', v_holder.id, v_holder.lease_expires_at
      using errcode = 'PT409', hint = 'wait for that run to finish, or for its lease to expire';
  end if;

  begin
    insert into public.certification_expiry_runs
      (id, trigger, dry_run, actor_id, organization_ids, lease_expires_at)
    values
      (p_run_id, p_trigger, p_dry_run, p_actor_id, p_organization_ids, now() + make_interval(secs => p_lease_seconds))
    returning * into v_run;
  exception when unique_violation then
    -- The index below caught a second running run that the lock did not.
    raise exception 'another certification expiry run holds the lease' using errcode = 'PT409';
  end;

  return jsonb_build_object('job_run_id', v_run.id, 'started_at', v_run.started_at, 'lease_expires_at', v_run.lease_expires_at);
end
$$;

-- The lease's second guard, independent of the function's lock: the database
-- itself refuses a second run in status running.
create unique index if not exists certification_expiry_runs_one_running_idx
  on public.certification_expiry_runs ((true))
  where status = 'running';

create function public.finish_certification_expiry_run(
  p_run_id uuid,
  p_status text,
  p_candidate_count integer,
  p_paused_count integer,
  p_skipped_count integer,
  p_error_count integer
) returns void
language plpgsql
set search_path = ''
as $$
begin
  if p_status not in ('succeeded', 'partial', 'failed') then
    raise exception 'a run finishes succeeded, partial or failed, not %', coalesce(p_status, 'null')
      using errcode = '22023';
  end if;
  -- Also when a newer run already marked this one failed for an expired lease:
  -- what the run itself reports is the better record.
  update public.certification_expiry_runs
  set status = p_status,
      finished_at = now(),
      candidate_count = p_candidate_count,
      paused_count = p_paused_count,
      skipped_count = p_skipped_count,
      error_count = p_error_count
  where id = p_run_id;
  if not found then
    raise exception 'certification expiry run % not found', p_run_id using errcode = 'PT404';
  end if;
end
$$;

-- Security invoker, and only the job's role may call them: the run tables are
-- closed to anon and authenticated anyway, but the functions should not even be
-- offered to them.
revoke execute on function public.start_certification_expiry_run(uuid, text, boolean, integer, uuid, uuid[])
  from public, anon, authenticated;
revoke execute on function public.finish_certification_expiry_run(uuid, text, integer, integer, integer, integer)
  from public, anon, authenticated;
grant execute on function public.start_certification_expiry_run(uuid, text, boolean, integer, uuid, uuid[])
  to service_role;
grant execute on function public.finish_certification_expiry_run(uuid, text, integer, integer, integer, integer)
  to service_role;
