-- Recording a renewal: the one way a certification's expiry date changes through
-- the API. Coordinators have no write grant on peer_mentors (rightly), so before
-- this migration a renewal needed the database owner, and a coordinator could only
-- reactivate a still-expired mentor, whom the next night paused again.
--
-- record_certification_renewal locks the mentor, sets the new date, writes one
-- certification_renewals row in the same transaction and, with p_reactivate and
-- the mentor paused, ends the pause through update_mentor_status, so the rules of
-- the ending_a_pause migration and its history row are the same ones.
--
-- A renewal also bumps status_version, the optimistic-locking field: the nightly
-- job pauses with the version it read, so a renewal committed between its read and
-- its pause turns the pause into PT409, the job reads the mentor again, finds it no
-- longer expired and skips it. Without the bump the job would pause a mentor whose
-- renewal had just been recorded.
--
-- Deliberate exception to lint 0027 (authenticated_table_exposed): signed-in users
-- read certification_renewals under row level security, as they read the history.
-- Deliberate exception to lint 0029 (authenticated_security_definer_function_executable):
-- coordinators call it through the Data API; it checks the caller itself, as
-- update_mentor_status does.

-- Give up rather than queue the app's queries behind a lock (migration safety, .squawk.toml).
set local lock_timeout = '5s';
set local statement_timeout = '60s';

create table public.certification_renewals (
  -- An identity, as the history's: for one mentor the ids follow the row lock's order.
  id bigint generated always as identity primary key,
  -- No cascade: a compliance record outlives nothing it describes.
  mentor_id uuid not null references public.peer_mentors (id),
  old_expiry_date date,
  new_expiry_date date not null,
  -- Null when the system recorded it (the service role without an actor).
  actor_id uuid,
  reason text,
  changed_at timestamptz not null default now(),
  request_id text,
  -- The mentor's status and status_version after the call, so that a replay
  -- answers what the renewal produced rather than what the mentor is now.
  status text not null,
  status_version integer not null,
  -- The idempotency key; its leading column also serves the foreign key.
  constraint certification_renewals_request_id_key unique (mentor_id, request_id)
);

alter table public.certification_renewals enable row level security;

-- Nobody writes it but the RPC (definer rights). anon's rights on tables are
-- already taken back by default (api_exposure); said again here for the reader.
revoke all on public.certification_renewals from anon;
revoke insert, update, delete, truncate, references, trigger on public.certification_renewals from authenticated;
grant select on public.certification_renewals to authenticated;

-- A renewal is visible exactly when its mentor is: the mentor their own, a
-- coordinator their organisations' (the subquery is filtered by peer_mentors' policy).
create policy "renewals follow the visibility of their mentor"
  on public.certification_renewals for select to authenticated
  using (mentor_id in (select m.id from public.peer_mentors m));

-- What record_certification_renewal answers, for a new renewal and for a replay alike.
create function public.certification_renewal_result(p_renewal public.certification_renewals, p_replayed boolean)
returns jsonb language sql immutable set search_path = '' as $$
  select to_jsonb(answer) from (
    select (p_renewal).mentor_id, (p_renewal).old_expiry_date, (p_renewal).new_expiry_date, (p_renewal).status,
      (p_renewal).status_version, (p_renewal).id as renewal_id, (p_renewal).changed_at, p_replayed as replayed
  ) answer
$$;

revoke execute on function public.certification_renewal_result from public, anon, authenticated, service_role;

create function public.record_certification_renewal(
  p_mentor_id uuid, p_new_expiry_date date, p_actor_id uuid default null, p_reason text default null,
  p_reactivate boolean default false, p_request_id text default null
) returns jsonb language plpgsql security definer set search_path = '' as $$
declare
  -- The typo guard: no certification this project tracks runs longer than this.
  -- A date past it (2205 for 2025) is refused rather than silently trusted.
  v_latest date := public.certification_today() + interval '10 years';
  v_caller text := public.check_mentor_change_caller(p_mentor_id, p_actor_id, p_reason, p_request_id);
  v_mentor public.peer_mentors%rowtype;
  v_renewal public.certification_renewals%rowtype;
  v_old_expiry_date date;
  v_transition jsonb;
begin
  if p_new_expiry_date is null then
    raise exception 'p_new_expiry_date must not be null' using errcode = '22023';
  end if;
  -- The same lock as update_mentor_status: a renewal and a transition of one
  -- mentor never interleave.
  v_mentor := public.lock_mentor_for_change(p_mentor_id);
  if v_caller = 'authenticated' then
    -- Nobody certifies themselves, not even a mentor who also coordinates.
    if v_mentor.user_id is not distinct from p_actor_id then
      raise exception 'a mentor may not record their own renewal; a coordinator of the organisation records it'
        using errcode = '42501';
    end if;
    if not public.is_organization_coordinator(v_mentor.organization_id, p_actor_id) then
      raise exception 'user % is not a coordinator of the organisation of mentor %', p_actor_id, p_mentor_id
        using errcode = '42501';
    end if;
  end if;

  -- A retry after a lost answer: the renewal it recorded, again.
  select * into v_renewal from public.certification_renewals where mentor_id = p_mentor_id and request_id = p_request_id;
  if found then
    perform public.check_replay_matches(
      p_request_id, p_mentor_id, 'renewed', v_renewal.new_expiry_date::text, p_new_expiry_date::text
    );
    return public.certification_renewal_result(v_renewal, true);
  end if;

  if p_new_expiry_date < public.certification_today() or p_new_expiry_date > v_latest then
    raise exception 'the new expiry date % must be between % (today in Oslo) and %', p_new_expiry_date,
      public.certification_today(), v_latest
      using errcode = '22023';
  end if;

  v_old_expiry_date := v_mentor.certification_expiry_date;
  update public.peer_mentors
  set certification_expiry_date = p_new_expiry_date,
      status_version = status_version + 1
  where id = p_mentor_id
  returning * into v_mentor;

  if coalesce(p_reactivate, false) and v_mentor.status = 'paused' then
    -- The rules for ending a pause, and the history row, are update_mentor_status's;
    -- it runs as the same caller (the role setting and auth.uid() are unchanged).
    v_transition := public.update_mentor_status(
      p_mentor_id, 'active', p_actor_id, coalesce(p_reason, 'certification_renewed'), v_mentor.status_version,
      p_request_id
    );
    v_mentor.status := v_transition ->> 'new_status';
    v_mentor.status_version := (v_transition ->> 'status_version')::integer;
  end if;

  insert into public.certification_renewals
    (mentor_id, old_expiry_date, new_expiry_date, actor_id, reason, request_id, status, status_version)
  values (
    p_mentor_id, v_old_expiry_date, p_new_expiry_date, p_actor_id, p_reason, p_request_id,
    v_mentor.status, v_mentor.status_version
  )
  returning * into v_renewal;

  return public.certification_renewal_result(v_renewal, false);
end
$$;

-- The name alone is enough: record_certification_renewal has one signature.
revoke execute on function public.record_certification_renewal from public, anon;
grant execute on function public.record_certification_renewal to authenticated, service_role;
