"""supabase/schema.sql shows the schema the migrations make, and stays so: a
migration without `make schema`, or an edit of the file by hand, fails here."""

from __future__ import annotations

from tools.schema import SCHEMA_FILE, dump_schema


def test_schema_sql_is_what_a_fresh_push_of_the_migrations_makes():
    assert SCHEMA_FILE.read_text() == dump_schema(), "supabase/schema.sql is stale: run `make schema`"
