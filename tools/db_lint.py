"""`make lint`'s database half: the Supabase CLI's own checks on a fresh push.

`supabase db advisors --fail-on warn` (splinter) on PostgreSQL 17, as new hosted
projects run; `supabase db lint --fail-on warning` (plpgsql_check over every
function) on Debian's PostgreSQL 15, the only server here with plpgsql_check.
"""

from __future__ import annotations

import sys

from local_supabase.ephemeral import throwaway_cluster
from local_supabase.postgres import DEBIAN_POSTGRES_15, SupabaseCliError, supabase_cli


def main() -> int:
    try:
        with throwaway_cluster() as cluster:
            url = f"{cluster.dsn}?sslmode=disable"
            print(supabase_cli("db", "advisors", "--db-url", url, "--level", "warn", "--fail-on", "warn").strip())
        with throwaway_cluster(bindir=DEBIAN_POSTGRES_15) as cluster:
            url = f"{cluster.dsn}?sslmode=disable"
            lint = ("db", "lint", "--db-url", url, "--schema", "public,private", "--fail-on", "warning")
            print(supabase_cli(*lint).strip())
    except SupabaseCliError as error:
        print(error, file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
