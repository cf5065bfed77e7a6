"""The SQL of a call to a database function, as PostgREST builds it: named arguments
typed by json_to_record, and a set-returning function's rows as a subquery."""

from __future__ import annotations

from functools import lru_cache

from psycopg import sql

from .schema_cache import Function


def rows_source(call: sql.Composable, source: sql.Composable, names: list[str]) -> sql.Composable:
    """` from json_to_record(…) as _(…), lateral public.f(…) _r`: the rows of a set-returning call."""
    return source + sql.SQL(", lateral {} _r").format(call) if names else sql.SQL(" from {} _r").format(call)


@lru_cache(maxsize=256)
def rpc_rows_query(function: Function, given: frozenset[str]) -> str:
    """`select _r.* from …`: a set-returning function's rows, as a subquery to filter."""
    names = [name for name in function.arguments if name in given]
    call, source = call_and_source(function, names)
    return (sql.SQL("select _r.*") + rows_source(call, source, names)).as_string()


def call_and_source(function: Function, names: list[str]) -> tuple[sql.Composable, sql.Composable]:
    """The call with named arguments, and the json_to_record that types them (empty without any)."""
    call = sql.SQL("{}({})").format(
        sql.Identifier("public", function.name),
        sql.SQL(", ").join(sql.SQL("{} := _.{}").format(sql.Identifier(n), sql.Identifier(n)) for n in names),
    )
    if not names:
        return call, sql.SQL("")
    source = sql.SQL(" from json_to_record({}::json) as _({})").format(
        sql.Placeholder(),
        sql.SQL(", ").join(sql.SQL("{} {}").format(sql.Identifier(n), sql.SQL(function.arguments[n])) for n in names),
    )
    return call, source


@lru_cache(maxsize=256)
def rpc_statement(function: Function, given: frozenset[str]) -> str:
    """`select public.f(a := _.a, …) from json_to_record($1) as _(a type, …)`.

    As PostgREST does it: json_to_record casts each JSON value to the argument's
    declared type, and arguments not given keep their defaults. Rendered to a
    string once: composing it again on every call cost more than running it.
    """
    names = [name for name in function.arguments if name in given]
    call, source = call_and_source(function, names)
    if function.returns_void:
        statement = sql.SQL("select {}").format(call) + source
    elif function.returns_set:
        statement = sql.SQL("select coalesce(json_agg(_r), '[]')::text") + rows_source(call, source, names)
    else:
        statement = sql.SQL("select to_json({})::text").format(call) + source
    return statement.as_string()
