"""tasks.enqueue and tasks.dequeue: the task's status in the store and its entry in the queue, kept
consistent without transactions.

Enqueue writes the status first (compare-and-swap on the status it read, together with
``execution.queue`` and ``enqueue_status``), then pushes the entry. If the push fails, the status is
put back (forced, reason ``failed enqueueing``) and the error is reported. If the process dies between
the two writes, the task is ``queued`` with no entry; ``reconcile`` (run at start-up and by
``specgate repair-queues``) pushes the missing entry, so nothing acknowledged is lost.
"""

from __future__ import annotations

from typing import Any

from specgate._generated import errors as E
from specgate.adapters.ports import And, Eq, In
from specgate.core.clock import now_iso
from specgate.core.errors import ApiError

from .identity import Identity
from .queues import QUEUES, Queues
from .task_access import TASKS, change_status, load_writable
from .task_ops import release_queue_entry
from .task_states import QUEUED, STATUSES


async def _target(queues: Queues, caller: Identity, data: dict) -> dict:
    """The queue named by id, by name (created when missing, as ClearML does) or the default queue."""
    if data.get("queue") and data.get("queue_name"):
        raise ApiError(E.VALIDATION_ERROR, "Either queue id or queue name should be provided", field="queue")
    if data.get("queue"):
        return await queues.load(caller.company, data["queue"])
    if data.get("queue_name"):
        found = await queues.by_name(caller.company, data["queue_name"])
        if found is None:
            try:
                await queues.create(caller, {"name": data["queue_name"]})
            except ApiError as e:  # another call created it meanwhile
                if e.code is not E.EXPECTED_UNIQUE_DATA:
                    raise
            found = await queues.by_name(caller.company, data["queue_name"])
        return found
    return await queues.default(caller.company)


async def enqueue(store: Any, queues: Queues, caller: Identity, task_id: str, data: dict) -> dict:
    doc = await load_writable(store, caller.company, task_id)
    queue = await _target(queues, caller, data)
    previous = doc.get("status")
    old_queue = (doc.get("execution") or {}).get("queue")
    saved, result = await change_status(
        store, caller, doc, QUEUED,
        reason=data.get("status_reason", ""), message=data.get("status_message", ""),
        force=bool(data.get("force")),
        extra=lambda d, now: {"enqueue_status": previous, "execution.queue": queue["id"]},
    )
    try:
        pushed = await queues.backend.push(queue["id"], task_id, now_iso())
    except Exception:
        await _undo(store, caller, saved, previous, old_queue)
        raise
    if not pushed:
        await _undo(store, caller, saved, previous, old_queue)
        raise ApiError(E.TASK_ALREADY_QUEUED, task=task_id)
    if old_queue and old_queue != queue["id"]:
        await queues.backend.remove(old_queue, task_id)  # enqueueing into another queue moves the task
    await queues.touch(caller.company, queue["id"])
    out = {"queued": 1, **result}
    if data.get("verify_watched_queue"):
        out["queue_watched"] = False  # no worker registry answers for this queue yet
    return out


async def _undo(store: Any, caller: Identity, saved: dict, previous: str, old_queue: str | None) -> None:
    await change_status(
        store, caller, saved, previous, reason="failed enqueueing", force=True,
        extra=lambda d, now: {"enqueue_status": None, "execution.queue": old_queue},
    )


async def dequeue(store: Any, queues: Queues, caller: Identity, task_id: str, data: dict) -> dict:
    new_status = data.get("new_status")
    if new_status is not None and new_status not in STATUSES:
        raise ApiError(E.VALIDATION_ERROR, f"invalid status {new_status!r}", field="new_status")
    doc = await store.get(TASKS, task_id, companies=[caller.company])
    if doc is None:  # ClearML purges a missing task from the queues and reports it dequeued
        await queues.remove_everywhere(caller.company, task_id)
        return {"dequeued": 1, "updated": 0}
    doc = await load_writable(store, caller.company, task_id)
    released = await release_queue_entry(
        store, caller, doc, queues=queues,
        reason=data.get("status_reason", ""), message=data.get("status_message", ""),
        new_status=new_status, all_queues=bool(data.get("remove_from_all_queues")),
    )
    return {"dequeued": 1, **released.result}


async def redeliver_unstarted(store: Any, queues: Queues, company: str, popped_before: str) -> int:
    """Hand out again the entries popped before ``popped_before`` whose task is still ``queued`` in
    that queue: nobody started it, so the answer to that ``get_next_task`` most likely never arrived
    (the gateway died after the pop). Agents call ``tasks.started`` right after a pop; a task popped
    by a consumer that never starts it is handed out again after the same delay. The record of the
    other old pops (their tasks were started) is dropped, so it does not grow with uptime."""
    redelivered = 0
    for queue in await store.find(QUEUES, companies=[company], fields=["id"]):
        stale = {t: at for t, at in (await queues.backend.popped_at(queue["id"])).items() if at < popped_before}
        if not stale:
            continue
        waiting = await store.find(
            TASKS, companies=[company], where=And((In("id", tuple(stale)), Eq("status", QUEUED), Eq("execution.queue", queue["id"]))),
            fields=["id"],
        )  # fmt: skip
        for task in waiting:
            redelivered += int(await queues.backend.redeliver(queue["id"], task["id"], stale[task["id"]]))
        await queues.backend.forget_popped(queue["id"], sorted(set(stale) - {t["id"] for t in waiting}))
    return redelivered


async def reconcile(store: Any, queues: Queues, company: str) -> dict:
    """Make queue contents agree with task statuses after a crash.

    A ``queued`` task whose queue has no entry for it and never delivered one gets its entry back (at
    the tail): its enqueue died between the two writes. A task whose entry was popped stays out: a
    worker has it. Entries of tasks that no longer exist are dropped, and the record of deliveries is
    trimmed to the tasks still waiting to be started.
    """
    restored = dropped = 0
    queue_ids = {q["id"] for q in await store.find(QUEUES, companies=[company], fields=["id"])}
    waiting = await store.find(TASKS, companies=[company], where=Eq("status", QUEUED), fields=["id", "execution", "status_changed"])
    still_queued = {t["id"] for t in waiting}
    delivered: dict[str, set[str]] = {}
    for queue_id in queue_ids:
        delivered[queue_id] = await queues.backend.popped(queue_id)
        await queues.backend.forget_popped(queue_id, sorted(delivered[queue_id] - still_queued))
    for task in waiting:
        queue_id = (task.get("execution") or {}).get("queue")
        if queue_id not in queue_ids or task["id"] in delivered[queue_id]:
            continue
        if await queues.backend.position(queue_id, task["id"]) is None:
            restored += int(await queues.backend.push(queue_id, task["id"], task.get("status_changed") or now_iso()))
    for queue_id in queue_ids:
        entries = await queues.backend.entries(queue_id)
        present = {t["id"] for t in await store.find(
            TASKS, companies=[company], where=In("id", tuple(t for t, _ in entries)), fields=["id"]
        )} if entries else set()
        for task_id, _ in entries:
            if task_id not in present:
                dropped += int(await queues.backend.remove(queue_id, task_id))
    return {"restored": restored, "dropped": dropped}

