"""What PostgREST's schema cache knows: the exposed relations and functions.

Loaded at start and reloaded when a name is missing, so a migration applied while
the gateway runs is picked up on the first request that needs it.
"""

from __future__ import annotations

from dataclasses import dataclass

from psycopg import AsyncConnection

SCHEMA = "public"


@dataclass(frozen=True)
class Relation:
    name: str
    columns: tuple[str, ...]
    primary_key: tuple[str, ...]


# Compared by identity: one object per function per schema load, which is what the
# gateway's statement cache is keyed on.
@dataclass(frozen=True, eq=False)
class Function:
    name: str
    arguments: dict[str, str]  # name -> type, in declaration order
    required: frozenset[str]  # arguments without a default
    returns_set: bool
    returns_void: bool


class SchemaCache:
    def __init__(self) -> None:
        self.relations: dict[str, Relation] = {}
        self.functions: dict[str, list[Function]] = {}
        # The settings of each role the gateway switches to (`alter role anon set
        # statement_timeout = ...`), which PostgREST applies to every request made
        # as that role ("impersonated role settings"), as (name, value) pairs.
        self.role_settings: dict[str, tuple[tuple[str, str], ...]] = {}

    async def load(self, conn: AsyncConnection) -> None:
        await self._load_role_settings(conn)
        relations = await conn.execute(
            """
            select c.relname,
                   array_agg(a.attname order by a.attnum),
                   coalesce((select array_agg(k.attname order by k.attnum)
                             from pg_index i join pg_attribute k
                               on k.attrelid = i.indrelid and k.attnum = any(i.indkey)
                             where i.indrelid = c.oid and i.indisprimary), '{}')
            from pg_class c
            join pg_namespace n on n.oid = c.relnamespace
            join pg_attribute a on a.attrelid = c.oid and a.attnum > 0 and not a.attisdropped
            where n.nspname = %s and c.relkind in ('r', 'v', 'm', 'p', 'f')
            group by c.oid, c.relname
            """,
            (SCHEMA,),
        )
        self.relations = {
            name: Relation(name, tuple(columns), tuple(key)) for name, columns, key in await relations.fetchall()
        }
        functions = await conn.execute(
            """
            select p.proname,
                   coalesce(p.proargnames, '{}'),
                   coalesce((select array_agg(format_type(t, null) order by o)
                             from unnest(p.proargtypes::oid[]) with ordinality as u(t, o)), '{}'),
                   p.pronargs, p.pronargdefaults, p.proretset,
                   p.prorettype = 'void'::regtype
            from pg_proc p join pg_namespace n on n.oid = p.pronamespace
            where n.nspname = %s and p.prokind = 'f'
            """,
            (SCHEMA,),
        )
        self.functions = {}
        for name, names, types, nargs, ndefaults, returns_set, returns_void in await functions.fetchall():
            arguments = dict(zip(names[:nargs], types, strict=True))
            self.functions.setdefault(name, []).append(
                Function(
                    name,
                    arguments,
                    frozenset(names[: nargs - ndefaults]),
                    returns_set,
                    returns_void,
                )
            )

    async def _load_role_settings(self, conn: AsyncConnection) -> None:
        rows = await conn.execute(
            """
            select r.rolname, s.setconfig
            from pg_db_role_setting s
            join pg_roles r on r.oid = s.setrole
            where s.setdatabase in (0, (select oid from pg_database where datname = current_database()))
              and pg_has_role(current_user, r.oid, 'member') and r.rolname <> current_user
            order by s.setdatabase
            """
        )
        settings: dict[str, dict[str, str]] = {}
        for role, config in await rows.fetchall():
            for entry in config:
                name, _, value = entry.partition("=")
                settings.setdefault(role, {})[name] = value  # a database's setting overrides the role's
        self.role_settings = {role: tuple(values.items()) for role, values in settings.items()}

    def find_function(self, name: str, given: set[str]) -> Function | None:
        """The overload whose arguments are exactly satisfiable by the given names."""
        for function in self.functions.get(name, []):
            if function.required <= given <= function.arguments.keys():
                return function
        return None
