"""`make run`: the job end to end on the local stack, as Cloud Scheduler would run it.

Expects `make stack` to have run (the Makefile does that first). Resets the demo
data from supabase/seed.sql, serves main.py with the functions-framework CLI,
POSTs to it with the secret key and Cloud Scheduler's headers, prints its
readable log (LOG_FORMAT=text) and the summary, and shows which mentors are now
paused as the coordinator of the Oslo chapter sees them in
certification_expiry_pauses, signed in with their own (ES256) session.
"""

from __future__ import annotations

import json
import sys
import time
from typing import Any, cast

import httpx
from supabase import ClientOptions, create_client

from local_supabase.keys import user_access_token
from local_supabase.stack import ENV_FILE, reset_demo_data, signing_key
from tools.local_function import served_function

OSLO_COORDINATOR = "c0000000-0000-4000-8000-000000000001"

# Supabase's current keys only: the secret key, and user tokens checked against the JWKS.
FUNCTION_ENV = ("SUPABASE_URL", "SUPABASE_SECRET_KEY")


def read_env_file() -> dict[str, str]:
    pairs = (line.split("=", 1) for line in ENV_FILE.read_text().splitlines() if "=" in line)
    return {name: value for name, value in pairs}


def main() -> int:
    stack = read_env_file()
    reset_demo_data()
    print("Demo data loaded from supabase/seed.sql.\n")

    environment = {**{name: stack[name] for name in FUNCTION_ENV}, "LOG_FORMAT": "text"}
    with served_function("certification_expiry_job", environment) as url:
        response = httpx.post(
            url,
            headers={
                "Authorization": f"Bearer {stack['SUPABASE_SECRET_KEY']}",
                "X-CloudScheduler-JobName": "certification-expiry-nightly",
                "X-CloudScheduler-ScheduleTime": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
            },
            timeout=120,
        )

    print(f"\nThe function answered HTTP {response.status_code}:")
    print(json.dumps(response.json(), indent=2))

    # What the Oslo chapter's coordinator sees from the admin interface: the
    # publishable key, and their own session, signed as Supabase Auth signs it.
    coordinator = create_client(stack["SUPABASE_URL"], stack["SUPABASE_PUBLISHABLE_KEY"], ClientOptions())
    session = user_access_token(signing_key(), OSLO_COORDINATOR, issuer=f"{stack['SUPABASE_URL']}/auth/v1")
    coordinator.postgrest.auth(session)
    pauses = (
        coordinator.table("certification_expiry_pauses")
        .select("full_name, certification_expiry_date, paused_at, actor_id")
        .order("full_name")
        .execute()
        .data
    )
    print("\nThe Oslo coordinator's view of the pauses (certification_expiry_pauses):")
    for row in cast(list[dict[str, Any]], pauses):
        actor = row["actor_id"] or "the nightly job"
        print(f"  {row['full_name']:<18} certification expired {row['certification_expiry_date']}  paused by {actor}")
    print("\nThe local stack is still running; stop it with `make stack-down`.")
    return 0 if response.status_code == 200 else 1


if __name__ == "__main__":
    sys.exit(main())
