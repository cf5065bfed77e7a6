-- Peer mentors, who coordinates them, and the history of every status change.

-- Give up rather than queue the app's queries behind a lock (migration safety, .squawk.toml).
set local lock_timeout = '5s';
set local statement_timeout = '60s';

create table public.peer_mentors (
  id uuid primary key default gen_random_uuid(),
  -- Organisations live in the wider application; here they are only a grouping key.
  organization_id uuid not null,
  -- The mentor's own login, if the mentor has one; it lets mentors pause themselves.
  user_id uuid references auth.users (id) on delete set null,
  full_name text,
  status text not null default 'active'
    constraint peer_mentors_status_check check (status in ('active', 'paused', 'inactive')),
  -- Null means no certification is tracked for this mentor: never auto-paused.
  certification_expiry_date date,
  -- Bumped by every transition so that callers can detect a concurrent change.
  status_version integer not null default 0
    constraint peer_mentors_status_version_check check (status_version >= 0),
  status_changed_at timestamptz,
  created_at timestamptz not null default now()
);

create index if not exists peer_mentors_organization_id_idx on public.peer_mentors (organization_id);
create index if not exists peer_mentors_user_id_idx on public.peer_mentors (user_id);

create table public.organization_coordinators (
  organization_id uuid not null,
  user_id uuid not null references auth.users (id) on delete cascade,
  primary key (organization_id, user_id)
);

-- Policies look coordinators up by user, so that lookup must not scan the table.
create index if not exists organization_coordinators_user_id_idx on public.organization_coordinators (user_id);

create table public.mentor_status_history (
  -- An identity, not a uuid: for one mentor the ids follow the order in which the
  -- row lock let the transitions happen, so the history reads as a chain.
  id bigint generated always as identity primary key,
  -- No cascade: the history is a compliance record and outlives nothing it describes.
  mentor_id uuid not null references public.peer_mentors (id),
  old_status text not null,
  new_status text not null,
  -- Null when the system made the change; no foreign key, so that deleting a user
  -- never rewrites who did what.
  actor_id uuid,
  reason text,
  changed_at timestamptz not null default now(),
  request_id text,
  -- The idempotency key: a retried call with the same request id finds this row.
  -- Its leading column also serves the foreign key to peer_mentors.
  constraint mentor_status_history_request_id_key unique (mentor_id, request_id)
);
