"""`/rest/v1/rpc/{function}`: calling a database function, and filtering, ordering
and paging the rows of a set-returning one."""

from __future__ import annotations

import json
import re

from psycopg import sql
from starlette.requests import Request
from starlette.responses import Response

from .core import GatewayCore
from .errors import GatewayError
from .http_helpers import JSON_TYPE, asks_for_count, content_range_header, parse_json
from .jwt_auth import Caller
from .query import ReadQuery, where_clause
from .rpc_sql import rpc_rows_query, rpc_statement
from .schema_cache import Function

IDENTIFIER = re.compile(r"[A-Za-z_][A-Za-z0-9_]*")


class RpcHandlers(GatewayCore):
    """The Gateway's RPC endpoint (a mixin: `caller`, `run` and `function` are the Gateway's)."""

    async def rpc(self, request: Request) -> Response:
        caller = self.caller(request)
        if request.method == "POST":
            raw = (await request.body()).decode("utf-8", errors="replace")
            arguments = parse_json(raw) if raw.strip() else {}
            if not isinstance(arguments, dict):
                raise GatewayError(400, "PGRST102", "A function's arguments must be a JSON object")
        else:
            arguments = dict(request.query_params)
            raw = json.dumps(arguments)
        function = await self.function(request.path_params["function"], set(arguments))
        params: list[object] = [raw] if arguments else []
        if request.method == "POST" and function.returns_set and (request.query_params or asks_for_count(request)):
            return await self._rpc_rows(request, caller, function, frozenset(arguments), params)
        statement = rpc_statement(function, frozenset(arguments))
        row = await self.run(request, caller, statement, params, read_only=request.method == "GET")
        if function.returns_void:
            return Response(status_code=204)
        return Response(row[0] if row and row[0] is not None else "null", media_type=JSON_TYPE)

    async def _rpc_rows(
        self, request: Request, caller: Caller, function: Function, given: frozenset[str], params: list[object]
    ) -> Response:
        """A set-returning function's rows, filtered, ordered and paged by the query
        string as a table's would be, with Content-Range when a count is asked for."""
        query = ReadQuery.parse(
            request.query_params.multi_items(), request.headers.get("range"), self.settings.max_rows
        )
        # The function's columns are not in the schema cache: a name that is not an
        # identifier cannot be one of them, and must not reach the statement.
        for column in query.columns():
            if not IDENTIFIER.fullmatch(column):
                raise GatewayError(400, "42703", f"column {column} does not exist")
        statement = sql.SQL(
            "select coalesce(json_agg(to_jsonb(_f) - '_total'), '[]')::text, count(*), max(_total)"
            " from (select {}, count(*) over () as _total from ({}) _rows{}{} limit {} offset {}) _f"
        ).format(
            query.select_list(),
            sql.SQL(rpc_rows_query(function, given)),
            where_clause(query.conditions, params),
            query.order_clause(),
            query.limit,
            query.offset,
        )
        row = await self.run(request, caller, statement, params)
        assert row is not None  # an aggregate: always one row
        body, returned, total = row
        headers = (
            {"Content-Range": content_range_header(query.offset, returned, total or 0)}
            if asks_for_count(request)
            else {}
        )
        return Response(body, media_type=JSON_TYPE, headers=headers)
