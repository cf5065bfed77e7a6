-- Who may end a pause, and when.
--
-- Before this migration paused→active was open to anyone who may act on the
-- mentor at all: a mentor ended a coordinator's suspension of their own record,
-- and anyone reactivated a mentor whose certification had expired (which the next
-- night paused again). Now paused→active is allowed only
--   * when the certification is not expired (or not tracked), for every caller,
--     the service role included: P0001, naming the date; the renewal is recorded
--     first (record_certification_renewal, next migration);
--   * to the service role (and a direct connection of the owner) or a coordinator
--     of the mentor's organisation;
--   * to the mentor only when the pause being ended was their own: the latest
--     transition into paused carries the mentor's user id as its actor. Anything
--     else is 42501.
-- Self-pause (active→paused) and leaving (active→inactive) stay open to mentors.
-- Every check reads the row under its lock, so a coordinator's pause racing the
-- mentor's own resume is decided on the state the other call committed.
-- Otherwise as in the run_ledger migration (where authenticated's EXECUTE is the
-- deliberate exception to lint 0029 explained in job_request_ids).

-- Give up rather than queue the app's queries behind a lock (migration safety, .squawk.toml).
set local lock_timeout = '5s';
set local statement_timeout = '60s';

-- The checks both RPCs that change a mentor make of their caller and arguments
-- before they lock anything (record_certification_renewal, next migration, calls it
-- too): which API role calls, that a signed-in user acts as themselves, that the
-- job's request ids stay the job's, and that the free text stays bounded. Returns
-- the caller's role. Run by the definer-rights RPCs, as their owner; nobody else
-- may call it.
create function public.check_mentor_change_caller(
  p_mentor_id uuid,
  p_actor_id uuid,
  p_reason text,
  p_request_id text
) returns text
language plpgsql
stable
set search_path = ''
as $$
declare
  -- SECURITY DEFINER changes current_user but not the `role` setting, which still
  -- names the role PostgREST switched to for this request ('none' without SET ROLE:
  -- a direct connection of a database owner, pg_cron for example).
  v_caller text := current_setting('role');
begin
  if v_caller not in ('service_role', 'authenticated', 'none') then
    raise exception 'role % may not change mentors', v_caller using errcode = '42501';
  end if;
  if v_caller = 'authenticated' and (p_actor_id is null or p_actor_id is distinct from auth.uid()) then
    raise exception 'p_actor_id must be the id of the signed-in user' using errcode = '42501';
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
  -- Bounded so that a caller cannot store megabytes in the compliance record.
  if length(p_reason) > 500 then
    raise exception 'p_reason is % characters long; at most 500 are allowed', length(p_reason)
      using errcode = '22023';
  end if;
  if length(p_request_id) > 200 then
    raise exception 'p_request_id is % characters long; at most 200 are allowed', length(p_request_id)
      using errcode = '22023';
  end if;
  return v_caller;
end
$$;

revoke execute on function public.check_mentor_change_caller(uuid, uuid, text, text) from public, anon, authenticated;

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
  v_caller text;
  v_mentor public.peer_mentors%rowtype;
  v_history public.mentor_status_history%rowtype;
  v_old_status text;
  v_is_coordinator boolean;
  v_pause_actor uuid;
begin
  v_caller := public.check_mentor_change_caller(p_mentor_id, p_actor_id, p_reason, p_request_id);
  if p_new_status is null or p_new_status not in ('active', 'paused', 'inactive') then
    raise exception 'unknown status %: expected active, paused or inactive', coalesce(quote_literal(p_new_status), 'null')
      using errcode = '22023';
  end if;

  -- The row lock serialises every transition of this mentor (and every renewal):
  -- a concurrent call waits here and then sees what the first one wrote.
  -- `no key update`: the key is never changed, so inserts that reference the
  -- mentor (history and audit rows of other transactions) need not wait for it.
  select * into v_mentor from public.peer_mentors where id = p_mentor_id for no key update;
  if not found then
    raise exception 'mentor % not found', p_mentor_id using errcode = 'PT404';
  end if;

  if v_caller = 'authenticated' then
    -- `is not distinct from`: a mentor without a login has a null user_id, and a
    -- null here must mean "no", not "unknown" (which `if not` would let through).
    v_is_coordinator := exists (
      select 1 from public.organization_coordinators c
      where c.organization_id = v_mentor.organization_id and c.user_id = p_actor_id
    );
    if not (v_is_coordinator or v_mentor.user_id is not distinct from p_actor_id) then
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

  if p_new_status = 'active' then
    -- Ending a pause. Who first: a mentor learns nothing from being refused that
    -- their own record does not already show.
    if v_caller = 'authenticated' and not v_is_coordinator then
      -- The transition into paused that this call undoes: the latest one, as the
      -- history ids follow the row lock's order.
      select h.actor_id into v_pause_actor
      from public.mentor_status_history h
      where h.mentor_id = p_mentor_id and h.new_status = 'paused'
      order by h.id desc
      limit 1;
      if v_pause_actor is distinct from p_actor_id then
        raise exception 'mentor % was paused by %; only a coordinator of its organisation may end this pause',
          p_mentor_id, case when v_pause_actor is null then 'the system' else 'a coordinator' end
          using errcode = '42501';
      end if;
    end if;
    if v_mentor.certification_expiry_date < public.certification_today() then
      raise exception 'mentor % cannot be reactivated: the certification expired on %', p_mentor_id,
        to_char(v_mentor.certification_expiry_date, 'YYYY-MM-DD')
        using errcode = 'P0001',
              hint = 'record the renewal first (record_certification_renewal), with p_reactivate to end the pause in the same call';
    end if;
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
