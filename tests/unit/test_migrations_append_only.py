"""Migrations are append-only: a committed file never changes, and a new rule is a
new file. supabase/migrations.sha256 (sha256sum's format) records each file once;
a new migration adds its line (`sha256sum supabase/migrations/<file> >>
supabase/migrations.sha256` from the project root's supabase/ folder), and no line
is ever edited."""

from __future__ import annotations

import hashlib

from local_supabase.postgres import MIGRATIONS_DIR, SUPABASE_DIR

MANIFEST = SUPABASE_DIR / "migrations.sha256"


def recorded() -> dict[str, str]:
    lines = [line.split(maxsplit=1) for line in MANIFEST.read_text().splitlines() if line.strip()]
    return {name.strip(): digest for digest, name in lines}


def test_every_migration_is_recorded_and_none_has_changed():
    on_disk = {
        f"migrations/{path.name}": hashlib.sha256(path.read_bytes()).hexdigest()
        for path in MIGRATIONS_DIR.glob("*.sql")
    }
    manifest = recorded()
    assert sorted(on_disk.keys() - manifest.keys()) == [], "new migrations to record in supabase/migrations.sha256"
    assert sorted(manifest.keys() - on_disk.keys()) == [], "recorded migrations that are gone"
    changed = sorted(name for name, digest in on_disk.items() if manifest[name] != digest)
    assert changed == [], "committed migrations are never edited: write a new one"


def test_new_migrations_come_after_every_recorded_one():
    """The manifest's order is the order they were committed in; a file dated before
    the last one would be skipped by `supabase db push` on a project that has the later one."""
    names = list(recorded())
    assert names == sorted(names)
