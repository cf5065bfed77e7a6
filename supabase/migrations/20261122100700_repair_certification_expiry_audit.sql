-- Audit rows are written after the transitions, in separate requests, so a run
-- can end with transitions that have no audit row (the audit write failed for
-- good, or the answer of a transition was lost on every retry). Each run first
-- calls this to write them: every transition the job made ends with its row.

-- Give up rather than queue the app's queries behind a lock (migration safety, .squawk.toml).
set local lock_timeout = '5s';
set local statement_timeout = '60s';

create function public.repair_certification_expiry_audit()
returns integer
language sql
set search_path = ''
as $$
  with repaired as (
    insert into public.certification_expiry_audit
      (job_run_id, mentor_id, certification_expiry_date, old_status, new_status, history_id, changed_at)
    select
      -- The job's request id is certification_expiry:<job run id>:<mentor id>.
      split_part(h.request_id, ':', 2)::uuid,
      h.mentor_id,
      -- Not kept in the history: the mentor's date now, which is the one the
      -- run saw unless the certification was renewed since.
      m.certification_expiry_date,
      h.old_status,
      h.new_status,
      h.id,
      h.changed_at
    from public.mentor_status_history h
    join public.peer_mentors m on m.id = h.mentor_id
    where h.request_id like 'certification\_expiry:%'
      and not exists (select 1 from public.certification_expiry_audit a where a.history_id = h.id)
    on conflict (job_run_id, mentor_id) do nothing
    returning 1
  )
  select count(*)::integer from repaired
$$;

-- Finding job transitions without an audit row must not scan the whole history.
create index if not exists mentor_status_history_job_request_idx
  on public.mentor_status_history (id)
  where request_id like 'certification\_expiry:%';

revoke execute on function public.repair_certification_expiry_audit() from public, anon, authenticated;
grant execute on function public.repair_certification_expiry_audit() to service_role;
