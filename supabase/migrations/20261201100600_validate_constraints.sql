-- The constraints added NOT VALID, validated: each checks the rows that were there
-- before it. VALIDATE CONSTRAINT takes a SHARE UPDATE EXCLUSIVE lock, so the app
-- reads and writes the tables while the scan runs; in a transaction of its own, as
-- every migration file is, not the one that added the constraint and held an
-- ACCESS EXCLUSIVE lock.
--
-- certification_expiry_runs: a run recorded before the ledger was strict could
-- hold a negative count or more outcomes than candidates, and VALIDATE would then
-- fail the whole deploy. Such a count is put right first: a negative one to 0, and
-- the candidates to at least the outcomes the run reported (it cannot have had
-- fewer). peer_mentors' expiry dates were put right where their constraint was added.

-- Give up rather than queue the app's queries behind a lock (migration safety, .squawk.toml).
set local lock_timeout = '5s';
set local statement_timeout = '60s';

update public.certification_expiry_runs
set candidate_count = greatest(candidate_count, 0, greatest(paused_count, 0) + greatest(skipped_count, 0) + greatest(error_count, 0)),
    paused_count = greatest(paused_count, 0),
    skipped_count = greatest(skipped_count, 0),
    error_count = greatest(error_count, 0)
where not (
  candidate_count >= 0 and paused_count >= 0 and skipped_count >= 0 and error_count >= 0
  and paused_count + skipped_count + error_count <= candidate_count
);

alter table public.certification_expiry_runs validate constraint certification_expiry_runs_counts_check;
alter table public.peer_mentors validate constraint peer_mentors_certification_expiry_date_readable;
