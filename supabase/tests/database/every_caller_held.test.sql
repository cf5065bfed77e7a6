-- Every caller held to the rules (migration every_caller_held): request ids that
-- name one call, pauses nobody ends on their own record, renewals that never
-- shorten a valid certification, printable text, reserved reasons and prefixes,
-- the state machine's own mark. Each rule for each kind of caller it concerns,
-- "a coordinator who is also a mentor of the organisation" among them.
begin;
create extension if not exists pgtap with schema extensions;
select plan(36);

insert into auth.users (id) values
  ('c0000000-0000-4000-8000-0000000000d1'),  -- coordinator of a…d1, and mentor e…d1 of it
  ('c0000000-0000-4000-8000-0000000000d2'),  -- another coordinator of a…d1
  ('d0000000-0000-4000-8000-0000000000d3');  -- mentor e…d3's login
insert into public.organization_coordinators (organization_id, user_id) values
  ('a0000000-0000-4000-8000-0000000000d1', 'c0000000-0000-4000-8000-0000000000d1'),
  ('a0000000-0000-4000-8000-0000000000d1', 'c0000000-0000-4000-8000-0000000000d2');
-- d1: the coordinator's own record, valid for a year; d2: valid until 2030-01-01;
-- d3: a mentor with a login, valid for a year; d4: expired, active; d5: valid, active.
insert into public.peer_mentors (id, organization_id, user_id, status, certification_expiry_date) values
  ('e0000000-0000-4000-8000-0000000000d1', 'a0000000-0000-4000-8000-0000000000d1',
   'c0000000-0000-4000-8000-0000000000d1', 'active', public.certification_today() + 365),
  ('e0000000-0000-4000-8000-0000000000d2', 'a0000000-0000-4000-8000-0000000000d1',
   null, 'active', date '2030-01-01'),
  ('e0000000-0000-4000-8000-0000000000d3', 'a0000000-0000-4000-8000-0000000000d1',
   'd0000000-0000-4000-8000-0000000000d3', 'active', public.certification_today() + 365),
  ('e0000000-0000-4000-8000-0000000000d4', 'a0000000-0000-4000-8000-0000000000d1',
   null, 'active', public.certification_today() - 3),
  ('e0000000-0000-4000-8000-0000000000d5', 'a0000000-0000-4000-8000-0000000000d1',
   null, 'active', public.certification_today() + 100);

create function pg_temp.act_as(p_sub text) returns void language sql as $$
  select set_config('request.jwt.claims', json_build_object('role', 'authenticated', 'sub', p_sub)::text, true);
  set local role authenticated;
$$;
create function pg_temp.as_service() returns void language sql as $$
  select set_config('request.jwt.claims', '{"role": "service_role"}', true);
  set local role service_role;
$$;

-- Nobody ends a pause of their own record that someone else made.
select pg_temp.act_as('c0000000-0000-4000-8000-0000000000d2');
select is(public.update_mentor_status('e0000000-0000-4000-8000-0000000000d1', 'paused',
  'c0000000-0000-4000-8000-0000000000d2', 'suspended pending review') ->> 'new_status', 'paused',
  'a colleague suspends a coordinator''s own mentor record');
reset role;
select pg_temp.act_as('c0000000-0000-4000-8000-0000000000d1');
select throws_ok($$select public.update_mentor_status('e0000000-0000-4000-8000-0000000000d1', 'active',
  'c0000000-0000-4000-8000-0000000000d1')$$, '42501', null,
  'the coordinator who is also that mentor may not end it');
select is((select status from public.peer_mentors where id = 'e0000000-0000-4000-8000-0000000000d1'), 'paused',
  'and the record stays paused');
reset role;
select pg_temp.act_as('c0000000-0000-4000-8000-0000000000d2');
select is(public.update_mentor_status('e0000000-0000-4000-8000-0000000000d1', 'active',
  'c0000000-0000-4000-8000-0000000000d2') ->> 'new_status', 'active', 'the colleague ends it');
reset role;
select pg_temp.act_as('c0000000-0000-4000-8000-0000000000d1');
select is(public.update_mentor_status('e0000000-0000-4000-8000-0000000000d1', 'paused',
  'c0000000-0000-4000-8000-0000000000d1', 'on leave') ->> 'new_status', 'paused',
  'the coordinator pauses their own record');
select is(public.update_mentor_status('e0000000-0000-4000-8000-0000000000d1', 'active',
  'c0000000-0000-4000-8000-0000000000d1') ->> 'new_status', 'active', 'and ends that pause, their own');
reset role;

-- A pause the job made is the system's, even when a coordinator's run made it.
select pg_temp.as_service();
select is(public.update_mentor_status('e0000000-0000-4000-8000-0000000000d3', 'paused',
  'c0000000-0000-4000-8000-0000000000d1', 'certification_expired', null,
  'certification_expiry:00000000-0000-4000-8000-0000000000d1:e0000000-0000-4000-8000-0000000000d3') ->> 'new_status',
  'paused', 'a coordinator''s run pauses mentor d3 with the job''s request id');
reset role;
select pg_temp.act_as('d0000000-0000-4000-8000-0000000000d3');
select throws_ok($$select public.update_mentor_status('e0000000-0000-4000-8000-0000000000d3', 'active',
  'd0000000-0000-4000-8000-0000000000d3')$$, '42501', null, 'the mentor may not end the job''s pause');
reset role;
select pg_temp.act_as('c0000000-0000-4000-8000-0000000000d2');
select is(public.update_mentor_status('e0000000-0000-4000-8000-0000000000d3', 'active',
  'c0000000-0000-4000-8000-0000000000d2') ->> 'new_status', 'active', 'a coordinator of the organisation may');
reset role;

-- Printable, bounded text; the system's reasons and request ids are the system's.
select pg_temp.act_as('d0000000-0000-4000-8000-0000000000d3');
select throws_ok($$select public.update_mentor_status('e0000000-0000-4000-8000-0000000000d3', 'paused',
  'd0000000-0000-4000-8000-0000000000d3', E'holiday\n[system] paused by the nightly job')$$, '22023', null,
  'a reason with a line break is refused');
select throws_ok($$select public.update_mentor_status('e0000000-0000-4000-8000-0000000000d3', 'paused',
  'd0000000-0000-4000-8000-0000000000d3', E'holiday \u202e')$$, '22023', null,
  'a reason with a bidi override is refused');
select throws_ok($$select public.update_mentor_status('e0000000-0000-4000-8000-0000000000d3', 'paused',
  'd0000000-0000-4000-8000-0000000000d3', null, null, E'id\twith tab')$$, '22023', null,
  'a request id with a control character is refused');
select throws_ok($$select public.update_mentor_status('e0000000-0000-4000-8000-0000000000d3', 'paused',
  'd0000000-0000-4000-8000-0000000000d3', 'certification_expired')$$, '22023', null,
  'a signed-in user may not give the system''s reason');
select throws_ok($$select public.update_mentor_status('e0000000-0000-4000-8000-0000000000d3', 'paused',
  'd0000000-0000-4000-8000-0000000000d3', ' Certification_Renewed ')$$, '22023', null,
  'in any case or spacing');
select throws_ok($$select public.update_mentor_status('e0000000-0000-4000-8000-0000000000d3', 'paused',
  'd0000000-0000-4000-8000-0000000000d3', null, null, 'CERTIFICATION_EXPIRY:x')$$, '42501', null,
  'the job''s prefix is reserved in upper case');
select throws_ok($$select public.update_mentor_status('e0000000-0000-4000-8000-0000000000d3', 'paused',
  'd0000000-0000-4000-8000-0000000000d3', null, null, '  certification_expiry:x')$$, '42501', null,
  'and after leading spaces');
select is((select count(*)::int from public.mentor_status_history
           where mentor_id = 'e0000000-0000-4000-8000-0000000000d3' and new_status = 'paused'), 1,
  'none of those refusals wrote anything');
reset role;
select pg_temp.as_service();
select throws_ok($$select public.update_mentor_status('e0000000-0000-4000-8000-0000000000d5', 'paused', null,
  E'nightly\r\nrun')$$, '22023', null, 'the service role''s text is held to it too');
reset role;

-- A request id names one call.
select pg_temp.act_as('c0000000-0000-4000-8000-0000000000d2');
select is(public.update_mentor_status('e0000000-0000-4000-8000-0000000000d5', 'paused',
  'c0000000-0000-4000-8000-0000000000d2', 'review', null, 'X') ->> 'replayed', 'false', 'a pause under request id X');
select is(public.update_mentor_status('e0000000-0000-4000-8000-0000000000d5', 'paused',
  'c0000000-0000-4000-8000-0000000000d2', 'review', null, 'X') ->> 'replayed', 'true', 'the same call again replays');
select throws_ok($$select public.update_mentor_status('e0000000-0000-4000-8000-0000000000d5', 'paused',
  'c0000000-0000-4000-8000-0000000000d2', 'another reason', null, 'X')$$, '22023', null,
  'X with another reason names another call');
select is(public.update_mentor_status('e0000000-0000-4000-8000-0000000000d5', 'active',
  'c0000000-0000-4000-8000-0000000000d2', 'done', null, 'Y') ->> 'new_status', 'active', 'a resume under Y');
reset role;
update public.peer_mentors set certification_expiry_date = public.certification_today() - 1
where id = 'e0000000-0000-4000-8000-0000000000d5';
select pg_temp.as_service();
select is(public.update_mentor_status('e0000000-0000-4000-8000-0000000000d5', 'paused', null,
  'certification_expired') ->> 'new_status', 'paused', 'the mentor expires and the job pauses them');
reset role;
select pg_temp.act_as('c0000000-0000-4000-8000-0000000000d2');
select throws_ok($$select public.record_certification_renewal('e0000000-0000-4000-8000-0000000000d5',
  public.certification_today() + 365, 'c0000000-0000-4000-8000-0000000000d2', null, true, 'Y')$$, '22023', null,
  'a renewal under the old resume''s id Y is refused');
select is((select status || ' ' || certification_expiry_date::text from public.peer_mentors
           where id = 'e0000000-0000-4000-8000-0000000000d5'),
  'paused ' || (public.certification_today() - 1)::text, 'and changed nothing');
select is(public.record_certification_renewal('e0000000-0000-4000-8000-0000000000d5',
  public.certification_today() + 365, 'c0000000-0000-4000-8000-0000000000d2', null, true, 'Z') ->> 'status',
  'active', 'under a new id the renewal ends the pause');
select is((select status from public.peer_mentors where id = 'e0000000-0000-4000-8000-0000000000d5'), 'active',
  'and the mentor is active, as the renewal says');
select throws_ok($$select public.update_mentor_status('e0000000-0000-4000-8000-0000000000d5', 'active',
  'c0000000-0000-4000-8000-0000000000d2', null, null, 'Z')$$, '22023', null,
  'the renewal''s id never replays as a status change');
reset role;

-- A coordinator's renewal never moves a still-valid date earlier; the service role may.
select pg_temp.act_as('c0000000-0000-4000-8000-0000000000d2');
select throws_ok($$select public.record_certification_renewal('e0000000-0000-4000-8000-0000000000d2',
  public.certification_today(), 'c0000000-0000-4000-8000-0000000000d2')$$, '22023', null,
  'a coordinator may not shorten a certification valid until 2030');
select is(public.record_certification_renewal('e0000000-0000-4000-8000-0000000000d2',
  date '2031-01-01', 'c0000000-0000-4000-8000-0000000000d2') ->> 'new_expiry_date', '2031-01-01',
  'but may extend it');
select is(public.record_certification_renewal('e0000000-0000-4000-8000-0000000000d4',
  public.certification_today(), 'c0000000-0000-4000-8000-0000000000d2') ->> 'new_expiry_date',
  public.certification_today()::text, 'and may renew an expired one to any valid date');
reset role;
select pg_temp.as_service();
select is(public.record_certification_renewal('e0000000-0000-4000-8000-0000000000d2',
  public.certification_today() + 30, null, 'typo in 2031') ->> 'new_expiry_date',
  (public.certification_today() + 30)::text, 'the service role corrects a wrong date');
select is((select count(*)::int from public.certification_renewals where mentor_id = 'e0000000-0000-4000-8000-0000000000d2'),
  2, 'recorded like any renewal');
reset role;

-- The state machine's own refusal, and only it, carries its mark.
select pg_temp.as_service();
select throws_like($$select public.update_mentor_status('e0000000-0000-4000-8000-0000000000d2', 'active')$$,
  '%cannot go from active to active%', 'a transition not in the table is refused');
reset role;
select is((select (public.update_mentor_status('e0000000-0000-4000-8000-0000000000d4', 'inactive')) ->> 'new_status'),
  'inactive', 'leaving is open');
do $$
declare
  v_detail text;
begin
  perform public.update_mentor_status('e0000000-0000-4000-8000-0000000000d4', 'paused');
exception when raise_exception then
  get stacked diagnostics v_detail = pg_exception_detail;
  perform set_config('test.detail', v_detail, true);
end
$$;
select is(current_setting('test.detail'), 'transition_not_allowed', 'with DETAIL transition_not_allowed');

select * from finish();
rollback;
