-- What each kind of caller sees of two organisations' mentors, their history and
-- the listing.
begin;
create extension if not exists pgtap with schema extensions;
select plan(13);

insert into auth.users (id) values
  ('d0000000-0000-4000-8000-0000000000b1'), ('c0000000-0000-4000-8000-0000000000b1'),
  ('c0000000-0000-4000-8000-0000000000b2');
insert into public.organization_coordinators (organization_id, user_id) values
  ('a0000000-0000-4000-8000-0000000000b1', 'c0000000-0000-4000-8000-0000000000b1'),
  ('a0000000-0000-4000-8000-0000000000b2', 'c0000000-0000-4000-8000-0000000000b2');
insert into public.peer_mentors (id, organization_id, user_id, status, certification_expiry_date) values
  ('e0000000-0000-4000-8000-0000000000b1', 'a0000000-0000-4000-8000-0000000000b1', 'd0000000-0000-4000-8000-0000000000b1', 'active', null),
  ('e0000000-0000-4000-8000-0000000000b2', 'a0000000-0000-4000-8000-0000000000b1', null, 'active', null),
  ('e0000000-0000-4000-8000-0000000000b3', 'a0000000-0000-4000-8000-0000000000b2', null, 'active', null);
select public.update_mentor_status(id, 'paused') from public.peer_mentors where id::text like 'e0000000-0000-4000-8000-0000000000b%';
select public.update_mentor_status(id, 'active') from public.peer_mentors where id::text like 'e0000000-0000-4000-8000-0000000000b%';
-- Expired after its history was made: nobody ends the pause of an expired mentor.
update public.peer_mentors set certification_expiry_date = current_date - 30
where id = 'e0000000-0000-4000-8000-0000000000b2';

create temporary view mine with (security_invoker = true) as
  select id::text from public.peer_mentors where id::text like 'e0000000-0000-4000-8000-0000000000b%';
grant select on mine to authenticated, anon;

-- A mentor: their own row and history.
set local role authenticated;
select set_config('request.jwt.claims', '{"role": "authenticated", "sub": "d0000000-0000-4000-8000-0000000000b1"}', true);
select results_eq('select * from mine', $$values ('e0000000-0000-4000-8000-0000000000b1')$$, 'a mentor sees itself');
select is((select count(*)::int from public.mentor_status_history where mentor_id::text like 'e0000000-0000-4000-8000-0000000000b%'),
  2, 'a mentor sees its own history');
select is((select count(*)::int from public.listed_peer_mentors where id::text like 'e0000000-0000-4000-8000-0000000000b%'),
  2, 'a mentor sees the public listing, every organisation''s');
reset role;

-- A coordinator: their organisation's mentors; the listing without the expired one.
set local role authenticated;
select set_config('request.jwt.claims', '{"role": "authenticated", "sub": "c0000000-0000-4000-8000-0000000000b1"}', true);
select results_eq('select * from mine order by 1',
  $$values ('e0000000-0000-4000-8000-0000000000b1'), ('e0000000-0000-4000-8000-0000000000b2')$$,
  'a coordinator sees its organisation');
select is((select count(*)::int from public.mentor_status_history where mentor_id::text like 'e0000000-0000-4000-8000-0000000000b%'),
  4, 'a coordinator sees its organisation''s history');
select results_eq($$select id::text from public.listed_peer_mentors where id::text like 'e0000000-0000-4000-8000-0000000000b%'$$,
  $$values ('e0000000-0000-4000-8000-0000000000b1'), ('e0000000-0000-4000-8000-0000000000b3')$$,
  'the listing leaves the expired mentor out');
select throws_ok('select count(*) from public.certification_expiry_runs', '42501', null,
  'the run ledger is closed to a coordinator');
reset role;

-- The other organisation's coordinator.
set local role authenticated;
select set_config('request.jwt.claims', '{"role": "authenticated", "sub": "c0000000-0000-4000-8000-0000000000b2"}', true);
select results_eq('select * from mine', $$values ('e0000000-0000-4000-8000-0000000000b3')$$,
  'a coordinator sees no other organisation');
reset role;

-- A signed-in user who is neither.
set local role authenticated;
select set_config('request.jwt.claims', '{"role": "authenticated", "sub": "f0000000-0000-4000-8000-000000000000"}', true);
select is_empty('select * from mine', 'a stranger sees nobody');
reset role;

-- anon (a chapter website's publishable key): the listing, and nothing else.
set local role anon;
select set_config('request.jwt.claims', '{"role": "anon"}', true);
select throws_ok('select count(*) from public.peer_mentors', '42501', null, 'anon may not read mentors');
select is((select count(*)::int from public.listed_peer_mentors where id::text like 'e0000000-0000-4000-8000-0000000000b%'),
  2, 'anon lists the valid active mentors');
reset role;

-- The service role: everyone.
set local role service_role;
select set_config('request.jwt.claims', '{"role": "service_role"}', true);
select is((select count(*)::int from public.peer_mentors where id::text like 'e0000000-0000-4000-8000-0000000000b%'),
  3, 'the service role sees every mentor');
select is((select count(*)::int from public.listed_peer_mentors where id::text like 'e0000000-0000-4000-8000-0000000000b%'),
  2, 'the service role lists every listed mentor');
reset role;

select * from finish();
rollback;
