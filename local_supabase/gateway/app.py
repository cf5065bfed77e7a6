"""The gateway: Supabase's `/rest/v1/` served the way PostgREST serves it.

Every request runs in one transaction on a pooled connection of `authenticator`,
with the role of its JWT and `request.jwt.claims` set (see request_context), so
row level security, grants and the RPC's permission checks behave as on Supabase.
"""

from __future__ import annotations

import contextlib
import json
import re
from collections import Counter
from collections.abc import AsyncIterator, Awaitable, Callable, Sequence
from functools import lru_cache
from typing import Any

import psycopg
from psycopg import AsyncClientCursor, sql
from psycopg_pool import AsyncConnectionPool, PoolTimeout
from pydantic import Field, ValidationError
from pydantic_settings import BaseSettings, SettingsConfigDict
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from local_supabase.keys import DEFAULT_JWT_SECRET, PUBLISHABLE_KEY, SECRET_KEY
from local_supabase.request_context import REQUEST_CONTEXT_SQL, request_context_params

from .errors import GatewayError
from .faults import Faults, FaultSettings
from .jwt_auth import Caller, Keys
from .query import (
    Filter,
    Logic,
    columns_of,
    order_clause,
    order_columns,
    parse_conditions,
    requested_range,
    select_columns,
    select_list,
    where_clause,
)
from .schema_cache import Function, Relation, SchemaCache

JSON_TYPE = "application/json; charset=utf-8"
# `.single()` / `.maybe_single()` ask for one object instead of an array.
SINGLE_OBJECT = "application/vnd.pgrst.object+json"
EXPOSED_SCHEMAS = ("public",)
IDENTIFIER = re.compile(r"[A-Za-z_][A-Za-z0-9_]*")


class GatewaySettings(BaseSettings):
    """Environment variables GATEWAY_*; faults as GATEWAY_FAULTS__LATENCY_MS and so on."""

    model_config = SettingsConfigDict(env_prefix="GATEWAY_", env_nested_delimiter="__")

    database_url: str = "postgresql://authenticator:postgres@127.0.0.1:54322/postgres"
    jwt_secret: str = DEFAULT_JWT_SECRET
    # The new API keys (the Supabase CLI's local defaults) and the JWKS of the
    # asymmetric keys user sessions are signed with (GATEWAY_JWKS, as JSON).
    secret_key: str = SECRET_KEY
    publishable_key: str = PUBLISHABLE_KEY
    jwks: dict[str, Any] = Field(default_factory=lambda: {"keys": []})
    max_rows: int = Field(1000, gt=0)
    pool_min_size: int = Field(4, gt=0)
    pool_max_size: int = Field(20, gt=0)
    pool_timeout_seconds: float = Field(3.0, gt=0)
    faults: FaultSettings = FaultSettings()


class FaultInjection:
    """Outermost ASGI layer: latency, 503s, and responses lost after the commit.

    A lost response sends its status line and headers, then fails: the server
    closes the connection mid-response, which the client sees as a transport
    error although the transaction has committed, as when a network drops.
    """

    def __init__(self, app: ASGIApp, faults: Faults, requests: Counter[str]) -> None:
        self.app = app
        self.faults = faults
        self.requests = requests

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http" or not scope["path"].startswith(("/rest/v1/", "/auth/v1/")):
            await self.app(scope, receive, send)
            return
        # Counted for both APIs (the tests count calls to Auth); faults are the REST API's.
        self.requests[f"{scope['method']} {scope['path']}"] += 1
        if scope["path"].startswith("/auth/v1/"):
            await self.app(scope, receive, send)
            return
        await self.faults.delay()
        if self.faults.unavailable(scope["path"]):
            error = GatewayError(503, "PGRST503", "Service Unavailable (injected fault)")
            await JSONResponse(error.body(), status_code=503)(scope, receive, send)
            return
        if not self.faults.lose_response():
            await self.app(scope, receive, send)
            return

        async def drop_body(message: Message) -> None:
            if message["type"] == "http.response.body":
                raise ConnectionAbortedError("response dropped after commit (injected fault)")
            await send(message)

        await self.app(scope, receive, drop_body)


def _error_response(error: GatewayError) -> Response:
    return JSONResponse(error.body(), status_code=error.status, headers=error.headers)


def _prefer(request: Request) -> dict[str, str]:
    """`Prefer: return=minimal, resolution=merge-duplicates` as a dict."""
    prefer: dict[str, str] = {}
    for item in request.headers.get("prefer", "").split(","):
        key, _, value = item.strip().partition("=")
        if key:
            prefer[key] = value
    return prefer


def _parse_json(raw: str | bytes) -> Any:
    try:
        return json.loads(raw)
    except (json.JSONDecodeError, UnicodeDecodeError) as error:
        raise GatewayError(400, "PGRST102", "Empty or invalid json", str(error)) from error


async def _json_body(request: Request) -> Any:
    raw = await request.body()
    return _parse_json(raw) if raw.strip() else {}


def _as_parameter(value: Any) -> str | None:
    """A JSON value as a parameter of unknown type, cast by PostgreSQL to the column."""
    if value is None:
        return None
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, dict | list):
        return json.dumps(value)
    return str(value)


def _rows_source(call: sql.Composable, source: sql.Composable, names: list[str]) -> sql.Composable:
    """` from json_to_record(…) as _(…), lateral public.f(…) _r`: the rows of a set-returning call."""
    return source + sql.SQL(", lateral {} _r").format(call) if names else sql.SQL(" from {} _r").format(call)


@lru_cache(maxsize=256)
def _rpc_rows_query(function: Function, given: frozenset[str]) -> str:
    """`select _r.* from …`: a set-returning function's rows, as a subquery to filter."""
    names = [name for name in function.arguments if name in given]
    call, source = _call_and_source(function, names)
    return (sql.SQL("select _r.*") + _rows_source(call, source, names)).as_string()


def _call_and_source(function: Function, names: list[str]) -> tuple[sql.Composable, sql.Composable]:
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


def _counted(request: Request) -> bool:
    """Whether the request asks for a count (planned and estimated are exact here)."""
    return _prefer(request).get("count") in ("exact", "planned", "estimated")


def _content_range(offset: int, returned: int, total: int | None) -> str:
    """`first-last/total` for the rows answered, `*/total` for none; `*` for an unknown total."""
    shown = "*" if total is None else str(total)
    return f"{offset}-{offset + returned - 1}/{shown}" if returned else f"*/{shown}"


@lru_cache(maxsize=256)
def _rpc_statement(function: Function, given: frozenset[str]) -> str:
    """`select public.f(a := _.a, …) from json_to_record($1) as _(a type, …)`.

    As PostgREST does it: json_to_record casts each JSON value to the argument's
    declared type, and arguments not given keep their defaults. Rendered to a
    string once: composing it again on every call cost more than running it.
    """
    names = [name for name in function.arguments if name in given]
    call, source = _call_and_source(function, names)
    if function.returns_void:
        statement = sql.SQL("select {}").format(call) + source
    elif function.returns_set:
        statement = sql.SQL("select coalesce(json_agg(_r), '[]')::text") + _rows_source(call, source, names)
    else:
        statement = sql.SQL("select to_json({})::text").format(call) + source
    return statement.as_string()


class Gateway:
    def __init__(self, settings: GatewaySettings) -> None:
        self.settings = settings
        self.pool = AsyncConnectionPool(
            settings.database_url,
            min_size=settings.pool_min_size,
            max_size=settings.pool_max_size,
            kwargs={"autocommit": True},  # each request is its own implicit transaction
            # Fail fast while the database is down, as PostgREST does, instead of
            # holding the request until a connection comes back.
            timeout=settings.pool_timeout_seconds,
            open=False,
        )
        self.schema = SchemaCache()
        self.faults = Faults(settings.faults)
        self.requests: Counter[str] = Counter()
        self.keys = Keys(
            settings.jwt_secret,
            json.dumps(settings.jwks, sort_keys=True),
            {settings.secret_key: "service_role", settings.publishable_key: "anon"},
        )

    # --- plumbing ---------------------------------------------------------------------

    def caller(self, request: Request) -> Caller:
        return self.keys.caller(request.headers)

    async def run(
        self,
        request: Request,
        caller: Caller,
        statement: sql.Composable | str,
        params: Sequence[object] = (),
        read_only: bool = False,
    ) -> tuple[Any, ...] | None:
        """Run one statement as PostgREST runs a request; return its first row.

        The request's settings and the statement travel as one multi-statement
        query, which PostgreSQL runs as one implicit transaction: the settings
        are undone and an error rolls everything back when it ends. psycopg's
        client-side cursor quotes the values (libpq escaping). One round trip and
        one execute instead of BEGIN, settings, statement, COMMIT, which cost most
        of the gateway's CPU per request (bench/gateway_throughput.py).
        """
        context = request_context_params(
            caller.role, caller.claims, request.method, request.scope["path"], request.headers
        )
        if not isinstance(statement, str):
            statement = statement.as_string()
        try:
            async with self.pool.connection() as conn:
                cursor = AsyncClientCursor(conn)
                query = cursor.mogrify(f"{REQUEST_CONTEXT_SQL};{statement}", (*context, *params))
                await cursor.execute(("set transaction read only;" if read_only else "") + query)
                while cursor.nextset():
                    pass
                return await cursor.fetchone() if cursor.description else None
        except psycopg.Error as error:
            raise GatewayError.from_database(error, caller.authenticated) from error
        except PoolTimeout as error:
            raise GatewayError.database_unreachable(str(error)) from error

    async def relation(self, name: str) -> Relation:
        if name not in self.schema.relations:
            await self.reload_schema()
        if name not in self.schema.relations:
            raise GatewayError(
                404,
                "PGRST205",
                f"Could not find the table 'public.{name}' in the schema cache",
            )
        return self.schema.relations[name]

    async def function(self, name: str, given: set[str]) -> Function:
        found = self.schema.find_function(name, given)
        if found is None:
            await self.reload_schema()
            found = self.schema.find_function(name, given)
        if found is None:
            arguments = ", ".join(sorted(given))
            raise GatewayError(
                404,
                "PGRST202",
                f"Could not find the function public.{name}({arguments}) in the schema cache",
                hint="Check the function's name and the names of its arguments.",
            )
        return found

    async def reload_schema(self) -> None:
        async with self.pool.connection() as conn:
            await self.schema.load(conn)

    # --- /rest/v1/rpc/{function} ---------------------------------------------------------

    async def rpc(self, request: Request) -> Response:
        caller = self.caller(request)
        if request.method == "POST":
            raw = (await request.body()).decode("utf-8", errors="replace")
            arguments = _parse_json(raw) if raw.strip() else {}
            if not isinstance(arguments, dict):
                raise GatewayError(400, "PGRST102", "A function's arguments must be a JSON object")
        else:
            arguments = dict(request.query_params)
            raw = json.dumps(arguments)
        function = await self.function(request.path_params["function"], set(arguments))
        params: list[object] = [raw] if arguments else []
        if request.method == "POST" and function.returns_set and (request.query_params or _counted(request)):
            return await self._rpc_rows(request, caller, function, frozenset(arguments), params)
        statement = _rpc_statement(function, frozenset(arguments))
        row = await self.run(request, caller, statement, params, read_only=request.method == "GET")
        if function.returns_void:
            return Response(status_code=204)
        return Response(row[0] if row and row[0] is not None else "null", media_type=JSON_TYPE)

    async def _rpc_rows(
        self, request: Request, caller: Caller, function: Function, given: frozenset[str], params: list[object]
    ) -> Response:
        """A set-returning function's rows, filtered, ordered and paged by the query
        string as a table's would be, with Content-Range when a count is asked for."""
        query = request.query_params
        conditions = parse_conditions(query.multi_items())
        # The function's columns are not in the schema cache: a name that is not an
        # identifier cannot be one of them, and must not reach the statement.
        for column in columns_of(conditions) | select_columns(query.get("select")) | order_columns(query.get("order")):
            if not IDENTIFIER.fullmatch(column):
                raise GatewayError(400, "42703", f"column {column} does not exist")
        offset, limit = requested_range(
            query.get("limit"), query.get("offset"), request.headers.get("range"), self.settings.max_rows
        )
        statement = sql.SQL(
            "select coalesce(json_agg(to_jsonb(_f) - '_total'), '[]')::text, count(*), max(_total)"
            " from (select {}, count(*) over () as _total from ({}) _rows{}{} limit {} offset {}) _f"
        ).format(
            select_list(query.get("select")),
            sql.SQL(_rpc_rows_query(function, given)),
            where_clause(conditions, params),
            order_clause(query.get("order")),
            limit,
            offset,
        )
        body, returned, total = await self.run(request, caller, statement, params)
        headers = {"Content-Range": _content_range(offset, returned, total or 0)} if _counted(request) else {}
        return Response(body, media_type=JSON_TYPE, headers=headers)

    # --- /rest/v1/{relation} ---------------------------------------------------------------

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
        query = request.query_params
        conditions = parse_conditions(query.multi_items())
        self._check_read_columns(
            relation, columns_of(conditions) | select_columns(query.get("select")) | order_columns(query.get("order"))
        )
        offset, limit = requested_range(
            query.get("limit"), query.get("offset"), request.headers.get("range"), self.settings.max_rows
        )
        params: list[object] = []
        where = where_clause(conditions, params)
        table = sql.Identifier("public", relation.name)
        total_sql = sql.SQL("null::bigint")
        if _counted(request):
            total_sql = sql.SQL("(select count(*) from {}{})").format(table, where)
            params = params * 2  # the count repeats the filter's placeholders
        statement = sql.SQL(
            "select coalesce(json_agg(_t), '[]')::text, count(*), {} from (select {} from {}{}{} limit {} offset {}) _t"
        ).format(
            total_sql, select_list(query.get("select")), table, where, order_clause(query.get("order")), limit, offset
        )
        body, returned, total = await self.run(request, caller, statement, params, read_only=True)
        content_range = _content_range(offset, returned, total)
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
        payload = await _json_body(request)
        rows = payload if isinstance(payload, list) else [payload]
        if not all(isinstance(row, dict) for row in rows):
            raise GatewayError(400, "PGRST102", "Expected a JSON object or an array of objects")
        prefer = _prefer(request)
        columns = self._columns(request, relation, rows)
        if not rows or not columns:
            return Response(status_code=201)

        params: list[object] = []
        missing = sql.SQL("default") if prefer.get("missing") == "default" else sql.SQL("null")
        values = []
        for row in rows:
            cells = []
            for column in columns:
                if column in row:
                    params.append(_as_parameter(row[column]))
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
        changes = await _json_body(request)
        if not isinstance(changes, dict):
            raise GatewayError(400, "PGRST102", "PATCH takes a JSON object")
        self._check_columns(relation, changes)
        if not changes:
            return Response(status_code=204)
        params: list[object] = [_as_parameter(value) for value in changes.values()]
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
        prefer = _prefer(request)
        representation = prefer.get("return") == "representation"
        counted = _counted(request)
        select = request.query_params.get("select")
        self._check_read_columns(relation, select_columns(select))
        if representation or counted:
            statement = sql.SQL(
                "with _w as ({} returning *)"
                " select coalesce(json_agg(_s), '[]')::text, count(*) from (select {} from _w) _s"
            ).format(statement, select_list(select))
        row = await self.run(request, caller, statement, params)
        headers = {"Content-Range": _content_range(0, row[1], row[1])} if counted else {}
        if representation:
            return Response(row[0], status_code=success_status, media_type=JSON_TYPE, headers=headers)
        return Response(status_code=201 if success_status == 201 else 204, headers=headers)

    # --- /auth/v1: what Supabase Auth publishes ------------------------------------------

    async def jwks_endpoint(self, request: Request) -> Response:
        """The public keys user sessions are signed with, as Supabase Auth publishes them."""
        return JSONResponse(self.settings.jwks)

    def _require_service_role(self, request: Request) -> None:
        """The admin endpoints take down or reveal the API: the secret key only."""
        caller = self.caller(request)
        if caller.role != "service_role":
            status = 403 if caller.authenticated else 401
            raise GatewayError(status, "42501", "the gateway's admin endpoints take the service role's key")

    async def faults_endpoint(self, request: Request) -> Response:
        self._require_service_role(request)
        if request.method == "PUT":
            try:
                self.faults.configure(FaultSettings.model_validate(await _json_body(request)))
            except ValidationError as error:
                return JSONResponse({"message": str(error)}, status_code=422)
        return JSONResponse(self.faults.settings.model_dump())

    async def stats_endpoint(self, request: Request) -> Response:
        self._require_service_role(request)
        if request.method == "DELETE":
            self.requests.clear()
        return JSONResponse({"requests": dict(self.requests), "total": sum(self.requests.values())})

    async def health(self, request: Request) -> Response:
        return JSONResponse({"ok": True})


def create_app(settings: GatewaySettings | None = None) -> ASGIApp:
    gateway = Gateway(settings or GatewaySettings())

    def handle(
        method: Callable[[Request], Awaitable[Response]], rest: bool = False
    ) -> Callable[[Request], Awaitable[Response]]:
        async def endpoint(request: Request) -> Response:
            try:
                if rest:  # the Data API serves its exposed schemas only
                    Gateway.check_profile(request)
                return await method(request)
            except GatewayError as error:
                return _error_response(error)

        return endpoint

    relation_handlers = {
        "GET": handle(gateway.read, rest=True),
        "HEAD": handle(gateway.read, rest=True),
        "POST": handle(gateway.insert, rest=True),
        "PATCH": handle(gateway.update, rest=True),
        "DELETE": handle(gateway.delete, rest=True),
    }

    async def relation_endpoint(request: Request) -> Response:
        return await relation_handlers[request.method](request)

    @contextlib.asynccontextmanager
    async def lifespan(app: Starlette) -> AsyncIterator[None]:
        await gateway.pool.open(wait=True)
        await gateway.reload_schema()
        yield
        await gateway.pool.close()

    app = Starlette(
        routes=[
            Route("/rest/v1/rpc/{function}", handle(gateway.rpc, rest=True), methods=["GET", "POST"]),
            Route("/rest/v1/{relation}", relation_endpoint, methods=["GET", "HEAD", "POST", "PATCH", "DELETE"]),
            Route("/auth/v1/.well-known/jwks.json", gateway.jwks_endpoint, methods=["GET"]),
            Route("/_gateway/faults", handle(gateway.faults_endpoint), methods=["GET", "PUT"]),
            Route("/_gateway/stats", handle(gateway.stats_endpoint), methods=["GET", "DELETE"]),
            Route("/_gateway/health", gateway.health),
        ],
        lifespan=lifespan,
    )
    app.state.gateway = gateway
    return FaultInjection(app, gateway.faults, gateway.requests)
