"""`/rest/v1/{relation}`: reads, inserts, upserts, updates and deletes of tables and
views, with PostgREST's filters, ranges, counts, profiles and `select=` on writes."""

from __future__ import annotations

import json
from typing import Any

from psycopg import sql
from starlette.requests import Request
from starlette.responses import Response

from .core import GatewayCore
from .errors import GatewayError
from .http_helpers import (
    JSON_TYPE,
    SINGLE_OBJECT,
    as_parameter,
    asks_for_count,
    content_range_header,
    json_body,
    prefer_header,
)
from .jwt_auth import Caller
from .query import (
    Filter,
    Logic,
    ReadQuery,
    columns_of,
    parse_conditions,
    select_columns,
    select_list,
    where_clause,
)
from .schema_cache import Relation

EXPOSED_SCHEMAS = ("public",)


class TableHandlers(GatewayCore):
    """The Gateway's table endpoints (a mixin: `caller`, `run` and `relation` are the Gateway's)."""

    @staticmethod
    def check_profile(request: Request) -> None:
        """Accept-Profile (reads) and Content-Profile (writes) name the schema; only public is served."""
        header = "content-profile" if request.method in ("POST", "PATCH", "PUT", "DELETE") else "accept-profile"
        schema = request.headers.get(header)
        if schema is not None and schema not in EXPOSED_SCHEMAS:
            raise GatewayError(
                406, "PGRST106", f"The schema must be one of the following: {', '.join(EXPOSED_SCHEMAS)}"
            )

    @staticmethod
    def _check_read_columns(relation: Relation, named: set[str]) -> None:
        """A column the relation does not have is PostgREST's 42703; checked before any
        SQL is built, so no name a caller sends ever reaches a statement unchecked."""
        for column in sorted(named - set(relation.columns)):
            raise GatewayError(400, "42703", f"column {relation.name}.{column} does not exist")

    async def read(self, request: Request) -> Response:
        caller = self.caller(request)
        relation = await self.relation(request.path_params["relation"])
        query = ReadQuery.parse(
            request.query_params.multi_items(), request.headers.get("range"), self.settings.max_rows
        )
        self._check_read_columns(relation, query.columns())
        offset, limit = query.offset, query.limit
        params: list[object] = []
        where = where_clause(query.conditions, params)
        table = sql.Identifier("public", relation.name)
        total_sql: sql.Composable = sql.SQL("null::bigint")
        if asks_for_count(request):
            total_sql = sql.SQL("(select count(*) from {}{})").format(table, where)
            params = params * 2  # the count repeats the filter's placeholders
        statement = sql.SQL(
            "select coalesce(json_agg(_t), '[]')::text, count(*), {} from (select {} from {}{}{} limit {} offset {}) _t"
        ).format(total_sql, query.select_list(), table, where, query.order_clause(), limit, offset)
        row = await self.run(request, caller, statement, params, read_only=True)
        assert row is not None  # an aggregate: always one row
        body, returned, total = row
        content_range = content_range_header(offset, returned, total)
        status = 200
        if total is not None and offset > total:
            raise GatewayError(
                416,
                "PGRST103",
                "Requested range not satisfiable",
                f"An offset of {offset} was requested, but there are only {total} rows.",
            )
        if total is not None and returned < total:
            status = 206
        if SINGLE_OBJECT in request.headers.get("accept", ""):
            if returned != 1:
                raise GatewayError(
                    406,
                    "PGRST116",
                    "Cannot coerce the result to a single JSON object",
                    f"The result contains {returned} rows",
                )
            body, status = json.dumps(json.loads(body)[0]), 200
        body = "" if request.method == "HEAD" else body
        media_type = SINGLE_OBJECT if SINGLE_OBJECT in request.headers.get("accept", "") else JSON_TYPE
        return Response(body, status_code=status, media_type=media_type, headers={"Content-Range": content_range})

    async def insert(self, request: Request) -> Response:
        caller = self.caller(request)
        relation = await self.relation(request.path_params["relation"])
        payload = await json_body(request)
        rows = payload if isinstance(payload, list) else [payload]
        if not all(isinstance(row, dict) for row in rows):
            raise GatewayError(400, "PGRST102", "Expected a JSON object or an array of objects")
        prefer = prefer_header(request)
        columns = self._columns(request, relation, rows)
        if not rows or not columns:
            return Response(status_code=201)

        params: list[object] = []
        missing = sql.SQL("default") if prefer.get("missing") == "default" else sql.SQL("null")
        values = []
        for row in rows:
            cells: list[sql.Composable] = []
            for column in columns:
                if column in row:
                    params.append(as_parameter(row[column]))
                    cells.append(sql.Placeholder())
                else:
                    cells.append(missing)
            values.append(sql.SQL("({})").format(sql.SQL(", ").join(cells)))
        statement = sql.SQL("insert into {} ({}) values {}").format(
            sql.Identifier("public", relation.name),
            sql.SQL(", ").join(map(sql.Identifier, columns)),
            sql.SQL(", ").join(values),
        )
        statement += self._on_conflict(request, relation, columns, prefer.get("resolution"))
        return await self._write(request, caller, relation, statement, params, success_status=201)

    async def update(self, request: Request) -> Response:
        caller = self.caller(request)
        relation = await self.relation(request.path_params["relation"])
        changes = await json_body(request)
        if not isinstance(changes, dict):
            raise GatewayError(400, "PGRST102", "PATCH takes a JSON object")
        self._check_columns(relation, changes)
        if not changes:
            return Response(status_code=204)
        params: list[object] = [as_parameter(value) for value in changes.values()]
        assignments = sql.SQL(", ").join(
            sql.SQL("{} = {}").format(sql.Identifier(c), sql.Placeholder()) for c in changes
        )
        where = where_clause(self._write_conditions(request, relation, "UPDATE"), params)
        statement = sql.SQL("update {} set {}{}").format(sql.Identifier("public", relation.name), assignments, where)
        return await self._write(request, caller, relation, statement, params, success_status=200)

    async def delete(self, request: Request) -> Response:
        caller = self.caller(request)
        relation = await self.relation(request.path_params["relation"])
        params: list[object] = []
        where = where_clause(self._write_conditions(request, relation, "DELETE"), params)
        statement = sql.SQL("delete from {}{}").format(sql.Identifier("public", relation.name), where)
        return await self._write(request, caller, relation, statement, params, success_status=200)

    def _write_conditions(self, request: Request, relation: Relation, verb: str) -> list[Filter | Logic]:
        """The filters of a PATCH or DELETE; none at all is refused, as Supabase's API
        refuses it (pg-safeupdate, loaded for API requests; not packaged for Debian,
        so enforced here with its code and message)."""
        conditions = parse_conditions(request.query_params.multi_items())
        if not conditions:
            raise GatewayError(400, "21000", f"{verb} requires a WHERE clause")
        self._check_read_columns(relation, columns_of(conditions))
        return conditions

    def _columns(self, request: Request, relation: Relation, rows: list[dict[str, Any]]) -> list[str]:
        """`?columns=` when given (supabase-py sends it), else every key of the payload."""
        if given := request.query_params.get("columns"):
            columns = [name.strip().strip('"') for name in given.split(",")]
        else:
            columns = list(dict.fromkeys(key for row in rows for key in row))
        self._check_columns(relation, columns)
        return columns

    @staticmethod
    def _check_columns(relation: Relation, columns: Any) -> None:
        for column in columns:
            if column not in relation.columns:
                raise GatewayError(
                    400, "PGRST204", f"Could not find the '{column}' column of '{relation.name}' in the schema cache"
                )

    def _on_conflict(
        self, request: Request, relation: Relation, columns: list[str], resolution: str | None
    ) -> sql.Composable:
        if resolution not in ("merge-duplicates", "ignore-duplicates"):
            return sql.SQL("")
        given = request.query_params.get("on_conflict")
        target = [c.strip() for c in given.split(",")] if given else list(relation.primary_key)
        self._check_columns(relation, target)
        updated = [c for c in columns if c not in target]
        action: sql.Composable
        if resolution == "ignore-duplicates" or not updated:
            action = sql.SQL("do nothing")
        else:
            action = sql.SQL("do update set {}").format(
                sql.SQL(", ").join(sql.SQL("{0} = excluded.{0}").format(sql.Identifier(c)) for c in updated)
            )
        return sql.SQL(" on conflict ({}) {}").format(sql.SQL(", ").join(map(sql.Identifier, target)), action)

    async def _write(
        self,
        request: Request,
        caller: Caller,
        relation: Relation,
        statement: sql.Composable,
        params: list[object],
        success_status: int,
    ) -> Response:
        """Run a write; `return=representation` answers the rows (`select=` picks their
        columns) and `count=…` the number written in Content-Range, as PostgREST does."""
        prefer = prefer_header(request)
        representation = prefer.get("return") == "representation"
        counted = asks_for_count(request)
        select = request.query_params.get("select")
        self._check_read_columns(relation, select_columns(select))
        if representation or counted:
            statement = sql.SQL(
                "with _w as ({} returning *)"
                " select coalesce(json_agg(_s), '[]')::text, count(*) from (select {} from _w) _s"
            ).format(statement, select_list(select))
        row = await self.run(request, caller, statement, params)
        if counted or representation:
            assert row is not None  # the aggregate above: always one row
        headers = {"Content-Range": content_range_header(0, row[1], row[1])} if row and counted else {}
        if row and representation:
            return Response(row[0], status_code=success_status, media_type=JSON_TYPE, headers=headers)
        return Response(status_code=201 if success_status == 201 else 204, headers=headers)
