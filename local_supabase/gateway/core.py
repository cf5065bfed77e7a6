"""What the gateway's endpoint mixins (rpc.py, tables.py, admin.py) use of the
Gateway, which app.py defines: declared here so that each mixin is type-checked
against it."""

from __future__ import annotations

from collections import Counter
from collections.abc import Sequence
from typing import Any

from psycopg import sql
from starlette.requests import Request

from .faults import Faults
from .jwt_auth import Caller
from .schema_cache import Function, Relation
from .settings import GatewaySettings


class GatewayCore:
    settings: GatewaySettings
    faults: Faults
    requests: Counter[str]

    def caller(self, request: Request) -> Caller:
        raise NotImplementedError

    async def run(
        self,
        request: Request,
        caller: Caller,
        statement: sql.Composable | str,
        params: Sequence[object] = (),
        read_only: bool = False,
    ) -> tuple[Any, ...] | None:
        raise NotImplementedError

    async def relation(self, name: str) -> Relation:
        raise NotImplementedError

    async def function(self, name: str, given: set[str]) -> Function:
        raise NotImplementedError
