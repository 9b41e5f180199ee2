"""Calls that change a task's status (contract §5.3), their ``*_many`` batch form (§9) and ping.

Every function takes the store, the caller and the request values, and returns the response ``data``
(or the per-task part of a batch item). The one place that touches queue contents is
``release_queue_entry``; enqueueing lives in ``task_queueing``.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime
from typing import TYPE_CHECKING, Any, Awaitable, Callable, Sequence

from specgate._generated import errors as E
from specgate.adapters.ports import Eq
from specgate.core.clock import now_iso
from specgate.core.errors import ApiError

from .events import Events
from .identity import Identity
from .task_access import TASKS, change_status, load_writable, modify, stamp, touch_project
from .task_states import (
    ARCHIVED, COMPLETED, CONTROLLER, CREATED, DELETED_PREFIX, DEVELOPMENT, FAILED, IN_PROGRESS, PUBLISHED,
    QUEUED, STOPPED, STOPPING, CLOSED, add_tag, check_transition, drop_tag, set_path,
)

TASK_UPDATE_TIMEOUT = 600  # seconds: a task whose worker reported within this is stopped by its worker
# ids one ``*_many`` call takes: each is loaded and written on its own, so 30,000 of them kept the
# call busy for minutes. ClearML's web UI acts on a page of selected tasks at a time.
MAX_BATCH_IDS = 1000

if TYPE_CHECKING:
    from .queues import Queues


@dataclass
class Released:
    doc: dict
    dequeued: dict = field(default_factory=dict)  # {} when the task was not queued, else {"removed": n}
    result: dict = field(default_factory=lambda: {"updated": 0})


async def release_queue_entry(
    store: Any,
    caller: Identity,
    doc: dict,
    *,
    queues: "Queues",
    reason: str = "",
    message: str = "",
    revert_status: bool = True,
    new_status: str | None = None,
    aborted_status: str | None = None,
    all_queues: bool = False,
) -> Released:
    """Take a task out of the queue it waits in and, with ``revert_status``, put its status back.

    The entry is removed from the queue in ``execution.queue`` (and from every queue of the company
    with ``all_queues``); ``dequeued`` reports how many went for a task that was queued, and is ``{}``
    otherwise, as ClearML answers.

    The status part (ClearML's ``dequeue_and_change_status``) is complete: a queued task loses its
    ``execution.queue``; with ``revert_status`` a ``queued`` or ``in_progress`` task is moved (forced)
    to ``new_status``, else ``aborted_status`` for an in-progress one, else the status it had before it
    was enqueued (``enqueue_status``), else ``created``; ``enqueue_status`` is cleared (reported as null).
    Tasks in any other status keep it (``updated: 0``).
    """
    was_queued = doc.get("status") == QUEUED
    dequeued: dict = {}
    queue_id = (doc.get("execution") or {}).get("queue")
    removed = int(bool(queue_id) and await queues.backend.remove(queue_id, doc["id"]))
    if all_queues:
        removed += await queues.remove_everywhere(doc["company"], doc["id"], keep=queue_id)
    if removed and queue_id:
        await queues.touch(doc["company"], queue_id)
    if was_queued and queue_id:
        dequeued = {"removed": removed}

    def clear_queue(d: dict) -> None:
        if was_queued:
            set_path(d, "execution.queue", None)

    status = doc.get("status")
    if revert_status and status in (QUEUED, IN_PROGRESS):
        target = new_status or (aborted_status if status == IN_PROGRESS and aborted_status else None)
        target = target or doc.get("enqueue_status") or CREATED
        saved, result = await change_status(
            store, caller, doc, target, reason=reason, message=message, force=True,
            extra=lambda d, now: {"enqueue_status": None}, quiet=clear_queue,
        )
        return Released(saved, dequeued, result)
    if was_queued and "queue" in (doc.get("execution") or {}):
        doc = await modify(store, doc, clear_queue)
    return Released(doc, dequeued)


# --- plain status reports --------------------------------------------------------------------------


async def set_status(
    store: Any, caller: Identity, task_id: str, new_status: str, data: dict,
    extra: Callable[[dict, str], dict] | None = None,
) -> dict:
    doc = await load_writable(store, caller.company, task_id)
    _, result = await change_status(
        store, caller, doc, new_status,
        reason=data.get("status_reason", ""), message=data.get("status_message", ""),
        force=bool(data.get("force")), extra=extra,
    )
    return result


def _started(doc: dict, now: str) -> dict:
    if doc.get("status") == IN_PROGRESS and doc.get("started"):
        return {}  # already running: keep the earlier start
    doc.pop("completed", None)
    doc.pop("active_duration", None)
    return {"started": now}


def _ended(doc: dict, now: str) -> dict:
    return {"completed": now}


async def started(store: Any, caller: Identity, data: dict) -> dict:
    result = await set_status(store, caller, data["task"], IN_PROGRESS, data, _started)
    return {**result, "started": result["updated"]}


async def stopped(store: Any, caller: Identity, data: dict) -> dict:
    return await set_status(store, caller, data["task"], STOPPED, data, _ended)


async def failed(store: Any, caller: Identity, data: dict) -> dict:
    return await set_status(store, caller, data["task"], FAILED, data, _ended)


async def close(store: Any, caller: Identity, data: dict) -> dict:
    return await set_status(store, caller, data["task"], CLOSED, data)


async def completed(store: Any, caller: Identity, data: dict, with_publish_flag: bool) -> dict:
    result = await set_status(store, caller, data["task"], COMPLETED, data, _ended)
    if not with_publish_flag:
        return result
    result["published"] = 0
    if result["updated"] and data.get("publish"):
        published = await publish(store, caller, data["task"], data)
        result["published"] = published["updated"]
        result["fields"]["status"] = published["fields"]["status"]
    return result


async def publish(store: Any, caller: Identity, task_id: str, data: dict) -> dict:
    """→ ``published`` with ``published``=now. Publishing the task's output model belongs to the models
    service; without one there is no model to publish, so the intermediate ``publishing`` state is not
    written (no step runs between it and ``published``)."""
    doc = await load_writable(store, caller.company, task_id)
    force = bool(data.get("force"))
    if not force:
        check_transition(doc.get("status", CREATED), PUBLISHED, False)
    _, result = await change_status(
        store, caller, doc, PUBLISHED,
        reason=data.get("status_reason", ""), message=data.get("status_message", ""), force=force,
        extra=lambda d, now: {"published": now, "output": d.get("output") or {}},
    )
    return result


# --- stop, reset, archive, delete ------------------------------------------------------------------


def _run_by_worker(doc: dict) -> bool:
    last_update = doc.get("last_update")
    if not doc.get("last_worker") or not last_update:
        return False
    age = datetime.fromisoformat(now_iso()) - datetime.fromisoformat(last_update)
    return age.total_seconds() < TASK_UPDATE_TIMEOUT


async def _pipeline_steps(store: Any, caller: Identity, doc: dict, data: dict) -> list[dict]:
    if not data.get("include_pipeline_steps") or doc.get("type") != CONTROLLER:
        return []
    return await store.find(TASKS, companies=[caller.company], where=Eq("parent", doc["id"]))


async def stop(store: Any, caller: Identity, task_id: str, data: dict, *, queues: "Queues") -> dict:
    doc = await load_writable(store, caller.company, task_id)
    for step in await _pipeline_steps(store, caller, doc, data):
        await _stop_one(store, caller, step, data, force=True, queues=queues)
    return await _stop_one(store, caller, doc, data, force=bool(data.get("force")), queues=queues)


async def _stop_one(store: Any, caller: Identity, doc: dict, data: dict, force: bool, *, queues: "Queues") -> dict:
    queued = doc.get("status") == QUEUED
    if queued or DEVELOPMENT in (doc.get("system_tags") or ()) or not _run_by_worker(doc):
        if queued:
            doc = (await release_queue_entry(store, caller, doc, queues=queues, revert_status=False)).doc
        new_status, message = STOPPED, f"Stopped by {caller.user_name or caller.user}"
    else:
        new_status, message = doc.get("status", CREATED), STOPPING  # the worker sees it and stops the task
    _, result = await change_status(
        store, caller, doc, new_status, reason=data.get("status_reason", ""), message=message, force=force
    )
    return result


def _file_urls(doc: dict, data: dict) -> dict:
    if not data.get("return_file_urls"):
        return {}
    artifacts = (doc.get("execution") or {}).get("artifacts") or []
    urls = sorted({a["uri"] for a in artifacts if a.get("mode", "output") == "output" and a.get("uri")})
    return {"urls": {"model_urls": [], "event_urls": [], "artifact_urls": urls}}


def _reset_fields(clear_all: bool) -> Callable[[dict], None]:
    def quiet(doc: dict) -> None:
        doc.update(last_iteration=0, last_metrics={}, unique_metrics=[], metric_stats={}, runtime={})
        set_path(doc, "models.output", [])
        for path in ("output.result", "output.error"):
            set_path(doc, path, None)
        for key in ("last_worker", "last_worker_report", "started", "completed", "published",
                    "active_duration", "enqueue_status"):
            doc.pop(key, None)
        if clear_all:
            doc["execution"] = {}
            doc.pop("script", None)
        elif isinstance(doc.get("execution"), dict):
            doc["execution"].pop("queue", None)
            if "artifacts" in doc["execution"]:
                doc["execution"]["artifacts"] = [
                    a for a in doc["execution"]["artifacts"] if a.get("mode", "output") == "input"
                ]

    return quiet


async def reset(store: Any, caller: Identity, task_id: str, data: dict, *, queues: "Queues") -> dict:
    """Back to ``created`` with reason and message ``reset``, run results cleared (events and output
    models belong to other services: ``deleted_models`` is 0)."""
    doc = await load_writable(store, caller.company, task_id)
    force = bool(data.get("force"))
    if not force and doc.get("status") == PUBLISHED:
        raise ApiError(E.INVALID_TASK_STATUS, task_id=task_id, status=PUBLISHED)
    released = await release_queue_entry(store, caller, doc, queues=queues, revert_status=False, all_queues=True)
    urls = _file_urls(released.doc, data)
    _, result = await change_status(
        store, caller, released.doc, CREATED, reason="reset", message="reset", force=force,
        quiet=_reset_fields(bool(data.get("clear_all"))),
    )
    await Events(store).delete_for_tasks(caller.company, [task_id])
    return {**result, "dequeued": released.dequeued, "deleted_models": 0, **urls}


async def archive(store: Any, caller: Identity, doc: dict, data: dict, *, queues: "Queues") -> int:
    for step in await _pipeline_steps(store, caller, doc, data):
        await _archive_one(store, caller, step, data, queues=queues)
    return await _archive_one(store, caller, doc, data, queues=queues)


async def _archive_one(store: Any, caller: Identity, doc: dict, data: dict, *, queues: "Queues") -> int:
    reason, message = data.get("status_reason", ""), data.get("status_message", "")
    released = await release_queue_entry(
        store, caller, doc, queues=queues, reason=reason, message=message, aborted_status=STOPPED, all_queues=True
    )

    def mark(d: dict) -> None:
        d.update(status_reason=reason, status_message=message)
        add_tag(d, "system_tags", ARCHIVED)
        stamp(d, caller.user, now_iso(), last_update=False)

    await modify(store, released.doc, mark)
    return 1


async def unarchive(store: Any, caller: Identity, task_id: str, data: dict) -> int:
    doc = await load_writable(store, caller.company, task_id)
    reason, message = data.get("status_reason", ""), data.get("status_message", "")

    def unmark(d: dict) -> None:
        d.update(status_reason=reason, status_message=message)
        drop_tag(d, "system_tags", ARCHIVED)
        stamp(d, caller.user, now_iso(), last_update=False)

    for step in await _pipeline_steps(store, caller, doc, data):
        await modify(store, step, unmark)
    await modify(store, doc, unmark)
    return 1


async def delete(store: Any, caller: Identity, task_id: str, data: dict, *, queues: "Queues") -> dict:
    doc = await load_writable(store, caller.company, task_id)
    force = bool(data.get("force"))
    if doc.get("status") != CREATED and ARCHIVED not in (doc.get("system_tags") or ()) and not force:
        raise ApiError(
            E.TASK_CANNOT_BE_DELETED, "due to status, use force=True",
            task=task_id, expected=CREATED, current=doc.get("status"),
        )
    for step in await _pipeline_steps(store, caller, doc, data):
        await _delete_one(store, caller, step, data, force=True, queues=queues)
    return await _delete_one(store, caller, doc, data, force=force, queues=queues)


async def _delete_one(store: Any, caller: Identity, doc: dict, data: dict, force: bool, *, queues: "Queues") -> dict:
    company = caller.company
    children = await store.find(TASKS, companies=[company], where=Eq("parent", doc["id"]))
    if not force:
        published = [c for c in children if c.get("status") == PUBLISHED]
        if published:
            raise ApiError(
                E.TASK_CANNOT_BE_DELETED, "has children, use force=True", task=doc["id"], children=len(published)
            )
    released = await release_queue_entry(
        store, caller, doc, queues=queues, reason=data.get("status_reason", ""),
        message=data.get("status_message", ""), all_queues=True,
    )
    urls = _file_urls(released.doc, data)
    now = now_iso()

    def orphan(child: dict) -> None:
        child["parent"] = f"{DELETED_PREFIX}{doc['id']}"
        stamp(child, caller.user, now, last_update=False)

    updated_children = 0
    for child in children:
        await modify(store, child, orphan)
        updated_children += 1
    await store.delete(TASKS, doc["id"], companies=[company])
    await Events(store).delete_for_tasks(company, [doc["id"]])
    await touch_project(store, company, doc.get("project"), now)
    return {"deleted": True, "updated_children": updated_children, "updated_models": 0, "deleted_models": 0, **urls}


# --- ping and batches ------------------------------------------------------------------------------


async def ping(store: Any, caller: Identity, task_id: str) -> None:
    """Refresh ``last_update`` (and ``active_duration`` while running); unknown ids are ignored."""
    doc = await store.get(TASKS, task_id, companies=[caller.company])
    if doc is None:
        return

    def refresh(d: dict) -> None:
        now = now_iso()
        if d.get("status") == IN_PROGRESS and d.get("started"):
            elapsed = datetime.fromisoformat(now) - datetime.fromisoformat(d["started"])
            d["active_duration"] = int(elapsed.total_seconds())
        stamp(d, caller.user, now)

    await modify(store, doc, refresh)


def _plain(value: Any) -> Any:
    if isinstance(value, (list, tuple, set)):
        return [_plain(v) for v in value]
    if isinstance(value, dict):
        return {str(k): _plain(v) for k, v in value.items()}
    return value if value is None or isinstance(value, (str, int, float, bool)) else str(value)


async def run_batch(ids: Sequence[str], operation: Callable[[str], Awaitable[dict]]) -> dict:
    """Each id on its own, in order: a domain error is recorded in ``failed`` and processing goes on."""
    if len(ids) > MAX_BATCH_IDS:
        raise ApiError(E.VALIDATION_ERROR, f"at most {MAX_BATCH_IDS} ids in one call, not {len(ids)}", field="ids")
    succeeded, failures = [], []
    for task_id in ids:
        try:
            result = await operation(task_id)
        except ApiError as error:
            failures.append({
                "id": task_id,
                "error": {
                    "codes": [error.code.status, error.code.subcode],
                    "msg": error.message,
                    "data": _plain(error.data),
                },
            })
        else:
            succeeded.append({"id": task_id, **result})
    return {"succeeded": succeeded, "failed": failures}

