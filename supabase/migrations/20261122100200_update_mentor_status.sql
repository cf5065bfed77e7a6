-- The mentor status state machine. The only way a status changes: it locks the
-- mentor row, checks the caller and the transition, and writes the row and its
-- history in one transaction.

-- Give up rather than queue the app's queries behind a lock (migration safety, .squawk.toml).
set local lock_timeout = '5s';
set local statement_timeout = '60s';

create function public.update_mentor_status(
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
  -- waits here and then sees the status the first one wrote.
  select * into v_mentor from public.peer_mentors where id = p_mentor_id for update;
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
        'status_version', v_mentor.status_version,
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

  insert into public.mentor_status_history (mentor_id, old_status, new_status, actor_id, reason, request_id)
  values (p_mentor_id, v_old_status, p_new_status, p_actor_id, p_reason, p_request_id)
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

-- Functions are executable by PUBLIC, and Supabase grants anon everything new.
revoke execute on function public.update_mentor_status(uuid, text, uuid, text, integer, text)
  from public, anon;
grant execute on function public.update_mentor_status(uuid, text, uuid, text, integer, text)
  to authenticated, service_role;
