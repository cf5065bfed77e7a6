-- Every caller held to the rules of ../shared/design.md, where a third probe of
-- hostile callers found them open:
--   * a request id names one call: reused for another call (another function,
--     another status, another actor or reason, or a renewal's transition) it is
--     22023 and nothing is written. A coordinator reused the id of an old resume
--     for a renewal with p_reactivate; the nested transition "replayed" the old
--     resume, the renewal row said `active` and the mentor stayed paused;
--   * the job's request-id prefix is reserved whatever its case or leading
--     spaces (`CERTIFICATION_EXPIRY:x` passed), with one definition of it;
--   * reasons and request ids are printable: no control, line-separator or
--     bidi-override characters (a self-pause's reason carried a newline and a
--     forged "[system]" line); the system's reason codes are the system's;
--   * nobody ends a pause of their own mentor record that someone else made, a
--     coordinator of that organisation included, and a pause the job made (its
--     request id) is the system's even when a coordinator's run made it;
--   * a coordinator's renewal never moves a still-valid date earlier (the
--     service role may, to correct a mistake, recorded like any renewal);
--   * the state machine's own refusals carry DETAIL `transition_not_allowed`, the
--     only P0001 the job counts as a skip.
-- Each rule is restated here as the one function that holds it (ending_a_pause
-- built update_mentor_status from one function per rule for this).

-- Give up rather than queue the app's queries behind a lock (migration safety, .squawk.toml).
set local lock_timeout = '5s';
set local statement_timeout = '60s';

-- The one definition of "a request id of the certification expiry job": its
-- prefix, in any case, after any leading white space.
create function public.is_job_request_id(p_request_id text)
returns boolean language sql immutable set search_path = '' as $$
  select coalesce(p_request_id ~* '^[[:space:]]*certification_expiry:', false)
$$;

-- Text a person will read in the audit trail: no C0 or C1 control characters
-- (newlines included), no line or paragraph separators, no bidi embeddings,
-- overrides or isolates, which could make one record look like another.
create function public.is_printable(p_text text)
returns boolean language sql immutable set search_path = '' as $$
  select p_text is null or p_text !~ '[\u0001-\u001f\u007f-\u009f\u2028\u2029\u202a-\u202e\u2066-\u2069]'
$$;

create or replace function public.check_mentor_change_caller(
  p_mentor_id uuid, p_actor_id uuid, p_reason text, p_request_id text
) returns text language plpgsql stable set search_path = '' as $$
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
  elsif v_caller = 'authenticated' and public.is_job_request_id(p_request_id) then
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
  elsif not public.is_printable(p_reason) then
    raise exception 'p_reason holds a control, line-separator or bidi character' using errcode = '22023';
  elsif not public.is_printable(p_request_id) then
    raise exception 'p_request_id holds a control, line-separator or bidi character' using errcode = '22023';
  -- What the system writes, only the system writes: a signed-in user's pause is
  -- never read as the job's.
  elsif v_caller = 'authenticated' and lower(btrim(p_reason)) in ('certification_expired', 'certification_renewed') then
    raise exception 'the reason % is the system''s own; describe the change in your own words', p_reason
      using errcode = '22023';
  end if;
  return v_caller;
end
$$;

-- A replay must be the same call: the same function (a renewal's id never
-- replays a transition, nor the other way round), the same target, the same
-- actor and reason. Anything else reuses an id that names another call.
create or replace function public.check_replay_matches(
  p_request_id text, p_mentor_id uuid, p_done text, p_recorded text, p_asked text
) returns void language plpgsql set search_path = '' as $$
begin
  if p_recorded is distinct from p_asked then
    raise exception 'request id % already % mentor % (%), so it cannot name this call (%)', p_request_id, p_done,
      p_mentor_id, p_recorded, p_asked
      using errcode = '22023', hint = 'use a new request id for a new call';
  end if;
end
$$;

-- The state machine's refusal carries its own mark, so that a caller (the job
-- among them) can tell it from any other P0001, which is always an error.
create or replace function public.check_mentor_transition(
  p_mentor public.peer_mentors, p_new_status text, p_expected_version integer
) returns void language plpgsql set search_path = '' as $$
begin
  if p_expected_version <> p_mentor.status_version then
    raise exception 'mentor % is at status_version %, not the expected %', p_mentor.id, p_mentor.status_version,
      p_expected_version using errcode = 'PT409';
  end if;
  if (p_mentor.status, p_new_status) not in (values ('active', 'paused'), ('paused', 'active'), ('active', 'inactive')) then
    raise exception 'mentor % cannot go from % to %', p_mentor.id, p_mentor.status, p_new_status
      using errcode = 'P0001', detail = 'transition_not_allowed',
            hint = 'allowed: active to paused, paused to active, active to inactive';
  end if;
end
$$;

-- Ending a pause. The pause is the latest transition into paused (history ids
-- follow the row lock's order); one the job made is the system's, whoever ran the
-- job. A signed-in user may end it only when it is not on their own record and
-- they coordinate the mentor's organisation, or when it is on their own record
-- and they made it themselves: nobody ends a pause of their own record that
-- someone else made, as nobody certifies themselves.
create or replace function public.check_may_end_pause(
  p_caller text, p_is_coordinator boolean, p_mentor public.peer_mentors, p_actor_id uuid
) returns void language plpgsql stable set search_path = '' as $$
declare
  v_pause public.mentor_status_history%rowtype;
  v_pause_actor uuid;
begin
  if p_caller = 'authenticated' then
    select * into v_pause
    from public.mentor_status_history h
    where h.mentor_id = p_mentor.id and h.new_status = 'paused'
    order by h.id desc
    limit 1;
    v_pause_actor := case when public.is_job_request_id(v_pause.request_id) then null else v_pause.actor_id end;
    if p_mentor.user_id is not distinct from p_actor_id then
      if v_pause_actor is distinct from p_actor_id then
        raise exception 'mentor % was paused by %; nobody ends a pause of their own record that someone else made',
          p_mentor.id, case when v_pause_actor is null then 'the system' else 'someone else' end
          using errcode = '42501', hint = 'a coordinator of the organisation ends it';
      end if;
    elsif not p_is_coordinator then
      raise exception 'only a coordinator of its organisation may end the pause of mentor %', p_mentor.id
        using errcode = '42501';
    end if;
  end if;
  if p_mentor.certification_expiry_date < public.certification_today() then
    raise exception 'mentor % cannot be reactivated: the certification expired on %', p_mentor.id,
      to_char(p_mentor.certification_expiry_date, 'YYYY-MM-DD')
      using errcode = 'P0001', detail = 'certification_expired',
            hint = 'record the renewal first (record_certification_renewal), with p_reactivate to end the pause in the same call';
  end if;
end
$$;

revoke execute on function public.is_job_request_id(text), public.is_printable(text)
  from public, anon, authenticated, service_role;

-- update_mentor_status: a request id that already names a renewal of this mentor
-- (whose transition carries it too) is never replayed as a transition.
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
    if exists (select 1 from public.certification_renewals r where r.mentor_id = p_mentor_id and r.request_id = p_request_id) then
      perform public.check_replay_matches(p_request_id, p_mentor_id, 'named', 'a renewal', 'a status change');
    end if;
    perform public.check_replay_matches(p_request_id, p_mentor_id, 'moved', v_history.new_status, p_new_status);
    perform public.check_replay_matches(
      p_request_id, p_mentor_id, 'was used by', coalesce(v_history.actor_id::text, 'the system'),
      coalesce(p_actor_id::text, 'the system')
    );
    perform public.check_replay_matches(p_request_id, p_mentor_id, 'gave the reason', v_history.reason, p_reason);
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

-- record_certification_renewal: its request id must not already name a status
-- change; a coordinator never moves a still-valid date earlier; the pause it ends
-- is ended by the same rule functions as update_mentor_status's, called directly,
-- so that no transition is ever "replayed" inside a new renewal.
create or replace function public.record_certification_renewal(
  p_mentor_id uuid, p_new_expiry_date date, p_actor_id uuid default null, p_reason text default null,
  p_reactivate boolean default false, p_request_id text default null
) returns jsonb language plpgsql security definer set search_path = '' as $$
declare
  -- The typo guard: no certification this project tracks runs longer than this.
  -- A date past it (2205 for 2025) is refused rather than silently trusted.
  v_latest date := public.certification_today() + interval '10 years';
  v_caller text := public.check_mentor_change_caller(p_mentor_id, p_actor_id, p_reason, p_request_id);
  v_mentor public.peer_mentors%rowtype;
  v_renewal public.certification_renewals%rowtype;
  v_history public.mentor_status_history%rowtype;
  v_old_expiry_date date;
  v_is_coordinator boolean := false;
begin
  if p_new_expiry_date is null then
    raise exception 'p_new_expiry_date must not be null' using errcode = '22023';
  end if;
  -- The same lock as update_mentor_status: a renewal and a transition of one
  -- mentor never interleave.
  v_mentor := public.lock_mentor_for_change(p_mentor_id);
  if v_caller = 'authenticated' then
    -- Nobody certifies themselves, not even a mentor who also coordinates.
    if v_mentor.user_id is not distinct from p_actor_id then
      raise exception 'a mentor may not record their own renewal; a coordinator of the organisation records it'
        using errcode = '42501';
    end if;
    v_is_coordinator := public.is_organization_coordinator(v_mentor.organization_id, p_actor_id);
    if not v_is_coordinator then
      raise exception 'user % is not a coordinator of the organisation of mentor %', p_actor_id, p_mentor_id
        using errcode = '42501';
    end if;
  end if;

  -- A retry after a lost answer: the renewal it recorded, again, when it is the same call.
  select * into v_renewal from public.certification_renewals where mentor_id = p_mentor_id and request_id = p_request_id;
  if found then
    perform public.check_replay_matches(
      p_request_id, p_mentor_id, 'renewed', v_renewal.new_expiry_date::text, p_new_expiry_date::text
    );
    perform public.check_replay_matches(
      p_request_id, p_mentor_id, 'was used by', coalesce(v_renewal.actor_id::text, 'the system'),
      coalesce(p_actor_id::text, 'the system')
    );
    return public.certification_renewal_result(v_renewal, true);
  end if;
  if exists (select 1 from public.mentor_status_history h where h.mentor_id = p_mentor_id and h.request_id = p_request_id) then
    perform public.check_replay_matches(p_request_id, p_mentor_id, 'named', 'a status change', 'a renewal');
  end if;

  if p_new_expiry_date < public.certification_today() or p_new_expiry_date > v_latest then
    raise exception 'the new expiry date % must be between % (today in Oslo) and %', p_new_expiry_date,
      public.certification_today(), v_latest
      using errcode = '22023';
  end if;
  if v_caller = 'authenticated' and v_mentor.certification_expiry_date >= public.certification_today()
     and p_new_expiry_date < v_mentor.certification_expiry_date then
    raise exception 'the certification of mentor % is valid until %; a renewal does not move it earlier', p_mentor_id,
      to_char(v_mentor.certification_expiry_date, 'YYYY-MM-DD')
      using errcode = '22023', hint = 'an operator corrects a wrong date';
  end if;

  v_old_expiry_date := v_mentor.certification_expiry_date;
  update public.peer_mentors
  set certification_expiry_date = p_new_expiry_date,
      status_version = status_version + 1
  where id = p_mentor_id
  returning * into v_mentor;

  if coalesce(p_reactivate, false) and v_mentor.status = 'paused' then
    perform public.check_mentor_transition(v_mentor, 'active', v_mentor.status_version);
    perform public.check_may_end_pause(v_caller, v_is_coordinator, v_mentor, p_actor_id);
    v_history := public.record_mentor_status_change(
      v_mentor, 'active', p_actor_id, coalesce(p_reason, 'certification_renewed'), p_request_id
    );
    v_mentor.status := v_history.new_status;
    v_mentor.status_version := v_history.status_version;
  end if;

  insert into public.certification_renewals
    (mentor_id, old_expiry_date, new_expiry_date, actor_id, reason, request_id, status, status_version)
  values (
    p_mentor_id, v_old_expiry_date, p_new_expiry_date, p_actor_id, p_reason, p_request_id,
    v_mentor.status, v_mentor.status_version
  )
  returning * into v_renewal;

  return public.certification_renewal_result(v_renewal, false);
end
$$;
