-- What the Data API and pg_graphql show, to whom. Row level security hides rows,
-- not names: pg_graphql's introspection lists every relation a role may SELECT,
-- with its columns, to anyone holding the publishable (anon) key (Supabase's
-- advisor lints 0026 and 0027). Supabase's default privileges grant anon and
-- authenticated everything new in public, so this migration takes back what they
-- do not need.

-- anon needs nothing in public: a chapter website lists mentors server-side
-- (listed_peer_mentors, with the secret key), and every other caller signs in.

-- Give up rather than queue the app's queries behind a lock (migration safety, .squawk.toml).
set local lock_timeout = '5s';
set local statement_timeout = '60s';

revoke all on all tables in schema public from anon;
alter default privileges in schema public revoke all on tables from anon;

-- Nobody but the owner and the service role draws from the sequences: history
-- rows are inserted by update_mentor_status, which runs as its owner.
revoke all on all sequences in schema public from anon, authenticated;
alter default privileges in schema public revoke all on sequences from anon, authenticated;

-- Deliberate exceptions to lint 0027 (authenticated_table_exposed): signed-in
-- users read these through the Data API, under row level security, so their
-- names and columns are visible to any signed-in user by design:
--   peer_mentors, organization_coordinators, mentor_status_history (a mentor's
--   own record, a coordinator's organisations), expired_active_mentors,
--   listed_peer_mentors, certification_expiry_audit and
--   certification_expiry_pauses (a coordinator's follow-up).
-- certification_expiry_runs stays closed to them (revoked where it is created).
-- tests/database/test_database_conventions.py lists these by name, so a new
-- relation readable by authenticated fails it until it is added here, on purpose.
