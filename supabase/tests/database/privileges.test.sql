-- Who may call and read what, and how the definer-rights code is fenced.
begin;
create extension if not exists pgtap with schema extensions;
select plan(22);

select function_privs_are('public', 'update_mentor_status', array['uuid', 'text', 'uuid', 'text', 'integer', 'text'],
  'anon', array[]::text[], 'anon may not call update_mentor_status');
select function_privs_are('public', 'update_mentor_status', array['uuid', 'text', 'uuid', 'text', 'integer', 'text'],
  'authenticated', array['EXECUTE'], 'signed-in users call update_mentor_status');
select function_privs_are('public', 'start_certification_expiry_run',
  array['uuid', 'text', 'boolean', 'integer', 'uuid', 'uuid[]', 'integer'], 'authenticated', array[]::text[],
  'only the job starts runs');
select function_privs_are('public', 'finish_certification_expiry_run',
  array['uuid', 'text', 'integer', 'integer', 'integer', 'integer'], 'authenticated', array[]::text[],
  'only the job finishes runs');
select function_privs_are('public', 'repair_certification_expiry_audit', array[]::text[],
  'authenticated', array[]::text[], 'only the job repairs the audit');
select function_privs_are('public', 'certification_compliance_status', array['time without time zone', 'integer'],
  'anon', array[]::text[], 'the compliance status is the operator''s');

select table_privs_are('public', 'peer_mentors', 'anon', array[]::text[], 'anon reads no mentor');
select table_privs_are('public', 'peer_mentors', 'authenticated', array['SELECT'], 'signed-in users only read mentors');
select table_privs_are('public', 'mentor_status_history', 'authenticated', array['SELECT'],
  'signed-in users only read the history');
select table_privs_are('public', 'certification_expiry_runs', 'authenticated', array[]::text[],
  'the run ledger is closed to signed-in users');
select table_privs_are('public', 'certification_expiry_audit', 'authenticated', array['SELECT'],
  'signed-in users only read the audit');
select table_privs_are('public', 'certification_expiry_audit', 'anon', array[]::text[], 'anon reads no audit');
select table_privs_are('public', 'listed_peer_mentors', 'anon', array['SELECT'], 'chapter websites read the listing');
select table_privs_are('public', 'listed_peer_mentors', 'authenticated', array['SELECT'],
  'signed-in users read the listing');

select is_definer('public', 'update_mentor_status', array['uuid', 'text', 'uuid', 'text', 'integer', 'text'],
  'update_mentor_status runs with its owner''s rights');
select isnt_definer('public', 'repair_certification_expiry_audit', array[]::text[],
  'the repair runs with the caller''s rights');
select is(
  (select proconfig from pg_proc where oid = 'public.update_mentor_status(uuid, text, uuid, text, integer, text)'::regprocedure),
  array['search_path=""'], 'update_mentor_status pins an empty search_path');
-- The helpers the RPCs are built from (ending_a_pause) run only inside them;
-- the views that signed-in users read call certification_today.
select is(
  (select array_agg(p.proname::text order by p.proname) from pg_proc p join pg_namespace n on n.oid = p.pronamespace
   where n.nspname = 'public' and has_function_privilege('authenticated', p.oid, 'execute')
     and not exists (select 1 from pg_depend d where d.objid = p.oid and d.deptype = 'e')),
  array['certification_today', 'record_certification_renewal', 'update_mentor_status'],
  'of public''s functions, signed-in users may call the two that change a mentor, and today''s date');
select is(
  (select array_agg(p.proname::text order by p.proname) from pg_proc p join pg_namespace n on n.oid = p.pronamespace
   where n.nspname = 'public' and has_function_privilege('service_role', p.oid, 'execute')
     and p.proname in ('check_mentor_change_caller', 'lock_mentor_for_change', 'is_organization_coordinator',
       'check_replay_matches', 'mentor_status_change_result', 'check_may_act_on_mentor', 'check_mentor_transition',
       'check_may_end_pause', 'record_mentor_status_change', 'certification_renewal_result')),
  null, 'nor does the service role call a helper: every change goes through the checks');
select is(
  (select count(*)::int from pg_proc p join pg_namespace n on n.oid = p.pronamespace
   where n.nspname = 'public' and not exists (select 1 from unnest(coalesce(p.proconfig, '{}')) c where c like 'search_path=%')),
  0, 'every function in public pins its search_path');
select is(
  (select array_agg(c.relname::text order by c.relname) from pg_class c join pg_namespace n on n.oid = c.relnamespace
   where n.nspname = 'public' and c.relkind = 'v'
     and not coalesce(c.reloptions && array['security_invoker=true', 'security_invoker=on'], false)),
  null, 'every view runs with the reader''s rights (security_invoker)');
select is(
  (select count(*)::int from pg_class c join pg_namespace n on n.oid = c.relnamespace
   where n.nspname = 'public' and c.relkind = 'r' and not c.relrowsecurity),
  0, 'every table has row level security');

select * from finish();
rollback;
