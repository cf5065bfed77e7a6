"""`make stack` / `make stack-down`: the local stand-in for `supabase start`.

PostgreSQL on 127.0.0.1:54322 and the gateway on http://127.0.0.1:54321, the
ports, paths, API keys and JWT secret of the Supabase CLI. Starting twice starts nothing
twice; stopping leaves nothing running (the database files are kept, as
`supabase stop` keeps its volume). State lives in `.local/stack/`.
"""

from __future__ import annotations

import os
import signal
import sys
import time

import psycopg

from tools.paths import PROJECT_ROOT

from .ephemeral import gateway_healthy, spawn_gateway
from .keys import DEFAULT_JWT_SECRET, PUBLISHABLE_KEY, SECRET_KEY, SigningKey, api_key
from .postgres import SEED_SQL, Cluster, apply_sql_file, empty_the_tables, push_migrations

STATE_DIR = PROJECT_ROOT / ".local" / "stack"
ENV_FILE = PROJECT_ROOT / ".env.local"
DB_PORT = 54322
API_PORT = 54321
API_URL = f"http://127.0.0.1:{API_PORT}"

CLUSTER = Cluster(STATE_DIR / "postgres", DB_PORT)
GATEWAY_PID = STATE_DIR / "gateway.pid"
GATEWAY_LOG = STATE_DIR / "gateway.log"
SIGNING_KEY_PEM = STATE_DIR / "signing_key.pem"
SIGNING_KEY_ID = "local-es256"


def jwt_secret() -> str:
    """The Supabase CLI's local secret unless SUPABASE_JWT_SECRET overrides it."""
    return os.environ.get("SUPABASE_JWT_SECRET") or DEFAULT_JWT_SECRET


def signing_key() -> SigningKey:
    """The stack's asymmetric signing key for user sessions: made once, kept with the
    database (`.local/stack/`), so that tokens signed for the demo stay valid."""
    if not SIGNING_KEY_PEM.exists():
        STATE_DIR.mkdir(parents=True, exist_ok=True)
        SIGNING_KEY_PEM.write_bytes(SigningKey.generate().pem())
        SIGNING_KEY_PEM.chmod(0o600)
    return SigningKey.from_pem(SIGNING_KEY_PEM.read_bytes(), SIGNING_KEY_ID)


def stack_environment() -> dict[str, str]:
    secret = jwt_secret()
    return {
        "SUPABASE_URL": API_URL,
        "SUPABASE_PUBLISHABLE_KEY": PUBLISHABLE_KEY,
        "SUPABASE_SECRET_KEY": SECRET_KEY,
        "SUPABASE_ANON_KEY": api_key(secret, "anon"),
        "SUPABASE_SERVICE_ROLE_KEY": api_key(secret, "service_role"),
        "SUPABASE_JWT_SECRET": secret,
        "SUPABASE_DB_URL": CLUSTER.dsn,
    }


def _gateway_pid() -> int | None:
    try:
        pid = int(GATEWAY_PID.read_text())
        os.kill(pid, 0)
    except (FileNotFoundError, ValueError, ProcessLookupError):
        return None
    return pid


def _start_database() -> None:
    STATE_DIR.mkdir(parents=True, exist_ok=True)
    fresh = not CLUSTER.is_initialised()
    if fresh:
        CLUSTER.init()
    if not CLUSTER.is_running():
        CLUSTER.start()
    # `supabase db push`, as operators push to a hosted project; the seed goes in
    # with the first push only, as `--include-seed` records it once.
    applied = push_migrations(CLUSTER.dsn, seed=fresh)
    for name in applied:
        print(f"applied migration {name}")
    if fresh:
        print("loaded supabase/seed.sql")


def _start_gateway() -> None:
    if _gateway_pid() is not None and gateway_healthy(API_URL):
        return
    process = spawn_gateway(CLUSTER, API_PORT, GATEWAY_LOG, signing_key(), jwt_secret())
    GATEWAY_PID.write_text(str(process.pid))


def up() -> dict[str, str]:
    _start_database()
    _start_gateway()
    environment = stack_environment()
    ENV_FILE.write_text("".join(f"{name}={value}\n" for name, value in environment.items()))
    return environment


def down() -> None:
    if (pid := _gateway_pid()) is not None:
        os.killpg(pid, signal.SIGTERM)
        deadline = time.monotonic() + 10
        while _gateway_pid() is not None and time.monotonic() < deadline:
            time.sleep(0.1)
        if _gateway_pid() is not None:
            os.killpg(pid, signal.SIGKILL)
    GATEWAY_PID.unlink(missing_ok=True)
    CLUSTER.stop()


def reset_demo_data() -> None:
    """Empty every table of the schema and load the seed again (`make run` starts from it)."""
    with psycopg.connect(CLUSTER.dsn, autocommit=True) as conn:
        empty_the_tables(conn)
    apply_sql_file(CLUSTER.dsn, SEED_SQL)


def main(argv: list[str]) -> int:
    command = argv[1] if len(argv) > 1 else "up"
    if command == "up":
        environment = up()
        print(f"Local stack running. Wrote {ENV_FILE.name}:")
        for name, value in environment.items():
            print(f"  {name}={value}")
    elif command == "down":
        down()
        print("Local stack stopped.")
    elif command == "reset":
        reset_demo_data()
        print("Demo data reset from supabase/seed.sql.")
    else:
        print(f"usage: python -m local_supabase.stack [up|down|reset], not {command!r}", file=sys.stderr)
        return 2
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv))
