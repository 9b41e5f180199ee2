"""Task domain rules over a private in-memory SQLite store: compare-and-swap races, dequeue
bookkeeping, bookkeeping of status calls, batches and shapes that the HTTP tests cannot reach."""

from __future__ import annotations

from datetime import datetime, timedelta, timezone
from typing import Any, Awaitable, Callable

import pytest

from specgate.domain.queues import Queues

from specgate._generated import errors as E
from specgate.adapters.sqlite import SqliteStore
from specgate.core.clock import to_iso
from specgate.core.errors import ApiError
from specgate.core.versions import Version
from specgate.domain import task_ops as ops
from specgate.domain import task_params as params
from specgate.domain import tasks
from specgate.domain.identity import Identity
from specgate.domain.task_access import TASKS, change_status, load_writable

V = Version(2, 23)
ME = Identity("user-1", "company-1", user_name="Ann")
OTHER = Identity("user-2", "company-2")


@pytest.fixture
async def store():
    s = SqliteStore(":memory:")
    await s.open()
    yield s
    await s.close()


class Racing:
    """The real store, with one concurrent writer that runs just before the first task replace."""

    def __init__(self, store: SqliteStore, interfere: Callable[[SqliteStore], Awaitable[Any]]):
        self.store, self.interfere = store, interfere

    def __getattr__(self, name: str) -> Any:
        return getattr(self.store, name)

    async def replace(self, collection: str, doc: dict, *, expected_rev: int):
        if self.interfere is not None and collection == TASKS:
            interfere, self.interfere = self.interfere, None
            await interfere(self.store)
        return await self.store.replace(collection, doc, expected_rev=expected_rev)


async def new_task(store: Any, **fields: Any) -> str:
    return await tasks.create(store, ME, {"name": "task one", "type": "training", **fields}, V)


async def stored(store: Any, task_id: str) -> dict:
    return await store.get(TASKS, task_id, companies=[ME.company, ""])


async def force_status(store: Any, task_id: str, status: str, **extra: Any) -> None:
    doc = await stored(store, task_id)
    doc.update(status=status, **extra)
    assert await store.replace(TASKS, doc, expected_rev=doc["rev"]) is not None


# --- compare-and-swap ------------------------------------------------------------------------------


async def test_a_status_change_that_loses_to_another_status_change_fails_with_121(store) -> None:
    task_id = await new_task(store)
    racing = Racing(store, lambda s: force_status(s, task_id, "queued"))
    with pytest.raises(ApiError) as raised:
        await ops.started(racing, ME, {"task": task_id})
    assert raised.value.code is E.TASK_STATUS_CHANGED
    assert "current_status=created" in raised.value.message and "new_status=in_progress" in raised.value.message
    assert (await stored(store, task_id))["status"] == "queued"


async def test_a_status_change_that_loses_to_a_plain_write_is_applied_on_top_of_it(store) -> None:
    task_id = await new_task(store)

    async def note(s: SqliteStore) -> None:
        doc = await stored(s, task_id)
        doc["runtime"] = {"progress": "50"}
        await s.replace(TASKS, doc, expected_rev=doc["rev"])

    result = await ops.started(Racing(store, note), ME, {"task": task_id})
    assert result["updated"] == 1
    doc = await stored(store, task_id)
    assert doc["status"] == "in_progress" and doc["runtime"] == {"progress": "50"}


async def test_an_edit_rechecks_the_status_after_losing_a_race(store) -> None:
    task_id = await new_task(store)
    racing = Racing(store, lambda s: force_status(s, task_id, "in_progress"))
    with pytest.raises(ApiError) as raised:
        await tasks.edit(racing, ME, {"task": task_id, "comment": "late"}, V)
    assert raised.value.code is E.INVALID_TASK_STATUS
    assert "comment" not in await stored(store, task_id)


async def test_a_change_to_queued_drops_the_development_tag(store) -> None:
    task_id = await new_task(store, system_tags=["development", "keep"])
    doc = await load_writable(store, ME.company, task_id)
    saved, result = await change_status(store, ME, doc, "queued")
    assert saved["system_tags"] == ["keep"] and result["fields"]["status"] == "queued"


# --- dequeue bookkeeping ---------------------------------------------------------------------------


async def test_release_reverts_a_queued_task_to_its_enqueue_status(store, queue_backend) -> None:
    task_id = await new_task(store)
    await force_status(store, task_id, "queued", enqueue_status="stopped", execution={"queue": "q1", "test_split": 3})
    doc = await stored(store, task_id)
    await queue_backend.push("q1", task_id, "2026-01-01T00:00:00.000000+00:00")
    released = await ops.release_queue_entry(store, ME, doc, queues=Queues(store, queue_backend), reason="r", message="m")
    assert released.dequeued == {"removed": 1} and await queue_backend.length("q1") == 0
    assert released.result["fields"]["status"] == "stopped"
    assert released.result["fields"]["enqueue_status"] is None
    after = await stored(store, task_id)
    assert after["status"] == "stopped" and after["status_reason"] == "r"
    assert "enqueue_status" not in after and after["execution"] == {"test_split": 3}


async def test_release_stops_an_aborted_running_task_and_leaves_others_alone(store, queue_backend) -> None:
    running = await new_task(store)
    await force_status(store, running, "in_progress")
    queues = Queues(store, queue_backend)
    released = await ops.release_queue_entry(store, ME, await stored(store, running), queues=queues, aborted_status="stopped")
    assert released.dequeued == {} and (await stored(store, running))["status"] == "stopped"
    done = await new_task(store)
    await force_status(store, done, "completed")
    released = await ops.release_queue_entry(store, ME, await stored(store, done), queues=queues)
    assert released.result == {"updated": 0} and (await stored(store, done))["status"] == "completed"


async def test_archive_dequeues_then_tags(store, queue_backend) -> None:
    task_id = await new_task(store)
    await force_status(store, task_id, "queued", execution={"queue": "q1"})
    assert await ops.archive(store, ME, await stored(store, task_id), {"status_message": "bye"}, queues=Queues(store, queue_backend)) == 1
    doc = await stored(store, task_id)
    assert doc["status"] == "created" and "archived" in doc["system_tags"]
    assert doc["status_message"] == "bye" and "queue" not in doc["execution"]


# --- status calls ----------------------------------------------------------------------------------


async def test_started_keeps_an_earlier_start_and_restarts_clear_completion(store) -> None:
    task_id = await new_task(store)
    first = await ops.started(store, ME, {"task": task_id})
    again = await ops.started(store, ME, {"task": task_id})
    assert "started" in first["fields"] and "started" not in again["fields"]
    assert (await stored(store, task_id))["started"] == first["fields"]["started"]
    await ops.completed(store, ME, {"task": task_id}, with_publish_flag=False)
    restarted = await ops.started(store, ME, {"task": task_id})
    doc = await stored(store, task_id)
    assert doc["started"] == restarted["fields"]["started"] and "completed" not in doc


async def test_ping_refreshes_last_update_and_active_duration(store) -> None:
    task_id = await new_task(store)
    an_hour_ago = to_iso(datetime.now(timezone.utc) - timedelta(hours=1))
    await force_status(store, task_id, "in_progress", started=an_hour_ago, last_update=an_hour_ago)
    await ops.ping(store, ME, task_id)
    doc = await stored(store, task_id)
    assert 3590 <= doc["active_duration"] <= 3700
    assert doc["last_update"] > an_hour_ago
    await ops.ping(store, ME, "no-such-task")  # ignored, as ClearML does


async def test_stop_of_a_task_with_a_live_worker_only_asks_it_to_stop(store, queue_backend) -> None:
    task_id = await new_task(store)
    await force_status(store, task_id, "in_progress", last_worker="host:1")
    result = await ops.stop(store, ME, task_id, {}, queues=Queues(store, queue_backend))
    assert result["fields"]["status"] == "in_progress" and result["fields"]["status_message"] == "stopping"
    await force_status(store, task_id, "in_progress", system_tags=["development"])
    result = await ops.stop(store, ME, task_id, {}, queues=Queues(store, queue_backend))
    assert result["fields"]["status"] == "stopped" and result["fields"]["status_message"] == "Stopped by Ann"


# --- shapes and batches ----------------------------------------------------------------------------


async def test_configuration_names_are_listed_per_task_skipping_empty_values(store) -> None:
    task_id = await new_task(store, configuration={
        "b.x$": {"name": "b.x$", "value": "1"}, "a": {"name": "a", "value": "2"}, "empty": {"name": "empty", "value": ""},
    })
    bare = await new_task(store)
    found = await params.get_configuration_names(store, ME.company, [task_id, bare, "missing"], skip_empty=True)
    assert found == [{"task": task_id, "names": ["a", "b.x$"]}]
    everything = await params.get_configuration_names(store, ME.company, [task_id], skip_empty=False)
    assert everything == [{"task": task_id, "names": ["a", "b.x$", "empty"]}]


async def test_update_batch_counts_every_updated_task(store) -> None:
    one, two = await new_task(store), await new_task(store)
    items = [{"task": one, "comment": "c1"}, {"task": two, "name": "renamed"}, {"task": one, "status": "failed"}]
    assert await tasks.update_batch(store, ME, items[:2]) == 2
    assert (await stored(store, two))["name"] == "renamed"
    assert await tasks.update_batch(store, ME, items[2:]) == 0  # status is not user-settable
    with pytest.raises(ApiError) as raised:
        await tasks.update_batch(store, ME, [])
    assert raised.value.code is E.BATCH_CONTAINS_NO_ITEMS


async def test_public_tasks_are_readable_by_all_and_writable_by_none(store) -> None:
    task_id = await new_task(store)
    assert await tasks.make_public(store, ME, [task_id], True) == 1
    assert (await tasks.get_by_id(store, OTHER.company, task_id, V))["company"] == ""
    with pytest.raises(ApiError) as raised:
        await ops.started(store, OTHER, {"task": task_id})
    assert raised.value.code is E.MODIFICATION_NOT_ALLOWED
    with pytest.raises(ApiError) as raised:
        await tasks.make_public(store, OTHER, [task_id], False)
    assert raised.value.code is E.INVALID_TASK_ID
    assert await tasks.make_public(store, ME, [task_id], False) == 1
    doc = await stored(store, task_id)
    assert doc["company"] == ME.company and "company_origin" not in doc


@pytest.mark.parametrize("status,force,allowed", [
    ("created", False, True), ("queued", False, False), ("in_progress", False, False),
    ("queued", True, True), ("in_progress", True, True), ("stopped", True, False), ("completed", True, False),
])
def test_parameter_edits_follow_the_updatable_statuses(status: str, force: bool, allowed: bool) -> None:
    from specgate.domain.task_access import check_updatable

    if allowed:
        check_updatable({"status": status}, force)
    else:
        with pytest.raises(ApiError) as raised:
            check_updatable({"status": status}, force)
        assert raised.value.message == f"Invalid task status: expected=created, status={status}"
    check_updatable({"status": status}, force, allow_all=True)
