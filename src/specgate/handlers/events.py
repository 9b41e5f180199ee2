"""events.*: task events (console output, scalars, ...) and reading a task's log back (domain/events.py)."""

from __future__ import annotations

from specgate._generated import errors as E
from specgate.core.errors import ApiError
from specgate.domain.events import Events

from .context import CallContext
from .registry import action


def _events(ctx: CallContext) -> Events:
    return Events(ctx.services.store)


@action("events.add")
async def add(ctx: CallContext, data: dict) -> dict:
    return await _events(ctx).add(ctx.identity, [data], ctx.header("worker"))


@action("events.add_batch")
async def add_batch(ctx: CallContext, data: list) -> dict:
    """json-lines, one event a line (each validated as an ``events.add`` request); a plain JSON object
    body is a batch of one. The ``X-ClearML-Worker`` header is the worker of events that name none."""
    if not data:
        raise ApiError(E.BATCH_CONTAINS_NO_ITEMS)
    return await _events(ctx).add(ctx.identity, data, ctx.header("worker"))


@action("events.get_task_log", since="2.1")
async def get_task_log_scroll(ctx: CallContext, data: dict) -> dict:
    return await _events(ctx).log_by_scroll(ctx.company, data)


@action("events.get_task_log", since="2.9")
async def get_task_log(ctx: CallContext, data: dict) -> dict:
    return await _events(ctx).log_by_time(ctx.company, data)
