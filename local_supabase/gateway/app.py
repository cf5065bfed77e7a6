"""The gateway: Supabase's `/rest/v1/` served the way PostgREST serves it.

Every request runs in one transaction on a pooled connection of `authenticator`,
with the role of its JWT and `request.jwt.claims` set (see request_context), so
row level security, grants and the RPC's permission checks behave as on Supabase.
The endpoints live by concern: rpc.py, tables.py, admin.py; this module holds
what they share (the pool, the keys, the schema cache) and builds the app.
"""

from __future__ import annotations

import contextlib
import json
from collections import Counter
from collections.abc import AsyncIterator, Awaitable, Callable, Sequence
from typing import Any

import psycopg
from psycopg import AsyncClientCursor, sql
from psycopg_pool import AsyncConnectionPool, PoolTimeout
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route
from starlette.types import ASGIApp

from local_supabase.request_context import REQUEST_CONTEXT_SQL, request_context_params

from .admin import AdminEndpoints
from .errors import GatewayError
from .faults import FaultInjection, Faults
from .http_helpers import error_response
from .jwt_auth import Caller, Keys
from .rpc import RpcHandlers
from .schema_cache import Function, Relation, SchemaCache
from .settings import GatewaySettings
from .tables import TableHandlers


class Gateway(RpcHandlers, TableHandlers, AdminEndpoints):
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
                role_settings = self.schema.role_settings.get(caller.role, ())
                settings_sql = ";select set_config(%s, %s, true)" * len(role_settings)
                query = cursor.mogrify(
                    f"{REQUEST_CONTEXT_SQL}{settings_sql};{statement}",
                    (*context, *(part for setting in role_settings for part in setting), *params),
                )
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
                return error_response(error)

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


def gateway_of(app: ASGIApp) -> Gateway:
    """The Gateway behind an app that create_app made (the tests reach its faults)."""
    assert isinstance(app, FaultInjection)
    assert isinstance(app.app, Starlette)
    gateway = app.app.state.gateway
    assert isinstance(gateway, Gateway)
    return gateway
