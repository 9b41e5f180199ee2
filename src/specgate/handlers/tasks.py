"""tasks.*: the task lifecycle (create, read, edit, status changes, parameters, batches).

Thin: each handler unpacks its validated request and calls ``specgate.domain``. Enqueue and dequeue
live in ``domain.task_queueing``; the dequeue that stop, reset, delete and archive need goes through
``task_ops.release_queue_entry``.
"""

from __future__ import annotations

from functools import partial

from specgate._generated import errors as E
from specgate.core.errors import ApiError
from specgate.core.versions import Version
from specgate.domain import task_ops as ops
from specgate.domain import task_params as params
from specgate.domain import task_queueing as queueing
from specgate.domain import tasks
from specgate.domain.task_access import load_many_writable, load_writable
from specgate.domain.task_query import get_all as query_tasks

from .context import CallContext
from .registry import action

V2_20 = Version(2, 20)


def _store(ctx: CallContext):
    return ctx.services.store



# --- create and read -------------------------------------------------------------------------------


@action("tasks.create")
async def create(ctx: CallContext, data: dict) -> dict:
    return {"id": await tasks.create(_store(ctx), ctx.identity, data, ctx.requested)}


@action("tasks.validate")
async def validate(ctx: CallContext, data: dict) -> dict:
    await tasks.validate(_store(ctx), ctx.identity, data, ctx.requested)
    return {}


@action("tasks.get_by_id")
async def get_by_id(ctx: CallContext, data: dict) -> dict:
    return {"task": await tasks.get_by_id(_store(ctx), ctx.company, data["task"], ctx.requested)}


@action("tasks.get_all")
async def get_all(ctx: CallContext, data: dict) -> dict:
    return await query_tasks(_store(ctx), ctx.company, data, ctx.requested)


@action("tasks.get_all_ex")
async def get_all_ex(ctx: CallContext, data: dict) -> dict:
    allow_public = data.get("allow_public", True)
    return await query_tasks(_store(ctx), ctx.company, data, ctx.requested, allow_public=allow_public)


@action("tasks.get_by_id_ex")
async def get_by_id_ex(ctx: CallContext, data: dict) -> dict:
    if "id" not in data:
        raise ApiError(E.MISSING_REQUIRED_FIELDS, missing=["id"])
    return await query_tasks(_store(ctx), ctx.company, data, ctx.requested, hide=False)


@action("tasks.get_types")
async def get_types(ctx: CallContext, data: dict) -> dict:
    return {"types": await tasks.get_types(_store(ctx), ctx.company, data.get("projects"))}


# --- edits -----------------------------------------------------------------------------------------


@action("tasks.edit")
async def edit(ctx: CallContext, data: dict) -> dict:
    return await tasks.edit(_store(ctx), ctx.identity, data, ctx.requested)


@action("tasks.update")
async def update(ctx: CallContext, data: dict) -> dict:
    return await tasks.update(_store(ctx), ctx.identity, data, ctx.requested)


@action("tasks.update_batch")
async def update_batch(ctx: CallContext, data: list) -> dict:
    return {"updated": await tasks.update_batch(_store(ctx), ctx.identity, data)}


@action("tasks.clone")
async def clone(ctx: CallContext, data: dict) -> dict:
    return await tasks.clone(_store(ctx), ctx.identity, data, ctx.requested)


@action("tasks.move")
async def move(ctx: CallContext, data: dict) -> dict:
    return await tasks.move(_store(ctx), ctx.identity, data)


@action("tasks.update_tags")
async def update_tags(ctx: CallContext, data: dict) -> dict:
    return {"updated": await tasks.update_tags(_store(ctx), ctx.identity, data)}


@action("tasks.make_public")
async def make_public(ctx: CallContext, data: dict) -> dict:
    return {"updated": await tasks.make_public(_store(ctx), ctx.identity, data.get("ids") or [], True)}


@action("tasks.make_private")
async def make_private(ctx: CallContext, data: dict) -> dict:
    return {"updated": await tasks.make_public(_store(ctx), ctx.identity, data.get("ids") or [], False)}


@action("tasks.set_requirements")
async def set_requirements(ctx: CallContext, data: dict) -> dict:
    return await params.set_requirements(_store(ctx), ctx.identity, data["task"], data["requirements"])


# --- status changes --------------------------------------------------------------------------------


@action("tasks.started")
async def started(ctx: CallContext, data: dict) -> dict:
    return await ops.started(_store(ctx), ctx.identity, data)


@action("tasks.stopped")
async def stopped(ctx: CallContext, data: dict) -> dict:
    return await ops.stopped(_store(ctx), ctx.identity, data)


@action("tasks.failed")
async def failed(ctx: CallContext, data: dict) -> dict:
    return await ops.failed(_store(ctx), ctx.identity, data)


@action("tasks.completed")
async def completed(ctx: CallContext, data: dict) -> dict:
    return await ops.completed(_store(ctx), ctx.identity, data, with_publish_flag=ctx.actual >= V2_20)


@action("tasks.close")
async def close(ctx: CallContext, data: dict) -> dict:
    return await ops.close(_store(ctx), ctx.identity, data)


@action("tasks.publish")
async def publish(ctx: CallContext, data: dict) -> dict:
    return await ops.publish(_store(ctx), ctx.identity, data["task"], data)


@action("tasks.publish_many")
async def publish_many(ctx: CallContext, data: dict) -> dict:
    return await ops.run_batch(data["ids"], partial(ops.publish, _store(ctx), ctx.identity, data=data))


@action("tasks.stop")
async def stop(ctx: CallContext, data: dict) -> dict:
    return await ops.stop(_store(ctx), ctx.identity, data["task"], data, queues=ctx.queues())


@action("tasks.stop_many")
async def stop_many(ctx: CallContext, data: dict) -> dict:
    return await ops.run_batch(data["ids"], partial(ops.stop, _store(ctx), ctx.identity, data=data, queues=ctx.queues()))


@action("tasks.reset")
async def reset(ctx: CallContext, data: dict) -> dict:
    return await ops.reset(_store(ctx), ctx.identity, data["task"], data, queues=ctx.queues())


@action("tasks.reset_many")
async def reset_many(ctx: CallContext, data: dict) -> dict:
    async def one(task_id: str) -> dict:
        result = await ops.reset(_store(ctx), ctx.identity, task_id, data, queues=ctx.queues())
        return {**result, "dequeued": bool(result["dequeued"].get("removed"))}

    return await ops.run_batch(data["ids"], one)


@action("tasks.archive")
async def archive(ctx: CallContext, data: dict) -> dict:
    store = _store(ctx)
    docs = await load_many_writable(store, ctx.company, data["tasks"])
    return {"archived": sum([await ops.archive(store, ctx.identity, doc, data, queues=ctx.queues()) for doc in docs])}


@action("tasks.archive_many")
async def archive_many(ctx: CallContext, data: dict) -> dict:
    store = _store(ctx)

    async def one(task_id: str) -> dict:
        doc = await load_writable(store, ctx.company, task_id)
        return {"archived": bool(await ops.archive(store, ctx.identity, doc, data, queues=ctx.queues()))}

    return await ops.run_batch(data["ids"], one)


@action("tasks.unarchive_many")
async def unarchive_many(ctx: CallContext, data: dict) -> dict:
    async def one(task_id: str) -> dict:
        return {"unarchived": bool(await ops.unarchive(_store(ctx), ctx.identity, task_id, data))}

    return await ops.run_batch(data["ids"], one)


@action("tasks.delete")
async def delete(ctx: CallContext, data: dict) -> dict:
    return await ops.delete(_store(ctx), ctx.identity, data["task"], data, queues=ctx.queues())


@action("tasks.delete_many")
async def delete_many(ctx: CallContext, data: dict) -> dict:
    return await ops.run_batch(data["ids"], partial(ops.delete, _store(ctx), ctx.identity, data=data, queues=ctx.queues()))


@action("tasks.ping")
async def ping(ctx: CallContext, data: dict) -> dict:
    await ops.ping(_store(ctx), ctx.identity, data["task"])
    return {}


# --- hyper-parameters, configuration, artifacts, models --------------------------------------------


@action("tasks.get_hyper_params")
async def get_hyper_params(ctx: CallContext, data: dict) -> dict:
    return {"params": await params.get_hyper_params(_store(ctx), ctx.company, data["tasks"])}


@action("tasks.edit_hyper_params")
async def edit_hyper_params(ctx: CallContext, data: dict) -> dict:
    return {"updated": await params.edit_hyper_params(_store(ctx), ctx.identity, data)}


@action("tasks.delete_hyper_params")
async def delete_hyper_params(ctx: CallContext, data: dict) -> dict:
    return {"deleted": await params.delete_hyper_params(_store(ctx), ctx.identity, data)}


@action("tasks.get_configurations")
async def get_configurations(ctx: CallContext, data: dict) -> dict:
    found = await params.get_configurations(_store(ctx), ctx.company, data["tasks"], data.get("names"))
    return {"configurations": found}


@action("tasks.get_configuration_names")
async def get_configuration_names(ctx: CallContext, data: dict) -> dict:
    skip_empty = data.get("skip_empty", True)
    return {"configurations": await params.get_configuration_names(_store(ctx), ctx.company, data["tasks"], skip_empty)}


@action("tasks.edit_configuration")
async def edit_configuration(ctx: CallContext, data: dict) -> dict:
    return {"updated": await params.edit_configuration(_store(ctx), ctx.identity, data)}


@action("tasks.delete_configuration")
async def delete_configuration(ctx: CallContext, data: dict) -> dict:
    return {"deleted": await params.delete_configuration(_store(ctx), ctx.identity, data)}


@action("tasks.add_or_update_artifacts")
async def add_or_update_artifacts(ctx: CallContext, data: dict) -> dict:
    return {"updated": await params.add_or_update_artifacts(_store(ctx), ctx.identity, data)}


@action("tasks.delete_artifacts")
async def delete_artifacts(ctx: CallContext, data: dict) -> dict:
    return {"deleted": await params.delete_artifacts(_store(ctx), ctx.identity, data)}


@action("tasks.add_or_update_model")
async def add_or_update_model(ctx: CallContext, data: dict) -> dict:
    return {"updated": await params.add_or_update_model(_store(ctx), ctx.identity, data)}


@action("tasks.delete_models")
async def delete_models(ctx: CallContext, data: dict) -> dict:
    return {"updated": await params.delete_models(_store(ctx), ctx.identity, data)}


# --- queues ----------------------------------------------------------------------------------------


@action("tasks.enqueue")
async def enqueue(ctx: CallContext, data: dict) -> dict:
    return await queueing.enqueue(_store(ctx), ctx.queues(), ctx.identity, data["task"], data)


@action("tasks.enqueue_many")
async def enqueue_many(ctx: CallContext, data: dict) -> dict:
    async def one(task_id: str) -> dict:
        result = await queueing.enqueue(_store(ctx), ctx.queues(), ctx.identity, task_id, data)
        result.pop("queue_watched", None)
        return {**result, "queued": bool(result["queued"])}

    out = await ops.run_batch(data["ids"], one)
    if data.get("verify_watched_queue"):
        out["queue_watched"] = False
    return out


@action("tasks.dequeue")
async def dequeue(ctx: CallContext, data: dict) -> dict:
    return await queueing.dequeue(_store(ctx), ctx.queues(), ctx.identity, data["task"], data)


@action("tasks.dequeue_many")
async def dequeue_many(ctx: CallContext, data: dict) -> dict:
    async def one(task_id: str) -> dict:
        result = await queueing.dequeue(_store(ctx), ctx.queues(), ctx.identity, task_id, data)
        return {**result, "dequeued": bool(result["dequeued"])}

    return await ops.run_batch(data["ids"], one)
