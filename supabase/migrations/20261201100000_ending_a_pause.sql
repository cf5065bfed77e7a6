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
--
-- update_mentor_status is rebuilt here from one small function per rule, each
-- named for what it checks or does, so that a later migration that changes a
-- rule restates that function alone; record_certification_renewal (next
-- migration) shares those that are not about statuses. The helpers run with the
-- rights of the definer-rights RPC that calls them; nobody else may call them, not
-- even the service role, which Supabase's default privileges grant every new
-- function (so no caller skips a check by calling the step after it).

-- Give up rather than queue the app's queries behind a lock (migration safety, .squawk.toml).
set local lock_timeout = '5s';
set local statement_timeout = '60s';

-- The checks both RPCs that change a mentor make of their caller and arguments
-- before they lock anything (record_certification_renewal, next migration, calls it
-- too): which API role calls, that a signed-in user acts as themselves, that the
-- job's request ids stay the job's, and that the free text stays bounded. Returns
-- the caller's role.
create function public.check_mentor_change_caller(p_mentor_id uuid, p_actor_id uuid, p_reason text, p_request_id text)
returns text language plpgsql stable set search_path = '' as $$
declare
  -- SECURITY DEFINER changes current_user but not the `role` setting, which still
  -- names the role PostgREST switched to for this request ('none' without SET ROLE:
  -- a direct connection of a database owner, pg_cron for example).
  v_caller text := current_setting('role');
begin
  -- One refusal at a time, the caller's identity before their arguments.
  if v_caller not in ('service_role', 'authenticated', 'none') then
    raise exception 'role % may not change mentors', v_caller using errcode = '42501';
  elsif v_caller = 'authenticated' and not coalesce(p_actor_id = auth.uid(), false) then
    raise exception 'p_actor_id must be the id of the signed-in user' using errcode = '42501';
  -- The job's request ids are what the audit repair credits to a run, and a
  -- replay under one hands back the job's transition: nobody else may use them.
  elsif v_caller = 'authenticated' and starts_with(p_request_id, 'certification_expiry:') then
    raise exception 'request ids starting with certification_expiry: belong to the certification expiry job'
      using errcode = '42501';
  elsif p_mentor_id is null then
    raise exception 'p_mentor_id must not be null' using errcode = '22023';
  -- Bounded so that a caller cannot store megabytes in the compliance record.
  elsif length(p_reason) > 500 then
    raise exception 'p_reason is % characters long; at most 500 are allowed', length(p_reason) using errcode = '22023';
  elsif length(p_request_id) > 200 then
    raise exception 'p_request_id is % characters long; at most 200 are allowed', length(p_request_id)
      using errcode = '22023';
  end if;
  return v_caller;
end
$$;

-- The mentor, locked. The row lock serialises every transition of this mentor
-- (and every renewal): a concurrent call waits here and then sees what the first
-- one wrote. `no key update`: the key is never changed, so inserts that reference
-- the mentor (history and audit rows of other transactions) need not wait for it.
create function public.lock_mentor_for_change(p_mentor_id uuid)
returns public.peer_mentors language plpgsql set search_path = '' as $$
declare
  v_mentor public.peer_mentors%rowtype;
begin
  select * into v_mentor from public.peer_mentors where id = p_mentor_id for no key update;
  if not found then
    raise exception 'mentor % not found', p_mentor_id using errcode = 'PT404';
  end if;
  return v_mentor;
end
$$;

-- Whether the user coordinates the organisation: false, never null, for a user
-- without a row (the system's null actor included).
create function public.is_organization_coordinator(p_organization_id uuid, p_user_id uuid)
returns boolean language sql stable set search_path = '' as $$
  select exists (
    select 1 from public.organization_coordinators c
    where c.organization_id = p_organization_id and c.user_id = p_user_id
  )
$$;

-- A retry whose first attempt committed but whose answer was lost is answered
-- with what that attempt did; the same request id with other arguments is the
-- client's mistake, never a second change.
create function public.check_replay_matches(
  p_request_id text, p_mentor_id uuid, p_done text, p_recorded text, p_asked text
) returns void language plpgsql set search_path = '' as $$
begin
  if p_recorded is distinct from p_asked then
    raise exception 'request id % already % mentor % to %, not %', p_request_id, p_done, p_mentor_id, p_recorded, p_asked
      using errcode = '22023';
  end if;
end
$$;

-- What update_mentor_status answers, for a new transition and a replay alike:
-- the version that transition produced, not the mentor's version now (history
-- rows written before it was recorded fall back to the current one).
create function public.mentor_status_change_result(
  p_history public.mentor_status_history, p_current_version integer, p_replayed boolean
) returns jsonb language sql immutable set search_path = '' as $$
  select to_jsonb(answer) from (
    select (p_history).mentor_id, (p_history).old_status, (p_history).new_status,
      coalesce((p_history).status_version, p_current_version) as status_version,
      (p_history).id as history_id, (p_history).changed_at, p_replayed as replayed
  ) answer
$$;

-- May this caller act on this mentor at all: the service role (and a direct
-- connection of the owner) on anyone; a signed-in user on their own record or
-- on the mentors of an organisation they coordinate. Returns whether a signed-in
-- actor coordinates the mentor's organisation (false for the others, whom no
-- later rule asks: the nightly job's pauses read no coordinators).
create function public.check_may_act_on_mentor(p_caller text, p_mentor public.peer_mentors, p_actor_id uuid)
returns boolean language plpgsql stable set search_path = '' as $$
declare
  v_is_coordinator boolean;
begin
  if p_caller <> 'authenticated' then
    return false;
  end if;
  v_is_coordinator := public.is_organization_coordinator(p_mentor.organization_id, p_actor_id);
  -- `is not distinct from`: a mentor without a login has a null user_id, and a
  -- null here must mean "no", not "unknown" (which `not` would let through).
  if not (v_is_coordinator or p_mentor.user_id is not distinct from p_actor_id) then
    raise exception 'user % is neither mentor % nor a coordinator of its organisation', p_actor_id, p_mentor.id
      using errcode = '42501';
  end if;
  return v_is_coordinator;
end
$$;

-- The move itself: from the version the caller read, by the state machine
-- (active→paused, paused→active, active→inactive, nothing else). A null
-- expected version checks nothing.
create function public.check_mentor_transition(
  p_mentor public.peer_mentors, p_new_status text, p_expected_version integer
) returns void language plpgsql set search_path = '' as $$
begin
  if p_expected_version <> p_mentor.status_version then
    raise exception 'mentor % is at status_version %, not the expected %', p_mentor.id, p_mentor.status_version,
      p_expected_version using errcode = 'PT409';
  end if;
  if (p_mentor.status, p_new_status) not in (values ('active', 'paused'), ('paused', 'active'), ('active', 'inactive')) then
    raise exception 'mentor % cannot go from % to %', p_mentor.id, p_mentor.status, p_new_status
      using errcode = 'P0001', hint = 'allowed: active to paused, paused to active, active to inactive';
  end if;
end
$$;

-- Ending a pause (the rules at the top). Who first: a mentor learns nothing from
-- being refused that their own record does not already show.
create function public.check_may_end_pause(
  p_caller text, p_is_coordinator boolean, p_mentor public.peer_mentors, p_actor_id uuid
) returns void language plpgsql stable set search_path = '' as $$
declare
  v_pause_actor uuid;
begin
  if p_caller = 'authenticated' and not p_is_coordinator then
    -- The transition into paused that this call undoes: the latest one, as the
    -- history ids follow the row lock's order.
    select h.actor_id into v_pause_actor
    from public.mentor_status_history h
    where h.mentor_id = p_mentor.id and h.new_status = 'paused'
    order by h.id desc
    limit 1;
    if v_pause_actor is distinct from p_actor_id then
      raise exception 'mentor % was paused by %; only a coordinator of its organisation may end this pause',
        p_mentor.id, case when v_pause_actor is null then 'the system' else 'a coordinator' end
        using errcode = '42501';
    end if;
  end if;
  if p_mentor.certification_expiry_date < public.certification_today() then
    raise exception 'mentor % cannot be reactivated: the certification expired on %', p_mentor.id,
      to_char(p_mentor.certification_expiry_date, 'YYYY-MM-DD')
      using errcode = 'P0001',
            hint = 'record the renewal first (record_certification_renewal), with p_reactivate to end the pause in the same call';
  end if;
end
$$;

-- The row and its history in one statement, so neither is ever written alone.
create function public.record_mentor_status_change(
  p_mentor public.peer_mentors, p_new_status text, p_actor_id uuid, p_reason text, p_request_id text
) returns public.mentor_status_history language sql set search_path = '' as $$
  with changed as (
    update public.peer_mentors
    set status = p_new_status, status_version = status_version + 1, status_changed_at = now()
    where id = (p_mentor).id
    returning id, status_version
  )
  insert into public.mentor_status_history
    (mentor_id, old_status, new_status, actor_id, reason, request_id, status_version)
  select changed.id, (p_mentor).status, p_new_status, p_actor_id, p_reason, p_request_id, changed.status_version
  from changed
  returning *
$$;

-- Only the RPCs run the helpers, as their owner (the header says why not even the
-- service role).
revoke execute on function
  public.check_mentor_change_caller,
  public.lock_mentor_for_change,
  public.is_organization_coordinator,
  public.check_replay_matches,
  public.mentor_status_change_result,
  public.check_may_act_on_mentor,
  public.check_mentor_transition,
  public.check_may_end_pause,
  public.record_mentor_status_change
  from public, anon, authenticated, service_role;

-- An empty search_path: every name below is schema-qualified, so nothing on the
-- caller's path can shadow a table or function this definer-rights code uses.
create or replace function public.update_mentor_status(
  p_mentor_id uuid, p_new_status text, p_actor_id uuid default null, p_reason text default null,
  p_expected_version integer default null, p_request_id text default null
) returns jsonb language plpgsql security definer set search_path = '' as $$
declare
  v_caller text := public.check_mentor_change_caller(p_mentor_id, p_actor_id, p_reason, p_request_id);
  v_mentor public.peer_mentors%rowtype;
  v_history public.mentor_status_history%rowtype;
  v_is_coordinator boolean;
begin
  if p_new_status is null or p_new_status not in ('active', 'paused', 'inactive') then
    raise exception 'unknown status %: expected active, paused or inactive', coalesce(quote_literal(p_new_status), 'null')
      using errcode = '22023';
  end if;
  v_mentor := public.lock_mentor_for_change(p_mentor_id);
  v_is_coordinator := public.check_may_act_on_mentor(v_caller, v_mentor, p_actor_id);

  -- A replay is answered before the version is checked: the transition it
  -- replays has already bumped it.
  select * into v_history from public.mentor_status_history where mentor_id = p_mentor_id and request_id = p_request_id;
  if found then
    perform public.check_replay_matches(p_request_id, p_mentor_id, 'moved', v_history.new_status, p_new_status);
    return public.mentor_status_change_result(v_history, v_mentor.status_version, true);
  end if;

  perform public.check_mentor_transition(v_mentor, p_new_status, p_expected_version);
  if p_new_status = 'active' then
    perform public.check_may_end_pause(v_caller, v_is_coordinator, v_mentor, p_actor_id);
  end if;
  v_history := public.record_mentor_status_change(v_mentor, p_new_status, p_actor_id, p_reason, p_request_id);
  return public.mentor_status_change_result(v_history, v_history.status_version, false);
end
$$;
