"""PostgREST's query-string grammar, turned into SQL.

Covers what supabase-py sends for the parts of Supabase this project uses:
horizontal filters (`col=op.value`, `not.` negation, `or=(…)`/`and=(…)` trees),
`select=`, `order=`, `limit`/`offset` and the `Range` header.
https://postgrest.org/en/stable/references/api/tables_views.html
Every value is sent as a parameter of unknown type, so PostgreSQL casts it to the
column's type exactly as it does for PostgREST.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, field

from psycopg import sql
from psycopg.abc import AdaptContext

from .errors import GatewayError

COMPARISONS = {
    "eq": "=",
    "neq": "<>",
    "gt": ">",
    "gte": ">=",
    "lt": "<",
    "lte": "<=",
    "like": "like",
    "ilike": "ilike",
}
ORDER_MODIFIERS = {"asc": "asc", "desc": "desc", "nullsfirst": "nulls first", "nullslast": "nulls last"}
IS_VALUES = {"null": "null", "not_null": "not null", "true": "true", "false": "false", "unknown": "unknown"}
# Deeper `or=`/`and=` trees are refused rather than parsed (PostgREST's grammar
# has no such limit, but nothing real nests this deep).
MAX_LOGIC_DEPTH = 32
# Query parameters that are not column filters.
RESERVED = {"select", "order", "limit", "offset", "on_conflict", "columns", "or", "and", "not.or", "not.and"}


def _parse_error(text: str, why: str) -> GatewayError:
    return GatewayError(400, "PGRST100", f'"failed to parse filter ({text})" ({why})')


def split_top_level(text: str) -> list[str]:
    """Split on commas outside parentheses and double quotes."""
    parts: list[str] = []
    current: list[str] = []
    depth, quoted = 0, False
    for char in text:
        if char == '"':
            quoted = not quoted
        elif not quoted and char == "(":
            depth += 1
        elif not quoted and char == ")":
            depth -= 1
        if char == "," and depth == 0 and not quoted:
            parts.append("".join(current))
            current = []
        else:
            current.append(char)
    parts.append("".join(current))
    return parts


def _unquote(value: str) -> str:
    if len(value) >= 2 and value[0] == value[-1] == '"':
        return value[1:-1].replace('\\"', '"')
    return value


@dataclass
class Filter:
    column: str
    operator: str
    value: str | list[str]
    negated: bool = False

    def to_sql(self, params: list[object]) -> sql.Composable:
        column = sql.Identifier(self.column)
        condition: sql.Composable
        if self.operator == "is":
            condition = sql.SQL("{} is {}").format(column, sql.SQL(IS_VALUES[str(self.value)]))
        elif self.operator == "in":
            values = list(self.value)
            params.extend(values)
            condition = (
                sql.SQL("{} in ({})").format(column, sql.SQL(", ").join(sql.Placeholder() for _ in values))
                if values
                else sql.SQL("false")
            )
        else:
            params.append(self.value)
            condition = sql.SQL("{} {} {}").format(column, sql.SQL(COMPARISONS[self.operator]), sql.Placeholder())
        return sql.SQL("not ({})").format(condition) if self.negated else condition


@dataclass
class Logic:
    operator: str  # "and" | "or"
    items: list[Filter | Logic] = field(default_factory=list)
    negated: bool = False

    def to_sql(self, params: list[object]) -> sql.Composable:
        joined = sql.SQL(f" {self.operator} ").join(item.to_sql(params) for item in self.items)
        return sql.SQL("not ({})" if self.negated else "({})").format(joined)


def parse_filter(column: str, expression: str) -> Filter:
    negated = expression.startswith("not.")
    if negated:
        expression = expression[len("not.") :]
    operator, dot, value = expression.partition(".")
    if not dot:
        raise _parse_error(expression, "expected operator.value")
    if operator == "in":
        if not (value.startswith("(") and value.endswith(")")):
            raise _parse_error(expression, "in needs a parenthesised list")
        inner = value[1:-1]
        return Filter(column, "in", [_unquote(v) for v in split_top_level(inner)] if inner else [], negated)
    if operator == "is":
        if value not in IS_VALUES:
            raise _parse_error(expression, "is takes null, not_null, true, false or unknown")
        return Filter(column, "is", value, negated)
    if operator not in COMPARISONS:
        raise _parse_error(expression, f"unknown operator {operator!r}")
    if operator in ("like", "ilike"):
        value = value.replace("*", "%")
    return Filter(column, operator, _unquote(value), negated)


def parse_logic(operator: str, text: str, negated: bool = False, depth: int = 0) -> Logic:
    """`(a.eq.1,and(b.gt.2,c.lt.3))` as given to `or=` / `and=`."""
    if not (text.startswith("(") and text.endswith(")")):
        raise _parse_error(text, "a logic tree is parenthesised")
    if depth >= MAX_LOGIC_DEPTH:
        raise _parse_error(text[:40] + "…", f"logic trees nest at most {MAX_LOGIC_DEPTH} deep here")
    logic = Logic(operator, negated=negated)
    for item in split_top_level(text[1:-1]):
        item_negated = item.startswith("not.")
        body = item[len("not.") :] if item_negated else item
        for nested in ("and", "or"):
            if body.startswith(nested + "("):
                logic.items.append(parse_logic(nested, body[len(nested) :], item_negated, depth + 1))
                break
        else:
            column, dot, expression = item.partition(".")
            if not dot:
                raise _parse_error(item, "expected column.operator.value")
            logic.items.append(parse_filter(column, expression))
    return logic


def parse_conditions(query: Iterable[tuple[str, str]]) -> list[Filter | Logic]:
    conditions: list[Filter | Logic] = []
    for key, value in query:
        if key in ("or", "and", "not.or", "not.and"):
            negated = key.startswith("not.")
            conditions.append(parse_logic(key.removeprefix("not."), value, negated))
        elif key not in RESERVED:
            conditions.append(parse_filter(key, value))
    return conditions


def columns_of(conditions: list[Filter | Logic]) -> set[str]:
    """Every column the conditions name, nested trees included."""
    named: set[str] = set()
    for condition in conditions:
        named |= {condition.column} if isinstance(condition, Filter) else columns_of(condition.items)
    return named


def select_columns(select: str | None) -> set[str]:
    """The columns `select=` reads (not their aliases)."""
    if not select or select == "*":
        return set()
    # `alias:column`; a cast (`id::text`) is no column of ours and is refused whole.
    return {item if "::" in item else item.partition(":")[2] or item for item in split_top_level(select)}


def order_columns(order: str | None) -> set[str]:
    return {term.split(".")[0] for term in order.split(",")} if order else set()


def where_clause(conditions: list[Filter | Logic], params: list[object]) -> sql.Composable:
    if not conditions:
        return sql.SQL("")
    return sql.SQL(" where ") + sql.SQL(" and ").join(c.to_sql(params) for c in conditions)


class Alias(sql.Identifier):
    """A name the caller chose for a column of the result: quoted, and with `%`
    doubled, because every statement is rendered with parameters (app.run) and
    psycopg reads a `%` anywhere in the text as the start of a placeholder."""

    def as_bytes(self, context: AdaptContext | None = None) -> bytes:
        return super().as_bytes(context).replace(b"%", b"%%")


def select_list(select: str | None) -> sql.Composable:
    """`select=a,b,alias:c`; `*` or absent is every column. Embedding is not supported."""
    if not select or select == "*":
        return sql.SQL("*")
    items = []
    for item in split_top_level(select):
        alias, colon, column = item.partition(":")
        if not colon:
            alias, column = item, item
        if "(" in column or not column:
            raise GatewayError(400, "PGRST100", f"unsupported select item {item!r} (no resource embedding here)")
        items.append(
            sql.Identifier(column)
            if alias == column
            else sql.SQL("{} as {}").format(sql.Identifier(column), Alias(alias))
        )
    return sql.SQL(", ").join(items)


def order_clause(order: str | None) -> sql.Composable:
    """`order=a.desc.nullslast,b`."""
    if not order:
        return sql.SQL("")
    terms = []
    for term in order.split(","):
        column, *modifiers = term.split(".")
        parts: list[sql.Composable] = [sql.Identifier(column)]
        for modifier in modifiers:
            keyword = ORDER_MODIFIERS.get(modifier)
            if keyword is None:
                raise GatewayError(400, "PGRST100", f'"failed to parse order ({order})"')
            parts.append(sql.SQL(keyword))
        terms.append(sql.SQL(" ").join(parts))
    return sql.SQL(" order by ") + sql.SQL(", ").join(terms)


def requested_range(limit: str | None, offset: str | None, range_header: str | None, max_rows: int) -> tuple[int, int]:
    """(offset, limit) from `limit`/`offset` or `Range: a-b`, capped at max_rows.

    The cap truncates silently, as it does on Supabase (db-max-rows).
    """
    start, count = 0, None
    try:
        if range_header and range_header.strip():
            first, _, last = range_header.strip().removeprefix("items=").partition("-")
            start = int(first)
            count = int(last) - start + 1 if last else None
        if offset is not None:
            start = int(offset)
        if limit is not None:
            count = int(limit) if count is None else min(count, int(limit))
    except ValueError as error:
        raise GatewayError(400, "PGRST103", "Requested range not satisfiable", str(error)) from error
    if start < 0 or (count is not None and count < 0):
        raise GatewayError(400, "PGRST103", "Requested range not satisfiable")
    return start, max_rows if count is None else min(count, max_rows)


@dataclass(frozen=True)
class ReadQuery:
    """What a read's query string asks for, a table's or a set-returning function's
    alike: its filters, columns, order and page."""

    conditions: list[Filter | Logic]
    select: str | None
    order: str | None
    offset: int
    limit: int

    @classmethod
    def parse(cls, items: list[tuple[str, str]], range_header: str | None, max_rows: int) -> ReadQuery:
        last = dict(items)  # a repeated select=, order=, limit= or offset=: the last one, as starlette reads it
        offset, limit = requested_range(last.get("limit"), last.get("offset"), range_header, max_rows)
        return cls(parse_conditions(items), last.get("select"), last.get("order"), offset, limit)

    def columns(self) -> set[str]:
        """Every column it names: in its filters, its select list and its order."""
        return columns_of(self.conditions) | select_columns(self.select) | order_columns(self.order)

    def select_list(self) -> sql.Composable:
        return select_list(self.select)

    def order_clause(self) -> sql.Composable:
        return order_clause(self.order)
