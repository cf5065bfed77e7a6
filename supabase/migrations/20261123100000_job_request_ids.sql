-- The certification expiry job's request ids, certification_expiry:<run id>:<mentor id>,
-- are what the audit repair reads to credit a transition to a run. Before this
-- migration any signed-in mentor could put one on their own history: a malformed
-- one made the repair's uuid cast fail on every run (disabling it), and a real run
-- id let a self-pause pass for the job's. Now only the service role (and a direct
-- connection of the database owner) may use the prefix, and the repair credits
-- only transitions that the named run can have made, skipping the rest.

-- The run id of a job request id, or null when the text is not one for this
-- mentor. The one definition of the format on the SQL side; the Python side is
-- certification_expiry.request_ids.request_id_for, and a test pins both to the same examples.

-- Give up rather than queue the app's queries behind a lock (migration safety, .squawk.toml).
set local lock_timeout = '5s';
set local statement_timeout = '60s';

create function public.certification_expiry_request_run_id(p_request_id text, p_mentor_id uuid)
returns uuid
language sql
immutable
set search_path = ''
as $$
  -- The pattern admits only canonical lowercase uuids, so the cast cannot fail.
  select m[1]::uuid
  from regexp_match(
    p_request_id,
    '^certification_expiry:([0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}):([0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12})$'
  ) as m
  where m[2] = p_mentor_id::text
$$;

revoke execute on function public.certification_expiry_request_run_id(text, uuid) from public, anon, authenticated;
grant execute on function public.certification_expiry_request_run_id(text, uuid) to service_role;

-- update_mentor_status as before, with the prefix reserved to the job (42501),
-- checked before the replay lookup so that nobody else can replay a job transition.
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


-- The repair now answers what it did: {repaired, skipped, skipped_history_ids}.
-- A history row with the job's prefix is credited only when its run exists, is
-- not a dry run, started before the transition, acted as the same actor, covered
-- the mentor's organisation, and the transition is the job's own (to paused).
-- Anything else is skipped and reported (the job logs it), never an error: no
-- row anyone can write may stop the repair of the rows it can attribute.
drop function public.repair_certification_expiry_audit();

create function public.repair_certification_expiry_audit()
returns jsonb
language sql
set search_path = ''
as $$
  with unaudited as (
    select
      h.id, h.mentor_id, h.old_status, h.new_status, h.actor_id, h.changed_at,
      m.certification_expiry_date, m.organization_id,
      public.certification_expiry_request_run_id(h.request_id, h.mentor_id) as run_id
    from public.mentor_status_history h
    join public.peer_mentors m on m.id = h.mentor_id
    where h.request_id like 'certification\_expiry:%'
      and not exists (select 1 from public.certification_expiry_audit a where a.history_id = h.id)
  ),
  attributable as (
    select u.*
    from unaudited u
    join public.certification_expiry_runs r on r.id = u.run_id
    where not r.dry_run
      and u.new_status = 'paused'
      and u.changed_at >= r.started_at
      and u.actor_id is not distinct from r.actor_id
      and (r.organization_ids is null or u.organization_id = any (r.organization_ids))
  ),
  repaired as (
    insert into public.certification_expiry_audit
      (job_run_id, mentor_id, certification_expiry_date, old_status, new_status, history_id, changed_at)
    -- Not kept in the history: the mentor's date now, which is the one the run
    -- saw unless the certification was renewed since.
    select run_id, mentor_id, certification_expiry_date, old_status, new_status, id, changed_at
    from attributable
    on conflict (job_run_id, mentor_id) do nothing
    returning history_id
  ),
  skipped as (
    select id from unaudited where id not in (select id from attributable)
  )
  select jsonb_build_object(
    'repaired', (select count(*) from repaired),
    'skipped', (select count(*) from skipped),
    'skipped_history_ids', coalesce((select jsonb_agg(id) from (select id from skipped order by id limit 20) s), '[]')
  )
$$;

revoke execute on function public.repair_certification_expiry_audit() from public, anon, authenticated;
grant execute on function public.repair_certification_expiry_audit() to service_role;
