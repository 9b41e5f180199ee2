"""workers.*: the registry of agents (entries in Redis, see domain/workers.py) and their statistics."""

from __future__ import annotations

import asyncio

from specgate.adapters.redis_workers import RedisWorkers
from specgate.domain.workers import Workers

from .context import CallContext, Services
from .registry import action

REGISTRY = "workers"


async def registry(services: Services) -> RedisWorkers:
    """The app's worker registry, opened on first use and kept in ``services.extra``.

    An app that opens one itself (in its lifespan) puts it there first and this only reads it.
    """
    found = services.extra.get(REGISTRY)
    if found is not None:
        return found
    lock = services.extra.setdefault(f"{REGISTRY}:lock", asyncio.Lock())
    async with lock:
        found = services.extra.get(REGISTRY)
        if found is None:
            found = RedisWorkers(services.redis_url)
            await found.open()
            services.extra[REGISTRY] = found
    return found


async def _workers(ctx: CallContext) -> Workers:
    return Workers(ctx.services.store, await registry(ctx.services), ctx.services.queues)


@action("workers.register")
async def register(ctx: CallContext, data: dict) -> dict:
    await (await _workers(ctx)).register(ctx.identity, ctx.client, data)
    return {}


@action("workers.unregister")
async def unregister(ctx: CallContext, data: dict) -> dict:
    await (await _workers(ctx)).unregister(ctx.identity, data["worker"])
    return {}


@action("workers.status_report")
async def status_report(ctx: CallContext, data: dict) -> dict:
    await (await _workers(ctx)).status_report(ctx.identity, ctx.client, data)
    return {}


@action("workers.get_all")
async def get_all(ctx: CallContext, data: dict) -> dict:
    return await (await _workers(ctx)).get_all(ctx.identity, data)


@action("workers.get_runtime_properties")
async def get_runtime_properties(ctx: CallContext, data: dict) -> dict:
    """No runtime properties are kept (there is no ``set_runtime_properties``): always none. The agent
    then treats the feature as available and every worker as active by default."""
    return {"runtime_properties": []}


@action("workers.get_metric_keys")
async def get_metric_keys(ctx: CallContext, data: dict) -> dict:
    return await (await _workers(ctx)).metric_keys(ctx.identity, data.get("worker_ids"))


@action("workers.get_stats")
async def get_stats(ctx: CallContext, data: dict) -> dict:
    return await (await _workers(ctx)).stats(ctx.identity, data)


@action("workers.get_activity_report")
async def get_activity_report(ctx: CallContext, data: dict) -> dict:
    return await (await _workers(ctx)).activity(ctx.identity, data)
