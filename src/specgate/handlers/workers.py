"""workers.*: the registry of agents (entries in Redis, see domain/workers.py) and their statistics."""

from __future__ import annotations

from specgate.domain.workers import Workers

from .context import CallContext
from .registry import action


def _workers(ctx: CallContext) -> Workers:
    """The worker domain over the registry the app opened for its lifetime."""
    services = ctx.services
    return Workers(services.store, services.workers, services.queues)


@action("workers.register")
async def register(ctx: CallContext, data: dict) -> dict:
    workers = _workers(ctx)
    await workers.register(ctx.identity, ctx.client, data)
    return {}


@action("workers.unregister")
async def unregister(ctx: CallContext, data: dict) -> dict:
    workers = _workers(ctx)
    await workers.unregister(ctx.identity, data["worker"])
    return {}


@action("workers.status_report")
async def status_report(ctx: CallContext, data: dict) -> dict:
    workers = _workers(ctx)
    await workers.status_report(ctx.identity, ctx.client, data)
    return {}


@action("workers.get_all")
async def get_all(ctx: CallContext, data: dict) -> dict:
    workers = _workers(ctx)
    return await workers.get_all(ctx.identity, data)


@action("workers.get_runtime_properties")
async def get_runtime_properties(ctx: CallContext, data: dict) -> dict:
    """No runtime properties are kept (there is no ``set_runtime_properties``): always none. The agent
    then treats the feature as available and every worker as active by default."""
    return {"runtime_properties": []}


@action("workers.get_metric_keys")
async def get_metric_keys(ctx: CallContext, data: dict) -> dict:
    workers = _workers(ctx)
    return await workers.metric_keys(ctx.identity, data.get("worker_ids"))


@action("workers.get_stats")
async def get_stats(ctx: CallContext, data: dict) -> dict:
    workers = _workers(ctx)
    return await workers.stats(ctx.identity, data)


@action("workers.get_activity_report")
async def get_activity_report(ctx: CallContext, data: dict) -> dict:
    workers = _workers(ctx)
    return await workers.activity(ctx.identity, data)
