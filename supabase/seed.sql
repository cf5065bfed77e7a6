-- Demo data for `supabase db reset` and `make run`: two organisations, their
-- coordinators, and mentors in every status with expired, expiring-today, future
-- and no certification. Dates are relative to today in Oslo, as the job sees it.

insert into auth.users (id, email) values
  ('c0000000-0000-4000-8000-000000000001', 'coordinator@oslo.example.org'),
  ('c0000000-0000-4000-8000-000000000002', 'coordinator@bergen.example.org'),
  ('d0000000-0000-4000-8000-000000000001', 'ingrid.mentor@example.org'),
  ('d0000000-0000-4000-8000-000000000002', 'ola.mentor@example.org');

-- Organisation a…01 is the Oslo chapter, a…02 the Bergen chapter.
insert into public.organization_coordinators (organization_id, user_id) values
  ('a0000000-0000-4000-8000-000000000001', 'c0000000-0000-4000-8000-000000000001'),
  ('a0000000-0000-4000-8000-000000000002', 'c0000000-0000-4000-8000-000000000002');

with oslo_today as (select (now() at time zone 'Europe/Oslo')::date as today)
insert into public.peer_mentors (id, organization_id, user_id, full_name, status, certification_expiry_date)
select m.id::uuid, m.organization_id::uuid, m.user_id::uuid, m.full_name, m.status, oslo_today.today + m.days_from_today
from oslo_today, (values
  -- Oslo: expired and still active, so the job pauses these four.
  ('e0000000-0000-4000-8000-000000000001', 'a0000000-0000-4000-8000-000000000001', 'd0000000-0000-4000-8000-000000000001', 'Ingrid Hansen', 'active', -30),
  ('e0000000-0000-4000-8000-000000000002', 'a0000000-0000-4000-8000-000000000001', null, 'Lars Johansen', 'active', -365),
  ('e0000000-0000-4000-8000-000000000003', 'a0000000-0000-4000-8000-000000000001', null, 'Kari Olsen', 'active', -1),
  ('e0000000-0000-4000-8000-000000000004', 'a0000000-0000-4000-8000-000000000001', null, 'Per Larsen', 'active', -2),
  -- Oslo: valid through today, valid for months, not tracked: left alone.
  ('e0000000-0000-4000-8000-000000000005', 'a0000000-0000-4000-8000-000000000001', null, 'Anne Andersen', 'active', 0),
  ('e0000000-0000-4000-8000-000000000006', 'a0000000-0000-4000-8000-000000000001', 'd0000000-0000-4000-8000-000000000002', 'Ola Pedersen', 'active', 180),
  ('e0000000-0000-4000-8000-000000000007', 'a0000000-0000-4000-8000-000000000001', null, 'Liv Nilsen', 'active', null),
  -- Oslo: expired but no longer active: nothing to do.
  ('e0000000-0000-4000-8000-000000000008', 'a0000000-0000-4000-8000-000000000001', null, 'Nils Kristiansen', 'paused', -60),
  ('e0000000-0000-4000-8000-000000000009', 'a0000000-0000-4000-8000-000000000001', null, 'Eva Jensen', 'inactive', -400),
  -- Bergen: two expired and active, and one of each other kind.
  ('e0000000-0000-4000-8000-000000000010', 'a0000000-0000-4000-8000-000000000002', null, 'Sigrid Karlsen', 'active', -10),
  ('e0000000-0000-4000-8000-000000000011', 'a0000000-0000-4000-8000-000000000002', null, 'Bjørn Berg', 'active', -90),
  ('e0000000-0000-4000-8000-000000000012', 'a0000000-0000-4000-8000-000000000002', null, 'Hilde Haugen', 'active', 0),
  ('e0000000-0000-4000-8000-000000000013', 'a0000000-0000-4000-8000-000000000002', null, 'Tor Hagen', 'active', 30),
  ('e0000000-0000-4000-8000-000000000014', 'a0000000-0000-4000-8000-000000000002', null, 'Marit Eriksen', 'paused', 20),
  ('e0000000-0000-4000-8000-000000000015', 'a0000000-0000-4000-8000-000000000002', null, 'Knut Bakken', 'active', null)
) as m (id, organization_id, user_id, full_name, status, days_from_today);
