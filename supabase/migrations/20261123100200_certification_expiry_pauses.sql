-- The job's pauses as people may see them: a coordinator follows up with every
-- mentor the job paused in their organisations, a mentor sees their own. The
-- notification step reads the complete list of a run the same way, as the
-- service role.

-- Audit rows become readable by signed-in users, as history rows are: a row is
-- visible exactly when its mentor is (the subquery on peer_mentors is itself
-- filtered by that table's policy). Still nobody but the service role writes them.

-- Give up rather than queue the app's queries behind a lock (migration safety, .squawk.toml).
set local lock_timeout = '5s';
set local statement_timeout = '60s';

grant select on public.certification_expiry_audit to authenticated;

create policy "audit rows follow the visibility of their mentor"
  on public.certification_expiry_audit for select to authenticated
  using (mentor_id in (select m.id from public.peer_mentors m));

-- security_invoker: the reader's own policies decide the rows. paused_at is the
-- transition's time (the history row), actor_id who paused: null for the system,
-- the coordinator for a coordinator's manual run.
create view public.certification_expiry_pauses
with (security_invoker = true)
as
select
  a.mentor_id,
  m.organization_id,
  m.full_name,
  a.certification_expiry_date,
  h.changed_at as paused_at,
  a.job_run_id,
  h.actor_id
from public.certification_expiry_audit a
join public.peer_mentors m on m.id = a.mentor_id
join public.mentor_status_history h on h.id = a.history_id;

revoke all on public.certification_expiry_pauses from anon, authenticated;
grant select on public.certification_expiry_pauses to authenticated, service_role;
