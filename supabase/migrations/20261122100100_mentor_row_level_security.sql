-- Who may read what. Nobody writes mentor statuses or history except through
-- update_mentor_status (SECURITY DEFINER), so no write policy exists and the API
-- roles lose the write grants Supabase gives them by default.

-- Give up rather than queue the app's queries behind a lock (migration safety, .squawk.toml).
set local lock_timeout = '5s';
set local statement_timeout = '60s';

alter table public.peer_mentors enable row level security;
alter table public.organization_coordinators enable row level security;
alter table public.mentor_status_history enable row level security;

revoke insert, update, delete, truncate, references, trigger
  on public.peer_mentors, public.organization_coordinators, public.mentor_status_history
  from anon, authenticated;

-- `(select auth.uid())` is evaluated once per statement instead of once per row.
create policy "coordinators read their own memberships"
  on public.organization_coordinators for select to authenticated
  using (user_id = (select auth.uid()));

create policy "mentors read themselves, coordinators their organisations"
  on public.peer_mentors for select to authenticated
  using (
    user_id = (select auth.uid())
    or organization_id in (
      select c.organization_id from public.organization_coordinators c
      where c.user_id = (select auth.uid())
    )
  );

-- The subquery on peer_mentors is itself filtered by the policy above, so a
-- history row is visible exactly when its mentor is.
create policy "history follows the visibility of its mentor"
  on public.mentor_status_history for select to authenticated
  using (mentor_id in (select m.id from public.peer_mentors m));
