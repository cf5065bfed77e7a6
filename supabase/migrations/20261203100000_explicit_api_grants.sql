-- Every right the API roles have, granted here explicitly and nothing more.
--
-- Supabase no longer grants new objects in `public` to anon, authenticated or
-- service_role (changelog, 2026-04-28: new projects since 2026-05-30, every project
-- since 2026-10-30). The earlier migrations relied on the old defaults, so on a
-- project created today the nightly job met 42501. Projects created before kept
-- those defaults, which also let the secret key rewrite a mentor's status and
-- delete the audit trail. So this migration first takes back everything, whatever
-- a project's defaults gave, then grants the same matrix on every project; the
-- matrix is the table in docs/database.md, which tests/database/test_privileges.py
-- holds the catalog to on a cluster with the old defaults and on one without.
--
-- The service role is a caller like the others: it bypasses row level security,
-- not privileges.

-- Give up rather than queue the app's queries behind a lock (migration safety, .squawk.toml).
set local lock_timeout = '5s';
set local statement_timeout = '60s';

revoke all on all tables in schema public from anon, authenticated, service_role;
revoke all on all sequences in schema public from anon, authenticated, service_role;
revoke all on all functions in schema public from public, anon, authenticated, service_role;

-- The run ledger is written only by the functions that keep the lease, which now
-- run with their owner's rights: the service role calls them and cannot write a
-- run row itself (a run marked succeeded by hand would fool the compliance check).
-- Both pin an empty search_path and qualify every name.
alter function public.start_certification_expiry_run(uuid, text, boolean, integer, uuid, uuid[], integer)
  security definer;
alter function public.finish_certification_expiry_run(uuid, text, integer, integer, integer, integer)
  security definer;

-- Mentors. Signed-in users read them under row level security (their own record, a
-- coordinator's organisations). The service role reads them, adds mentors and keeps
-- their other columns up to date; the lifecycle columns (status, status_version,
-- status_changed_at, certification_expiry_date) change only through
-- update_mentor_status and record_certification_renewal, which keep the history.
grant select on public.peer_mentors to authenticated, service_role;
grant insert (id, organization_id, user_id, full_name, status, certification_expiry_date)
  on public.peer_mentors to service_role;
grant update (organization_id, user_id, full_name) on public.peer_mentors to service_role;

-- Who coordinates what: a coordinator reads their own memberships; the service role
-- reads them to scope a coordinator's run.
grant select on public.organization_coordinators to authenticated, service_role;

-- The three records are append-only for every API role; only the definer functions
-- write history and renewals, and the job inserts audit rows, never changing one.
grant select on public.mentor_status_history to authenticated, service_role;
grant select on public.certification_renewals to authenticated, service_role;
grant select on public.certification_expiry_audit to authenticated, service_role;
grant insert on public.certification_expiry_audit to service_role;

-- The ledger: the job and the compliance check read it; nobody signed in does.
grant select on public.certification_expiry_runs to service_role;

-- The views run with the reader's rights (security_invoker), so each reader also
-- needs the grants above on what the view reads.
grant select on public.expired_active_mentors to authenticated, service_role;
grant select on public.listed_peer_mentors to authenticated, service_role;
grant select on public.certification_expiry_pauses to authenticated, service_role;
grant select on public.certifications_expiring_soon to authenticated, service_role;

-- The RPCs that change a mentor, to whoever may ask; the views read today's date.
grant execute on function public.update_mentor_status(uuid, text, uuid, text, integer, text)
  to authenticated, service_role;
grant execute on function public.record_certification_renewal(uuid, date, uuid, text, boolean, text)
  to authenticated, service_role;
grant execute on function public.certification_today() to authenticated, service_role;

-- The job's and the compliance check's own functions, to the service role only.
grant execute on function public.start_certification_expiry_run(uuid, text, boolean, integer, uuid, uuid[], integer)
  to service_role;
grant execute on function public.finish_certification_expiry_run(uuid, text, integer, integer, integer, integer)
  to service_role;
grant execute on function public.repair_certification_expiry_audit() to service_role;
grant execute on function public.certification_expiry_request_run_id(text, uuid) to service_role;
grant execute on function public.certification_compliance_status(time, integer) to service_role;

-- The helpers the RPCs are built from run only inside them (ending_a_pause): no
-- grant, so no caller can skip a check by calling the step after it.
