"""queues.*: queue metadata and contents (entries live in Redis; see domain/queues.py)."""

from __future__ import annotations

from specgate._generated import errors as E
from specgate.core.clock import now_iso
from specgate.core.errors import ApiError
from specgate.domain.task_access import TASKS, change_status, modify
from specgate.domain.task_ops import release_queue_entry
from specgate.domain.task_states import QUEUED, STOPPED, set_path

from .context import CallContext
from .registry import action



async def _in_queue(ctx: CallContext, queue_id: str, task_id: str) -> int:
    position = await ctx.services.queues.position(queue_id, task_id)
    if position is None:
        raise ApiError(E.INVALID_QUEUE_OR_TASK_NOT_QUEUED, task=task_id, id=queue_id, company=ctx.company)
    return position


@action("queues.create")
async def create(ctx: CallContext, data: dict) -> dict:
    return {"id": await ctx.queues().create(ctx.identity, data)}


@action("queues.get_by_id")
async def get_by_id(ctx: CallContext, data: dict) -> dict:
    queues = ctx.queues()
    doc = await queues.load(ctx.company, data["queue"])
    return {"queue": await queues.render(doc, data.get("max_task_entries"))}


@action("queues.get_all")
async def get_all(ctx: CallContext, data: dict) -> dict:
    return await ctx.queues().get_all(ctx.identity, data)


@action("queues.get_all_ex")
async def get_all_ex(ctx: CallContext, data: dict) -> dict:
    return await ctx.queues().get_all(ctx.identity, data)


@action("queues.get_default")
async def get_default(ctx: CallContext, data: dict) -> dict:
    doc = await ctx.queues().default(ctx.company)
    return {"id": doc["id"], "name": doc["name"]}


@action("queues.update")
async def update(ctx: CallContext, data: dict) -> dict:
    return await ctx.queues().update(ctx.identity, data["queue"], data)


@action("queues.delete")
async def delete(ctx: CallContext, data: dict) -> dict:
    queues = ctx.queues()
    doc = await queues.load(ctx.company, data["queue"])
    waiting = [task for task, _ in await queues.backend.entries(doc["id"])]
    if waiting and not data.get("force"):
        raise ApiError(E.QUEUE_NOT_EMPTY, "use force=true to delete", id=doc["id"])
    reason = f"Queue {doc['id']} was deleted"
    for task_id in waiting:  # queued tasks go back to the status they had before
        task = await ctx.services.store.get(TASKS, task_id, companies=[ctx.company])
        if task is not None and task.get("status") == QUEUED:
            await release_queue_entry(ctx.services.store, ctx.identity, task, queues=queues, reason=reason)
    await queues.backend.clear(doc["id"])
    await ctx.services.store.delete("queues", doc["id"], companies=[ctx.company])
    return {"deleted": 1}


@action("queues.add_task")
async def add_task(ctx: CallContext, data: dict) -> dict:
    queues = ctx.queues()
    queue = await queues.load(ctx.company, data["queue"])
    task = await ctx.services.store.get(TASKS, data["task"], companies=[ctx.company])
    if task is None:
        raise ApiError(E.INVALID_TASK_ID, id=data["task"], company=ctx.company)
    if not await queues.backend.push(queue["id"], task["id"], now_iso()):
        raise ApiError(E.TASK_ALREADY_QUEUED, task=task["id"])
    if data.get("update_execution_queue", True):
        await modify(ctx.services.store, task, lambda d: set_path(d, "execution.queue", queue["id"]))
    await queues.touch(ctx.company, queue["id"])
    return {"added": 1}


@action("queues.get_next_task")
async def get_next_task(ctx: CallContext, data: dict) -> dict:
    """Pop the head atomically (one entry, one consumer); the task status is left to the caller,
    except that a popped ``stopped`` task goes back to ``queued`` (ClearML's race fix)."""
    queues, store = ctx.queues(), ctx.services.store
    queue = await queues.load(ctx.company, data["queue"])
    while True:
        popped = await queues.backend.pop(queue["id"], data.get("task"))
        if popped is None:
            return {}
        task_id, added = popped
        try:
            task = await store.get(TASKS, task_id, companies=[ctx.company])
            if task is not None:
                await queues.touch(ctx.company, queue["id"])
                if task.get("status") == STOPPED:
                    await change_status(store, ctx.identity, task, QUEUED, reason="popped while stopped", force=True)
        except Exception:  # the store failed (a 503): nobody receives the entry, so it goes back
            await queues.backend.restore(queue["id"], task_id, added)
            raise
        if task is not None:
            break  # an entry of a task deleted meanwhile is dropped, and the next one served
    out: dict = {"entry": {"task": task_id, "added": added}}
    if data.get("get_task_info"):
        out["task_info"] = {"company": task["company"], "user": task.get("user", "")}
    return out


@action("queues.remove_task")
async def remove_task(ctx: CallContext, data: dict) -> dict:
    queues = ctx.queues()
    queue = await queues.load(ctx.company, data["queue"])
    await _in_queue(ctx, queue["id"], data["task"])
    removed = int(await queues.backend.remove(queue["id"], data["task"]))
    if data.get("update_task_status"):
        task = await ctx.services.store.get(TASKS, data["task"], companies=[ctx.company])
        if task is not None and task.get("status") == QUEUED:
            reason = f"Task was removed from the queue {queue['id']}"
            await release_queue_entry(ctx.services.store, ctx.identity, task, queues=queues, reason=reason)
    await queues.touch(ctx.company, queue["id"])
    return {"removed": removed}


async def _move(ctx: CallContext, data: dict, target) -> dict:
    queues = ctx.queues()
    queue = await queues.load(ctx.company, data["queue"])
    current = await _in_queue(ctx, queue["id"], data["task"])
    position = await queues.backend.move(queue["id"], data["task"], target(current))
    if position is None:
        raise ApiError(E.FAILED_ADDING_DURING_REPOSITION, task=data["task"])
    await queues.touch(ctx.company, queue["id"])
    return {"position": position}


@action("queues.move_task_forward")
async def move_task_forward(ctx: CallContext, data: dict) -> dict:
    return await _move(ctx, data, lambda at: max(at - data.get("count", 1), 0))


@action("queues.move_task_backward")
async def move_task_backward(ctx: CallContext, data: dict) -> dict:
    return await _move(ctx, data, lambda at: at + data.get("count", 1))


@action("queues.move_task_to_front")
async def move_task_to_front(ctx: CallContext, data: dict) -> dict:
    return await _move(ctx, data, lambda at: 0)


@action("queues.move_task_to_back")
async def move_task_to_back(ctx: CallContext, data: dict) -> dict:
    return await _move(ctx, data, lambda at: -1)


@action("queues.peek_task")
async def peek_task(ctx: CallContext, data: dict) -> dict:
    queues = ctx.queues()
    queue = await queues.load(ctx.company, data["queue"])
    head = await queues.backend.entries(queue["id"], 1)
    return {"task": head[0][0] if head else None}


@action("queues.get_num_entries")
async def get_num_entries(ctx: CallContext, data: dict) -> dict:
    queues = ctx.queues()
    queue = await queues.load(ctx.company, data["queue"])
    return {"num": await queues.backend.length(queue["id"])}


@action("queues.get_queue_metrics")
async def get_queue_metrics(ctx: CallContext, data: dict) -> dict:
    return await ctx.queues().metrics(ctx.identity, data.get("queue_ids"))
