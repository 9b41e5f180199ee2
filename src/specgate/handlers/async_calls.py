"""``async.result``: the outcome of a call sent with ``X-Api-Async: 1``."""

from __future__ import annotations

from specgate._generated import errors as E
from specgate.core.errors import ApiError
from specgate.runtime import async_calls

from .context import CallContext
from .registry import action


@action("async.result")
async def result(ctx: CallContext, data: dict) -> dict:
    found = await async_calls.outcome(ctx.services, data["id"], ctx.company)
    if found is None:
        raise ApiError(E.INVALID_ID, "no asynchronous call with this id: unknown, another company's, or expired", id=data["id"])
    found.pop("company", None)
    return found
