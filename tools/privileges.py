"""The API roles' rights, read from a database's catalog, and the table in
docs/database.md ("Privileges") that says what they must be: role by object by
privilege, functions included. tests/database/test_privileges.py and
`make verify-deployment` both hold a database to that table.
"""

from __future__ import annotations

import re

import psycopg

from tools.paths import PROJECT_ROOT

ROLES = ("anon", "authenticated", "service_role")
DOC = PROJECT_ROOT / "docs" / "database.md"
# Schemas the product owns objects in; the bootstrap's `auth` and `extensions` are the platform's.
SCHEMAS = ("public", "private")
TABLE_PRIVILEGES = ("SELECT", "INSERT", "UPDATE", "DELETE", "TRUNCATE", "REFERENCES", "TRIGGER")
COLUMN_PRIVILEGES = ("SELECT", "INSERT", "UPDATE", "REFERENCES")
SEQUENCE_PRIVILEGES = ("USAGE", "SELECT", "UPDATE")
KINDS = {"r": "table", "v": "view", "m": "materialized view", "S": "sequence"}


def _holds(conn: psycopg.Connection, check: str, *args: object) -> bool:
    row = conn.execute(f"select {check}({', '.join(['%s'] * len(args))})", args).fetchone()
    return bool(row and row[0])


def relation_rights(conn: psycopg.Connection, role: str, oid: int, kind: str) -> str:
    """A role's rights on a relation: whole-table privileges, else the columns it holds them on."""
    if kind == "S":
        return ", ".join(p for p in SEQUENCE_PRIVILEGES if _holds(conn, "has_sequence_privilege", role, oid, p))
    rights = []
    for privilege in TABLE_PRIVILEGES:
        if _holds(conn, "has_table_privilege", role, oid, privilege):
            rights.append(privilege)
        elif privilege in COLUMN_PRIVILEGES:
            columns = conn.execute(
                "select attname from pg_attribute where attrelid = %s and attnum > 0 and not attisdropped"
                " and has_column_privilege(%s, %s, attnum, %s) order by attname",
                (oid, role, oid, privilege),
            ).fetchall()
            if columns:
                rights.append(f"{privilege} ({', '.join(c[0] for c in columns)})")
    return ", ".join(rights)


Matrix = dict[tuple[str, str], tuple[str, ...]]


def catalog_matrix(dsn: str) -> Matrix:
    """(object, kind) -> the rights of anon, authenticated and service_role, as the docs spell them."""
    matrix: Matrix = {}
    with psycopg.connect(dsn, connect_timeout=10) as conn:
        relations = conn.execute(
            "select c.oid, n.nspname || '.' || c.relname, c.relkind from pg_class c"
            " join pg_namespace n on n.oid = c.relnamespace"
            " where n.nspname = any(%s) and c.relkind = any(%s)"
            " and not exists (select 1 from pg_depend d where d.objid = c.oid and d.deptype = 'e')",
            (list(SCHEMAS), list(KINDS)),
        ).fetchall()
        for oid, name, kind in relations:
            matrix[(name, KINDS[kind])] = tuple(relation_rights(conn, role, oid, kind) for role in ROLES)
        functions = conn.execute(
            "select p.oid, n.nspname || '.' || p.proname || '(' || pg_get_function_identity_arguments(p.oid) || ')'"
            " from pg_proc p join pg_namespace n on n.oid = p.pronamespace"
            " where n.nspname = any(%s)"
            " and not exists (select 1 from pg_depend d where d.objid = p.oid and d.deptype = 'e')",
            (list(SCHEMAS),),
        ).fetchall()
        for oid, name in functions:
            matrix[(re.sub(r"\b(p_\w+) ", "", name), "function")] = tuple(
                "EXECUTE" if _holds(conn, "has_function_privilege", role, oid, "EXECUTE") else "" for role in ROLES
            )
    return matrix


def documented_matrix() -> Matrix:
    block = re.search(r"<!-- privileges: begin -->(.*?)<!-- privileges: end -->", DOC.read_text(), re.S)
    if block is None:
        raise ValueError("docs/database.md has no privileges table")
    matrix: Matrix = {}
    for line in block.group(1).strip().splitlines()[2:]:
        cells = [cell.strip() for cell in line.strip().strip("|").split("|")]
        name, kind, *rights = cells
        matrix[(name.strip("`"), kind)] = tuple("" if right == "—" else right for right in rights)
    return matrix


def differences(found: Matrix, documented: Matrix) -> list[str]:
    """Each way the catalog differs from the table, one sentence each."""
    lines = []
    for name, kind in sorted(found.keys() | documented.keys()):
        if (name, kind) not in documented:
            lines.append(f"{name} ({kind}) is not in docs/database.md's privileges table")
        elif (name, kind) not in found:
            lines.append(f"{name} ({kind}) is missing")
        else:
            for role, has, should in zip(ROLES, found[(name, kind)], documented[(name, kind)], strict=True):
                if has != should:
                    lines.append(f"{role} on {name}: has {has or 'nothing'}, should have {should or 'nothing'}")
    return lines
