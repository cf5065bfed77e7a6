-- Who may end a pause, and when (migration ending_a_pause): each rule for each
-- kind of caller, in one rolled-back transaction.
begin;
create extension if not exists pgtap with schema extensions;
select plan(12);

insert into auth.users (id) values
  ('d0000000-0000-4000-8000-0000000000b1'),  -- mentor b1's login
  ('c0000000-0000-4000-8000-0000000000b1'),  -- a coordinator of organisation a…b1
  ('c0000000-0000-4000-8000-0000000000b2');  -- a coordinator of another organisation
insert into public.organization_coordinators (organization_id, user_id) values
  ('a0000000-0000-4000-8000-0000000000b1', 'c0000000-0000-4000-8000-0000000000b1'),
  ('a0000000-0000-4000-8000-0000000000b2', 'c0000000-0000-4000-8000-0000000000b2');
-- b1: the mentor with a login, valid for a year; b2: expired 60 days ago.
insert into public.peer_mentors (id, organization_id, user_id, status, certification_expiry_date) values
  ('e0000000-0000-4000-8000-0000000000b1', 'a0000000-0000-4000-8000-0000000000b1',
   'd0000000-0000-4000-8000-0000000000b1', 'active', public.certification_today() + 365),
  ('e0000000-0000-4000-8000-0000000000b2', 'a0000000-0000-4000-8000-0000000000b1',
   null, 'active', public.certification_today() - 60);

create function pg_temp.act_as(p_sub text) returns void language sql as $$
  select set_config('request.jwt.claims', json_build_object('role', 'authenticated', 'sub', p_sub)::text, true);
  set local role authenticated;
$$;

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
  'd0000000-0000-4000-8000-0000000000b1', 'certification_renewed')$$, '42501', null,
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

select * from finish();
rollback;
