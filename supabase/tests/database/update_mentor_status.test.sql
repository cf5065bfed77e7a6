-- update_mentor_status: every transition and every error code, for each kind of
-- caller, in one rolled-back transaction (`supabase test db`, or `make test`).
begin;
create extension if not exists pgtap with schema extensions;
select plan(17);

insert into auth.users (id) values
  ('d0000000-0000-4000-8000-0000000000a1'),  -- a mentor with a login
  ('c0000000-0000-4000-8000-0000000000a1');  -- a coordinator of organisation a…a1
insert into public.organization_coordinators (organization_id, user_id) values
  ('a0000000-0000-4000-8000-0000000000a1', 'c0000000-0000-4000-8000-0000000000a1');
insert into public.peer_mentors (id, organization_id, user_id, status) values
  ('e0000000-0000-4000-8000-0000000000a1', 'a0000000-0000-4000-8000-0000000000a1', 'd0000000-0000-4000-8000-0000000000a1', 'active'),
  ('e0000000-0000-4000-8000-0000000000a2', 'a0000000-0000-4000-8000-0000000000a1', null, 'active'),
  ('e0000000-0000-4000-8000-0000000000a3', 'a0000000-0000-4000-8000-0000000000a2', null, 'active');

-- As the job: the service role, acting for the system.
set local role service_role;
select set_config('request.jwt.claims', '{"role": "service_role"}', true);

select is(public.update_mentor_status('e0000000-0000-4000-8000-0000000000a2', 'paused') ->> 'new_status', 'paused',
  'active to paused');
select is(public.update_mentor_status('e0000000-0000-4000-8000-0000000000a2', 'active') ->> 'new_status', 'active',
  'paused to active');
select throws_ok($$select public.update_mentor_status('e0000000-0000-4000-8000-0000000000a2', 'active')$$,
  'P0001', null, 'the same state is not a transition');
select is(public.update_mentor_status('e0000000-0000-4000-8000-0000000000a2', 'inactive') ->> 'new_status', 'inactive',
  'active to inactive');
select throws_ok($$select public.update_mentor_status('e0000000-0000-4000-8000-0000000000a2', 'active')$$,
  'P0001', null, 'inactive to active is not allowed');
select throws_ok($$select public.update_mentor_status('e0000000-0000-4000-8000-0000000000a3', 'retired')$$,
  '22023', null, 'an unknown status');
select throws_ok($$select public.update_mentor_status(null, 'paused')$$,
  '22023', null, 'a null mentor id');
select throws_ok($$select public.update_mentor_status('e0000000-0000-4000-8000-0000000000ff', 'paused')$$,
  'PT404', null, 'an unknown mentor');
select throws_ok($$select public.update_mentor_status('e0000000-0000-4000-8000-0000000000a3', 'paused', null, null, 7)$$,
  'PT409', null, 'a stale expected version');
select is((public.update_mentor_status('e0000000-0000-4000-8000-0000000000a3', 'paused', null, null, 0,
  'certification_expiry:0b9d4b4e-4a0f-4c49-9d7e-3b1d1e1f2a3b:e0000000-0000-4000-8000-0000000000a3') ->> 'replayed')::boolean,
  false, 'the job pauses with its request id');
select is((public.update_mentor_status('e0000000-0000-4000-8000-0000000000a3', 'paused', null, null, 0,
  'certification_expiry:0b9d4b4e-4a0f-4c49-9d7e-3b1d1e1f2a3b:e0000000-0000-4000-8000-0000000000a3') ->> 'status_version')::int,
  1, 'a replay answers the version its transition produced');
reset role;

-- As a signed-in mentor.
set local role authenticated;
select set_config('request.jwt.claims',
  '{"role": "authenticated", "sub": "d0000000-0000-4000-8000-0000000000a1"}', true);
select throws_ok($$select public.update_mentor_status('e0000000-0000-4000-8000-0000000000a1', 'paused')$$,
  '42501', null, 'a user must name itself as the actor');
select is(public.update_mentor_status('e0000000-0000-4000-8000-0000000000a1', 'paused',
  'd0000000-0000-4000-8000-0000000000a1') ->> 'new_status', 'paused', 'a mentor pauses itself');
select throws_ok($$select public.update_mentor_status('e0000000-0000-4000-8000-0000000000a2', 'active',
  'd0000000-0000-4000-8000-0000000000a1')$$, '42501', null, 'a mentor may not change another mentor');
select throws_ok($$select public.update_mentor_status('e0000000-0000-4000-8000-0000000000a1', 'active',
  'd0000000-0000-4000-8000-0000000000a1', null, null, 'certification_expiry:not-a-uuid:x')$$,
  '42501', null, 'the job''s request ids are the service role''s alone');
reset role;

-- As a coordinator of the mentor's organisation, and of no other.
set local role authenticated;
select set_config('request.jwt.claims',
  '{"role": "authenticated", "sub": "c0000000-0000-4000-8000-0000000000a1"}', true);
select is(public.update_mentor_status('e0000000-0000-4000-8000-0000000000a1', 'active',
  'c0000000-0000-4000-8000-0000000000a1') ->> 'new_status', 'active', 'a coordinator reactivates a mentor');
select throws_ok($$select public.update_mentor_status('e0000000-0000-4000-8000-0000000000a3', 'active',
  'c0000000-0000-4000-8000-0000000000a1')$$, '42501', null, 'not a coordinator of that organisation');
reset role;

select * from finish();
rollback;
