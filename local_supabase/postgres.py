"""A PostgreSQL cluster of our own: created, started and stopped from Python.

The tests start a throwaway one on a free port; `make stack` keeps one on 54322.
PostgreSQL refuses to run as root, so when we are root every server command runs
as the `postgres` system user that Debian's package creates.
"""

from __future__ import annotations

import os
import shutil
import socket
import stat
import subprocess
import tempfile
from dataclasses import dataclass
from pathlib import Path

import psycopg

PROJECT_ROOT = Path(__file__).resolve().parent.parent
BOOTSTRAP_SQL = Path(__file__).resolve().parent / "bootstrap.sql"
MIGRATIONS_DIR = PROJECT_ROOT / "supabase" / "migrations"
SEED_SQL = PROJECT_ROOT / "supabase" / "seed.sql"

PASSWORD = "postgres"  # noqa: S105 - the local stack's documented password, as `supabase start` has it
SERVER_USER = "postgres"

# A disposable development cluster: durability buys nothing here, speed does.
# The server's own time zone is UTC so that nothing can lean on it being Oslo.
SERVER_SETTINGS = {
    "listen_addresses": "127.0.0.1",
    "max_connections": "200",
    "fsync": "off",
    "full_page_writes": "off",
    "timezone": "UTC",
    "log_min_messages": "warning",
}


class PostgresNotInstalledError(RuntimeError):
    """The PostgreSQL server binaries cannot be found."""


def find_bindir() -> Path:
    """Where initdb and pg_ctl live: $PG_BINDIR, else Debian's newest, else $PATH."""
    if configured := os.environ.get("PG_BINDIR"):
        return Path(configured)
    debian = sorted(
        Path("/usr/lib/postgresql").glob("*/bin/initdb"),
        key=lambda p: int(p.parent.parent.name) if p.parent.parent.name.isdigit() else 0,
    )
    if debian:
        return debian[-1].parent
    if found := shutil.which("initdb"):
        return Path(found).parent
    raise PostgresNotInstalledError(
        "PostgreSQL's server is not installed (no initdb found). "
        "Install it with `apt-get install postgresql` (as root), "
        "or set PG_BINDIR to the folder holding initdb and pg_ctl."
    )


def free_port() -> int:
    """A TCP port on loopback that nothing listens on right now."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def _running_as_root() -> bool:
    return os.geteuid() == 0


def _let_the_server_user_pass(folder: Path) -> None:
    """The server runs as SERVER_USER when we are root: every folder above its data
    must let it pass (o+x), a clone in a private `mktemp -d` folder included."""
    for parent in [folder, *folder.parents]:
        mode = parent.stat().st_mode
        if not mode & stat.S_IXOTH:
            parent.chmod(mode | stat.S_IXOTH)


@dataclass
class Cluster:
    data_dir: Path
    port: int
    host: str = "127.0.0.1"

    @property
    def dsn(self) -> str:
        return f"postgresql://postgres:{PASSWORD}@{self.host}:{self.port}/postgres"

    @property
    def log_file(self) -> Path:
        return self.data_dir / "server.log"

    def _run(
        self, program: str, *args: str, check: bool = True, env: dict[str, str] | None = None
    ) -> subprocess.CompletedProcess[str]:
        command = [str(find_bindir() / program), *args]
        if _running_as_root():
            command = ["runuser", "-u", SERVER_USER, "--", *command]
        result = subprocess.run(command, capture_output=True, text=True, env=env)
        if check and result.returncode != 0:
            raise RuntimeError(f"{program} failed ({result.returncode}): {result.stderr.strip()}")
        return result

    def is_initialised(self) -> bool:
        return (self.data_dir / "PG_VERSION").exists()

    def is_running(self) -> bool:
        if not self.is_initialised():
            return False
        return self._run("pg_ctl", "status", "-D", str(self.data_dir), check=False).returncode == 0

    def init(self) -> None:
        self.data_dir.mkdir(parents=True, exist_ok=True)
        with tempfile.NamedTemporaryFile("w", suffix=".pw", delete=False) as pwfile:
            pwfile.write(PASSWORD)
        try:
            if _running_as_root():
                _let_the_server_user_pass(self.data_dir.parent)
                shutil.chown(self.data_dir, SERVER_USER, SERVER_USER)
                shutil.chown(pwfile.name, SERVER_USER, SERVER_USER)
            self._run(
                "initdb",
                "-D",
                str(self.data_dir),
                "-U",
                "postgres",
                "--pwfile",
                pwfile.name,
                "--auth-host=scram-sha-256",
                "--auth-local=trust",
                "--encoding=UTF8",
                "--locale=C.UTF-8",
            )
        finally:
            os.unlink(pwfile.name)

    def start(self, extra_env: dict[str, str] | None = None, extra_settings: dict[str, str] | None = None) -> None:
        """Start the server and wait until it accepts connections.

        `extra_env` reaches the server process (the clock tests preload libfaketime);
        `extra_settings` add to SERVER_SETTINGS (the runbook test loads pg_cron).
        """
        options = [f"-p {self.port}", f"-k {self.data_dir}"]
        options += [f"-c {name}={value}" for name, value in {**SERVER_SETTINGS, **(extra_settings or {})}.items()]
        try:
            self._run(
                "pg_ctl",
                "start",
                "-w",
                "-D",
                str(self.data_dir),
                "-l",
                str(self.log_file),
                "-o",
                " ".join(options),
                env={**os.environ, **(extra_env or {})},
            )
        except RuntimeError as error:
            log = self.log_file.read_text() if self.log_file.exists() else ""
            raise RuntimeError(f"PostgreSQL did not start: {error}\n{log}") from error

    def stop(self) -> None:
        if self.is_running():
            self._run("pg_ctl", "stop", "-w", "-m", "fast", "-D", str(self.data_dir))


# Every table the migrations and the seed write, in one statement's order.
SCHEMA_TABLES = (
    "public.certification_expiry_audit, public.certification_expiry_runs, public.mentor_status_history,"
    " public.certification_renewals,"
    " public.peer_mentors, public.organization_coordinators, auth.users"
)


def empty_the_tables(conn: psycopg.Connection) -> None:
    """Every row of the schema gone, the schema itself kept."""
    conn.execute(f"truncate {SCHEMA_TABLES}")


def apply_sql_file(dsn: str, path: Path) -> None:
    with psycopg.connect(dsn, autocommit=True) as conn:
        conn.execute(path.read_text())


def apply_migrations(dsn: str) -> list[str]:
    """Apply the bootstrap, then every migration not yet applied, in file-name order.

    Applied versions are kept where the Supabase CLI keeps them, so a cluster made
    here and one made by `supabase db reset` agree on what has run.
    """
    apply_sql_file(dsn, BOOTSTRAP_SQL)
    applied: list[str] = []
    with psycopg.connect(dsn, autocommit=True) as conn:
        conn.execute(
            "create schema if not exists supabase_migrations;"
            "create table if not exists supabase_migrations.schema_migrations"
            " (version text primary key, name text)"
        )
        done = {row[0] for row in conn.execute("select version from supabase_migrations.schema_migrations")}
        for path in sorted(MIGRATIONS_DIR.glob("*.sql")):
            version, _, name = path.stem.partition("_")
            if version in done:
                continue
            with conn.transaction():
                conn.execute(path.read_text())
                conn.execute(
                    "insert into supabase_migrations.schema_migrations (version, name) values (%s, %s)",
                    (version, name),
                )
            applied.append(path.name)
    return applied
