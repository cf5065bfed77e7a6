-- The run ledger, strict; and a replay that answers what it replays.
--
-- certification_expiry_runs: counts are never negative and the outcomes of a run
-- never exceed its candidates. finish_certification_expiry_run refuses a null
-- status or count (22023) and refuses to rewrite a finished run (PT409), unless
-- the call is the same outcome again (a retry after a lost answer) or the run was
-- closed by its lease running out (then its own report is the better record).
-- Starting with the id of a finished run is its own error (22023), not "another
-- run holds the lease".
--
-- mentor_status_history.status_version: the version a transition produced, so a
-- replay returns it rather than the mentor's version now; and the row lock is
-- `for no key update`, which is all the function needs.
-- update_mentor_status is otherwise as in the job_request_ids migration, where
-- executable by authenticated is explained (lint 0029's deliberate exception).
--
-- The counts check is added NOT VALID: new and updated rows are checked at once,
-- and the rows already there are put right and validated in a later migration
-- (validate_constraints), outside this one's lock.

-- Give up rather than queue the app's queries behind a lock (migration safety, .squawk.toml).
set local lock_timeout = '5s';
set local statement_timeout = '60s';

alter table public.certification_expiry_runs
  add column lease_expired boolean not null default false,
  add constraint certification_expiry_runs_counts_check check (
    candidate_count >= 0 and paused_count >= 0 and skipped_count >= 0 and error_count >= 0
    and paused_count + skipped_count + error_count <= candidate_count
  ) not valid;

alter table public.mentor_status_history add column status_version integer;

create or replace function public.update_mentor_status(
  p_mentor_id uuid,
  p_new_status text,
  p_actor_id uuid default null,
  p_reason text default null,
  p_expected_version integer default null,
  p_request_id text default null
) returns jsonb
language plpgsql
security definer
-- Empty: every name below is schema-qualified, so nothing on the caller's path
-- can shadow a table or function this definer-rights code uses.
set search_path = ''
as $$
declare
  -- SECURITY DEFINER changes current_user but not the `role` setting, which still
  -- names the role PostgREST switched to for this request ('none' without SET ROLE:
  -- a direct connection of a database owner, pg_cron for example).
  v_caller text := current_setting('role');
  v_mentor public.peer_mentors%rowtype;
  v_history public.mentor_status_history%rowtype;
  v_old_status text;
  v_may_act boolean;
begin
  if v_caller not in ('service_role', 'authenticated', 'none') then
    raise exception 'role % may not change mentor statuses', v_caller
      using errcode = '42501';
  end if;
  if v_caller = 'authenticated' and (p_actor_id is null or p_actor_id is distinct from auth.uid()) then
    raise exception 'p_actor_id must be the id of the signed-in user'
      using errcode = '42501';
  end if;
  -- The job's request ids are what the audit repair credits to a run, and a
  -- replay under one hands back the job's transition: nobody else may use them.
  if p_request_id like 'certification\_expiry:%' and v_caller not in ('service_role', 'none') then
    raise exception 'request ids starting with certification_expiry: belong to the certification expiry job'
      using errcode = '42501';
  end if;

  if p_mentor_id is null then
    raise exception 'p_mentor_id must not be null' using errcode = '22023';
  end if;
  if p_new_status is null or p_new_status not in ('active', 'paused', 'inactive') then
    raise exception 'unknown status %: expected active, paused or inactive', coalesce(quote_literal(p_new_status), 'null')
      using errcode = '22023';
  end if;
  -- Bounded so that a caller cannot store megabytes in the compliance record.
  if length(p_reason) > 500 then
    raise exception 'p_reason is % characters long; at most 500 are allowed', length(p_reason)
      using errcode = '22023';
  end if;
  if length(p_request_id) > 200 then
    raise exception 'p_request_id is % characters long; at most 200 are allowed', length(p_request_id)
      using errcode = '22023';
  end if;

  -- The row lock serialises every transition of this mentor: a concurrent call
  -- waits here and then sees the status the first one wrote. `no key update`:
  -- the key is never changed, so inserts that reference the mentor (history and
  -- audit rows of other transactions) need not wait for it.
  select * into v_mentor from public.peer_mentors where id = p_mentor_id for no key update;
  if not found then
    raise exception 'mentor % not found', p_mentor_id using errcode = 'PT404';
  end if;

  if v_caller = 'authenticated' then
    -- `is not distinct from`: a mentor without a login has a null user_id, and a
    -- null here must mean "no", not "unknown" (which `if not` would let through).
    v_may_act := v_mentor.user_id is not distinct from p_actor_id or exists (
      select 1 from public.organization_coordinators c
      where c.organization_id = v_mentor.organization_id and c.user_id = p_actor_id
    );
    if not v_may_act then
      raise exception 'user % is neither mentor % nor a coordinator of its organisation', p_actor_id, p_mentor_id
        using errcode = '42501';
    end if;
  end if;

  -- A retry whose first attempt committed but whose answer was lost: hand back the
  -- transition it made instead of failing on the status that transition set.
  -- Checked before the version, which that transition has already bumped.
  if p_request_id is not null then
    select * into v_history from public.mentor_status_history
    where mentor_id = p_mentor_id and request_id = p_request_id;
    if found then
      if v_history.new_status <> p_new_status then
        raise exception 'request id % already moved mentor % to %, not %',
          p_request_id, p_mentor_id, v_history.new_status, p_new_status
          using errcode = '22023';
      end if;
      return jsonb_build_object(
        'mentor_id', v_history.mentor_id,
        'old_status', v_history.old_status,
        'new_status', v_history.new_status,
        -- The version that transition produced, not the mentor's version now
        -- (rows written before it was recorded fall back to the current one).
        'status_version', coalesce(v_history.status_version, v_mentor.status_version),
        'history_id', v_history.id,
        'changed_at', v_history.changed_at,
        'replayed', true
      );
    end if;
  end if;

  if p_expected_version is not null and p_expected_version <> v_mentor.status_version then
    raise exception 'mentor % is at status_version %, not the expected %',
      p_mentor_id, v_mentor.status_version, p_expected_version
      using errcode = 'PT409';
  end if;

  if (v_mentor.status, p_new_status) not in (
    ('active', 'paused'), ('paused', 'active'), ('active', 'inactive')
  ) then
    raise exception 'mentor % cannot go from % to %', p_mentor_id, v_mentor.status, p_new_status
      using errcode = 'P0001',
            hint = 'allowed: active to paused, paused to active, active to inactive';
  end if;

  v_old_status := v_mentor.status;
  update public.peer_mentors
  set status = p_new_status,
      status_version = status_version + 1,
      status_changed_at = now()
  where id = p_mentor_id
  returning * into v_mentor;

  insert into public.mentor_status_history
    (mentor_id, old_status, new_status, actor_id, reason, request_id, status_version)
  values (p_mentor_id, v_old_status, p_new_status, p_actor_id, p_reason, p_request_id, v_mentor.status_version)
  returning * into v_history;

  return jsonb_build_object(
    'mentor_id', v_mentor.id,
    'old_status', v_old_status,
    'new_status', v_mentor.status,
    'status_version', v_mentor.status_version,
    'history_id', v_history.id,
    'changed_at', v_history.changed_at,
    'replayed', false
  );
end
$$;



create or replace function public.start_certification_expiry_run(
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

  -- Two invocations arriving together must not both find the lease free.
  perform pg_advisory_xact_lock(hashtext('public.certification_expiry_runs lease'));

  -- A run whose lease ran out was killed or crashed before it could finish.
  update public.certification_expiry_runs
  set status = 'failed', finished_at = now(), lease_expired = true
  where status = 'running' and lease_expires_at <= now();

  select * into v_holder from public.certification_expiry_runs where status = 'running' limit 1;
  -- The same run asking again: its first call committed but the answer was lost.
  if found and v_holder.id = p_run_id then
    return jsonb_build_object(
      'job_run_id', v_holder.id, 'started_at', v_holder.started_at, 'lease_expires_at', v_holder.lease_expires_at
    );
  end if;
  if found then
    raise exception 'certification expiry run % holds the lease until %', v_holder.id, v_holder.lease_expires_at
      using errcode = 'PT409', hint = 'wait for that run to finish, or for its lease to expire';
  end if;
  if exists (select 1 from public.certification_expiry_runs where id = p_run_id) then
    raise exception 'run id % was already used by a run that has finished', p_run_id
      using errcode = '22023', hint = 'start a new run with a new id';
  end if;

  begin
    insert into public.certification_expiry_runs
      (id, trigger, dry_run, actor_id, organization_ids, lease_expires_at)
    values
      (p_run_id, p_trigger, p_dry_run, p_actor_id, p_organization_ids, now() + make_interval(secs => p_lease_seconds))
    returning * into v_run;
  exception when unique_violation then
    -- The one-running-run index caught a second running run that the lock did not.
    raise exception 'another certification expiry run holds the lease' using errcode = 'PT409';
  end;

  return jsonb_build_object('job_run_id', v_run.id, 'started_at', v_run.started_at, 'lease_expires_at', v_run.lease_expires_at);
end
$$;

create or replace function public.finish_certification_expiry_run(
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
declare
  v_run public.certification_expiry_runs%rowtype;
begin
  if p_status is null or p_status not in ('succeeded', 'partial', 'failed') then
    raise exception 'a run finishes succeeded, partial or failed, not %', coalesce(p_status, 'null')
      using errcode = '22023';
  end if;
  if p_run_id is null or p_candidate_count is null or p_paused_count is null
     or p_skipped_count is null or p_error_count is null then
    raise exception 'the run id and every count are required' using errcode = '22023';
  end if;
  if least(p_candidate_count, p_paused_count, p_skipped_count, p_error_count) < 0 then
    raise exception 'counts are never negative' using errcode = '22023';
  end if;

  select * into v_run from public.certification_expiry_runs where id = p_run_id for update;
  if not found then
    raise exception 'certification expiry run % not found', p_run_id using errcode = 'PT404';
  end if;
  if v_run.status <> 'running' and not v_run.lease_expired then
    if (v_run.status, v_run.candidate_count, v_run.paused_count, v_run.skipped_count, v_run.error_count)
       = (p_status, p_candidate_count, p_paused_count, p_skipped_count, p_error_count) then
      return;  -- the same outcome again: a retry whose first answer was lost
    end if;
    raise exception 'certification expiry run % already finished %', p_run_id, v_run.status
      using errcode = 'PT409';
  end if;

  update public.certification_expiry_runs
  set status = p_status,
      finished_at = now(),
      lease_expired = false,
      candidate_count = p_candidate_count,
      paused_count = p_paused_count,
      skipped_count = p_skipped_count,
      error_count = p_error_count
  where id = p_run_id;
end
$$;
