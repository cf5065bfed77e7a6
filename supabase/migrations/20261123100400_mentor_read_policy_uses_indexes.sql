-- The mentors' read policy, written so that both of its indexes serve it.
-- `organization_id in (subquery)` makes the planner join against the
-- subquery, and with the `or` beside it that became a sequential scan of
-- peer_mentors on every read (24 ms at 200,000 mentors). `= any (array(…))`
-- evaluates the coordinator's organisations once, as an init plan, and leaves
-- two index conditions the planner combines (BitmapOr on the user_id and
-- organization_id indexes): `make bench`, scenario rls_scale.
-- `(select auth.uid())` stays wrapped, evaluated once per statement (lint 0003).

-- Give up rather than queue the app's queries behind a lock (migration safety, .squawk.toml).
set local lock_timeout = '5s';
set local statement_timeout = '60s';

drop policy "mentors read themselves, coordinators their organisations" on public.peer_mentors;

create policy "mentors read themselves, coordinators their organisations"
  on public.peer_mentors for select to authenticated
  using (
    user_id = (select auth.uid())
    or organization_id = any (array(
      select c.organization_id from public.organization_coordinators c
      where c.user_id = (select auth.uid())
    ))
  );
