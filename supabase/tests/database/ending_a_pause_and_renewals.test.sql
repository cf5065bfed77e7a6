-- Ending a pause and recording a renewal (migrations ending_a_pause,
-- certification_renewals and certifications_expiring_soon): each rule for each
-- kind of caller, in one rolled-back transaction.
begin;
create extension if not exists pgtap with schema extensions;
select plan(36);

insert into auth.users (id) values
  ('d0000000-0000-4000-8000-0000000000b1'),  -- mentor b1's login
  ('d0000000-0000-4000-8000-0000000000c1'),  -- mentor c1's login
  ('c0000000-0000-4000-8000-0000000000b1'),  -- a coordinator of organisation a…b1
  ('c0000000-0000-4000-8000-0000000000b2');  -- a coordinator of another organisation, a…b2
insert into public.organization_coordinators (organization_id, user_id) values
  ('a0000000-0000-4000-8000-0000000000b1', 'c0000000-0000-4000-8000-0000000000b1'),
  ('a0000000-0000-4000-8000-0000000000b2', 'c0000000-0000-4000-8000-0000000000b2');
-- For ending pauses, b1: valid for a year; b2: expired 60 days ago. For renewals,
-- c1: expired and paused by the system; c2: expires in 10 days; c3: in 31 days;
-- c4: inactive; c5: another organisation's, expiring today.
insert into public.peer_mentors (id, organization_id, user_id, status, certification_expiry_date) values
  ('e0000000-0000-4000-8000-0000000000b1', 'a0000000-0000-4000-8000-0000000000b1',
   'd0000000-0000-4000-8000-0000000000b1', 'active', public.certification_today() + 365),
  ('e0000000-0000-4000-8000-0000000000b2', 'a0000000-0000-4000-8000-0000000000b1',
   null, 'active', public.certification_today() - 60),
  ('e0000000-0000-4000-8000-0000000000c1', 'a0000000-0000-4000-8000-0000000000b1',
   'd0000000-0000-4000-8000-0000000000c1', 'active', public.certification_today() - 60),
  ('e0000000-0000-4000-8000-0000000000c2', 'a0000000-0000-4000-8000-0000000000b1',
   null, 'active', public.certification_today() + 10),
  ('e0000000-0000-4000-8000-0000000000c3', 'a0000000-0000-4000-8000-0000000000b1',
   null, 'paused', public.certification_today() + 31),
  ('e0000000-0000-4000-8000-0000000000c4', 'a0000000-0000-4000-8000-0000000000b1',
   null, 'inactive', public.certification_today() + 5),
  ('e0000000-0000-4000-8000-0000000000c5', 'a0000000-0000-4000-8000-0000000000b2',
   null, 'active', public.certification_today());
select public.update_mentor_status('e0000000-0000-4000-8000-0000000000c1', 'paused', null, 'certification_expired');

select function_privs_are('public', 'record_certification_renewal',
  array['uuid', 'date', 'uuid', 'text', 'boolean', 'text'], 'anon', array[]::text[], 'anon may not record renewals');
select function_privs_are('public', 'record_certification_renewal',
  array['uuid', 'date', 'uuid', 'text', 'boolean', 'text'], 'authenticated', array['EXECUTE'],
  'signed-in users call it, and it checks who they are');
select table_privs_are('public', 'certification_renewals', 'authenticated', array['SELECT'],
  'signed-in users only read renewals');
select table_privs_are('public', 'certification_renewals', 'anon', array[]::text[], 'anon reads no renewal');
select table_privs_are('public', 'certifications_expiring_soon', 'anon', array[]::text[], 'nor what expires soon');
select is_definer('public', 'record_certification_renewal', array['uuid', 'date', 'uuid', 'text', 'boolean', 'text'],
  'it runs with its owner''s rights');

create function pg_temp.act_as(p_sub text) returns void language sql as $$
  select set_config('request.jwt.claims', json_build_object('role', 'authenticated', 'sub', p_sub)::text, true);
  set local role authenticated;
$$;

-- Ending a pause.

-- A mentor's own pause is theirs to end.
select pg_temp.act_as('d0000000-0000-4000-8000-0000000000b1');
select is(public.update_mentor_status('e0000000-0000-4000-8000-0000000000b1', 'paused',
  'd0000000-0000-4000-8000-0000000000b1', 'holiday') ->> 'new_status', 'paused', 'a mentor pauses themselves');
select is(public.update_mentor_status('e0000000-0000-4000-8000-0000000000b1', 'active',
  'd0000000-0000-4000-8000-0000000000b1') ->> 'new_status', 'active', 'and ends their own pause');
reset role;

-- A coordinator's pause is not.
select pg_temp.act_as('c0000000-0000-4000-8000-0000000000b1');
select is(public.update_mentor_status('e0000000-0000-4000-8000-0000000000b1', 'paused',
  'c0000000-0000-4000-8000-0000000000b1', 'pending a complaint') ->> 'new_status', 'paused', 'a coordinator suspends');
reset role;
select pg_temp.act_as('d0000000-0000-4000-8000-0000000000b1');
select throws_ok($$select public.update_mentor_status('e0000000-0000-4000-8000-0000000000b1', 'active',
  'd0000000-0000-4000-8000-0000000000b1', 'back again')$$, '42501', null,
  'a mentor may not end a coordinator''s pause');
reset role;
select pg_temp.act_as('c0000000-0000-4000-8000-0000000000b2');
select throws_ok($$select public.update_mentor_status('e0000000-0000-4000-8000-0000000000b1', 'active',
  'c0000000-0000-4000-8000-0000000000b2')$$, '42501', null, 'nor may another organisation''s coordinator');
reset role;
select pg_temp.act_as('c0000000-0000-4000-8000-0000000000b1');
select is(public.update_mentor_status('e0000000-0000-4000-8000-0000000000b1', 'active',
  'c0000000-0000-4000-8000-0000000000b1') ->> 'new_status', 'active', 'the organisation''s coordinator ends it');
reset role;

-- The system's pause is not the mentor's either.
set local role service_role;
select set_config('request.jwt.claims', '{"role": "service_role"}', true);
select is(public.update_mentor_status('e0000000-0000-4000-8000-0000000000b1', 'paused') ->> 'new_status', 'paused',
  'the system pauses');
reset role;
select pg_temp.act_as('d0000000-0000-4000-8000-0000000000b1');
select throws_ok($$select public.update_mentor_status('e0000000-0000-4000-8000-0000000000b1', 'active',
  'd0000000-0000-4000-8000-0000000000b1')$$, '42501', null, 'a mentor may not end the system''s pause');
-- Leaving stays open (from active only, so end the pause first, as the service role).
reset role;

-- Nobody reactivates an expired mentor: the service role and the coordinator alike.
set local role service_role;
select update_mentor_status('e0000000-0000-4000-8000-0000000000b2', 'paused');
select throws_like($$select public.update_mentor_status('e0000000-0000-4000-8000-0000000000b2', 'active')$$,
  format('%%expired on %s%%', to_char(public.certification_today() - 60, 'YYYY-MM-DD')),
  'the service role may not reactivate an expired mentor, and the message names the date');
select throws_ok($$select public.update_mentor_status('e0000000-0000-4000-8000-0000000000b2', 'active')$$,
  'P0001', null, 'that refusal is P0001');
reset role;
select pg_temp.act_as('c0000000-0000-4000-8000-0000000000b1');
select throws_ok($$select public.update_mentor_status('e0000000-0000-4000-8000-0000000000b2', 'active',
  'c0000000-0000-4000-8000-0000000000b1')$$, 'P0001', null, 'nor may a coordinator');
reset role;

-- Leaving stays open to the mentor.
set local role service_role;
select update_mentor_status('e0000000-0000-4000-8000-0000000000b1', 'active');
reset role;
select pg_temp.act_as('d0000000-0000-4000-8000-0000000000b1');
select is(public.update_mentor_status('e0000000-0000-4000-8000-0000000000b1', 'inactive',
  'd0000000-0000-4000-8000-0000000000b1') ->> 'new_status', 'inactive', 'a mentor may leave');
reset role;

-- Recording a renewal.

-- The mentor: no renewal of their own, and they see what concerns them only.
select pg_temp.act_as('d0000000-0000-4000-8000-0000000000c1');
select throws_ok($$select public.record_certification_renewal('e0000000-0000-4000-8000-0000000000c1',
  public.certification_today() + 365, 'd0000000-0000-4000-8000-0000000000c1')$$, '42501', null,
  'nobody certifies themselves');
reset role;

-- Another organisation's coordinator.
select pg_temp.act_as('c0000000-0000-4000-8000-0000000000b2');
select throws_ok($$select public.record_certification_renewal('e0000000-0000-4000-8000-0000000000c1',
  public.certification_today() + 365, 'c0000000-0000-4000-8000-0000000000b2')$$, '42501', null,
  'another organisation''s coordinator may not');
reset role;

-- The organisation's coordinator: the date rules, then a renewal with reactivation.
select pg_temp.act_as('c0000000-0000-4000-8000-0000000000b1');
select throws_ok($$select public.record_certification_renewal('e0000000-0000-4000-8000-0000000000c1',
  null, 'c0000000-0000-4000-8000-0000000000b1')$$, '22023', null, 'a null date');
select throws_ok($$select public.record_certification_renewal('e0000000-0000-4000-8000-0000000000c1',
  public.certification_today() - 1, 'c0000000-0000-4000-8000-0000000000b1')$$, '22023', null, 'a date in the past');
select throws_ok($$select public.record_certification_renewal('e0000000-0000-4000-8000-0000000000c1',
  public.certification_today() + 3660, 'c0000000-0000-4000-8000-0000000000b1')$$, '22023', null,
  'a date past the ten-year typo guard');
select throws_ok($$select public.record_certification_renewal('e0000000-0000-4000-8000-0000000000ff',
  public.certification_today() + 365, 'c0000000-0000-4000-8000-0000000000b1')$$, 'PT404', null, 'an unknown mentor');
select is(public.record_certification_renewal('e0000000-0000-4000-8000-0000000000c1',
  public.certification_today() + 365, 'c0000000-0000-4000-8000-0000000000b1', null, true, 'renewal-1') ->> 'status',
  'active', 'a coordinator renews and reactivates in one call');
select is((public.record_certification_renewal('e0000000-0000-4000-8000-0000000000c1',
  public.certification_today() + 365, 'c0000000-0000-4000-8000-0000000000b1', null, true, 'renewal-1') ->> 'replayed')::boolean,
  true, 'the same request id replays it');
select throws_ok($$select public.record_certification_renewal('e0000000-0000-4000-8000-0000000000c1',
  public.certification_today() + 400, 'c0000000-0000-4000-8000-0000000000b1', null, true, 'renewal-1')$$,
  '22023', null, 'the same request id with another date is refused');
select is((select count(*)::int from public.certification_renewals), 1, 'one renewal row, whatever the retries');
select is((select array_agg(reason order by id) from public.mentor_status_history
           where mentor_id = 'e0000000-0000-4000-8000-0000000000c1'),
  array['certification_expired', 'certification_renewed'], 'the pause and its end, in order');
select is((select array_agg(mentor_id::text order by certification_expiry_date) from public.certifications_expiring_soon),
  array['e0000000-0000-4000-8000-0000000000c2'], 'a coordinator sees their organisation''s active or paused mentors within 30 days');
select is((select days_left from public.certifications_expiring_soon), 10, 'days left until the expiry date');
reset role;

select pg_temp.act_as('d0000000-0000-4000-8000-0000000000c1');
select is((select count(*)::int from public.certification_renewals), 1, 'the mentor sees their own renewal');
reset role;
select pg_temp.act_as('c0000000-0000-4000-8000-0000000000b2');
select is((select count(*)::int from public.certification_renewals), 0, 'another organisation''s coordinator none');
select is((select array_agg(days_left) from public.certifications_expiring_soon), array[0],
  'a certification valid through today has 0 days left');
reset role;

-- The service role, for the system: renews without reactivating an inactive mentor.
set local role service_role;
select is(public.record_certification_renewal('e0000000-0000-4000-8000-0000000000c4',
  public.certification_today() + 365, null, null, true) ->> 'status', 'inactive',
  'p_reactivate ends pauses only: an inactive mentor stays inactive');
reset role;
select is((select count(*)::int from public.certification_renewals where actor_id is null), 1,
  'the system''s renewal has no actor');

select * from finish();
rollback;
