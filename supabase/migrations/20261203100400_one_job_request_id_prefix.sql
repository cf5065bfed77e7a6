-- The certification expiry job's request-id prefix, defined once. Every rule that
-- needs it reads it from here: is_job_request_id (who may use such ids, whose pause
-- is the system's), certification_expiry_request_run_id (which run made a
-- transition) and the audit repair, with the index it reads through. Until now the
-- prefix was spelled out in each of them. certification_expiry/request_ids.py
-- writes ids with the same prefix; tests/database/test_job_request_ids.py holds the
-- two sides equal.

-- Give up rather than queue the app's queries behind a lock (migration safety, .squawk.toml).
set local lock_timeout = '5s';
set local statement_timeout = '60s';

create function public.job_request_id_prefix()
returns text language sql immutable parallel safe set search_path = '' as $$
  select 'certification_expiry:'
$$;

-- The prefix, in any case, after any leading white space: the job's, to every rule.
create or replace function public.is_job_request_id(p_request_id text)
returns boolean language sql immutable set search_path = '' as $$
  select coalesce(
    starts_with(lower(regexp_replace(p_request_id, '^[[:space:]]+', '')), lower(public.job_request_id_prefix())),
    false
  )
$$;

-- The run id in an id exactly as the job writes it (the prefix, the run's id, the
-- mentor's id), if the mentor is this one. The pattern admits only canonical
-- lowercase uuids, so the cast cannot fail.
create or replace function public.certification_expiry_request_run_id(p_request_id text, p_mentor_id uuid)
returns uuid language sql immutable set search_path = '' as $$
  select m[1]::uuid
  from regexp_match(
    substr(p_request_id, length(public.job_request_id_prefix()) + 1),
    '^([0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}):([0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12})$'
  ) as m
  where starts_with(p_request_id, public.job_request_id_prefix()) and m[2] = p_mentor_id::text
$$;

-- The repair runs as the service role, and so do the two functions above when it calls them.
-- Revoked from the API roles by name too: older projects' default privileges grant
-- every new function to them.
revoke all on function public.job_request_id_prefix() from public, anon, authenticated;
grant execute on function public.job_request_id_prefix() to service_role;
grant execute on function public.is_job_request_id(text) to service_role;

-- Finding the job's transitions without an audit row must not scan the whole
-- history. The index's predicate is the repair's own condition, which the planner
-- matches as written. Its function is immutable; a migration that redefines
-- is_job_request_id or job_request_id_prefix must rebuild this index in the same file.
drop index if exists public.mentor_status_history_job_request_idx;
create index if not exists mentor_status_history_job_request_id_idx
  on public.mentor_status_history (id)
  where public.is_job_request_id(request_id);

-- As in job_request_ids, reading the prefix through is_job_request_id: ids with the
-- prefix that no run can be credited with (written before the prefix was reserved
-- to the job, or by hand, in any case) are counted as skipped, never audited.
create or replace function public.repair_certification_expiry_audit()
returns jsonb language sql set search_path = '' as $$
  with unaudited as (
    select
      h.id, h.mentor_id, h.old_status, h.new_status, h.actor_id, h.changed_at,
      m.certification_expiry_date, m.organization_id,
      public.certification_expiry_request_run_id(h.request_id, h.mentor_id) as run_id
    from public.mentor_status_history h
    join public.peer_mentors m on m.id = h.mentor_id
    where public.is_job_request_id(h.request_id)
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
