-- The certification expiry job's own records: one row per run, and one audit row
-- per mentor the run paused. Only the job (service_role) reads or writes them.

-- Give up rather than queue the app's queries behind a lock (migration safety, .squawk.toml).
set local lock_timeout = '5s';
set local statement_timeout = '60s';

create table public.certification_expiry_runs (
  id uuid primary key,
  trigger text not null
    constraint certification_expiry_runs_trigger_check check (trigger in ('scheduled', 'manual')),
  dry_run boolean not null default false,
  -- The coordinator who started a manual run (null: the system), and the
  -- organisations that run was limited to (null: all of them).
  actor_id uuid,
  organization_ids uuid[],
  started_at timestamptz not null default now(),
  finished_at timestamptz,
  status text not null default 'running'
    constraint certification_expiry_runs_status_check
    check (status in ('running', 'succeeded', 'partial', 'failed')),
  candidate_count integer not null default 0,
  paused_count integer not null default 0,
  skipped_count integer not null default 0,
  error_count integer not null default 0,
  -- The run lease: while a running run's lease is in the future no other run may
  -- start; a run that crashed stops holding it once this time has passed.
  lease_expires_at timestamptz not null,
  constraint certification_expiry_runs_finished_check
    check ((status = 'running') = (finished_at is null))
);

-- The compliance check asks for the last successful run.
create index if not exists certification_expiry_runs_status_finished_idx
  on public.certification_expiry_runs (status, finished_at desc);

create table public.certification_expiry_audit (
  job_run_id uuid not null references public.certification_expiry_runs (id),
  mentor_id uuid not null references public.peer_mentors (id),
  certification_expiry_date date,
  old_status text not null,
  new_status text not null,
  history_id bigint not null references public.mentor_status_history (id),
  -- The database's clock, never the function's: the record must not depend on
  -- the clock of whichever machine ran the job.
  changed_at timestamptz not null default now(),
  primary key (job_run_id, mentor_id)
);

create index if not exists certification_expiry_audit_mentor_id_idx on public.certification_expiry_audit (mentor_id);
create index if not exists certification_expiry_audit_history_id_idx on public.certification_expiry_audit (history_id);

alter table public.certification_expiry_runs enable row level security;
alter table public.certification_expiry_audit enable row level security;

-- No policy for anon or authenticated: with RLS on they see nothing, and without
-- the write grants Supabase hands out they cannot even try.
revoke all on public.certification_expiry_runs, public.certification_expiry_audit
  from anon, authenticated;
