-- Expiry dates the job can read. PostgreSQL's date takes 'infinity', '-infinity'
-- and years from 4713 BC to 5874897; the job (Python's date) reads years 1 to 9999.
-- One active mentor with '-infinity' made a candidate page unreadable and stopped
-- the whole night. Such dates are refused where they enter; the ones already there
-- are moved to the nearest date that means the same: '-infinity' and dates before
-- year 1 (expired since ever) to 0001-01-01, 'infinity' and dates after 9999 (never
-- expires) to 9999-12-31. The job still treats a row it cannot read as that
-- mentor's failure, never the run's.
--
-- NOT VALID here, VALIDATE in the next migration: adding the constraint takes
-- only a brief lock, and the scan that checks the existing rows then runs in a
-- transaction of its own, under a lock that lets reads and writes go on.

-- Give up rather than queue the app's queries behind a lock (migration safety, .squawk.toml).
set local lock_timeout = '5s';
set local statement_timeout = '60s';

alter table public.peer_mentors
  add constraint peer_mentors_certification_expiry_date_readable check (
    certification_expiry_date between date '0001-01-01' and date '9999-12-31'
  ) not valid;

update public.peer_mentors
set certification_expiry_date = case
  when certification_expiry_date < date '0001-01-01' then date '0001-01-01'
  else date '9999-12-31'
end
where certification_expiry_date not between date '0001-01-01' and date '9999-12-31';
