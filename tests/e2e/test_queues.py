"""Queues over real HTTP with the embedded Valkey: contents, the task lifecycle around them, the
exactly-once pop under concurrency, and recovery from a crash between the store write and the push."""

from __future__ import annotations

import asyncio
import os
import subprocess
import sys
import uuid

import httpx
import pytest

from specgate.domain.identity import Identity
from specgate.domain.queues import Queues
from specgate.domain.task_queueing import enqueue

from .conftest import Api


def unique(prefix: str) -> str:
    return f"{prefix}-{uuid.uuid4().hex[:8]}"


def new_task(api: Api, **extra) -> str:
    return api.ok("tasks.create", name=unique("task"), type="training", **extra)["id"]


def new_queue(api: Api) -> str:
    return api.ok("queues.create", name=unique("queue"))["id"]


def entries(api: Api, queue: str) -> list[str]:
    return [e["task"] for e in api.ok("queues.get_by_id", queue=queue)["queue"]["entries"]]


def test_the_default_queue_exists_from_the_first_start(api: Api):
    found = api.ok("queues.get_default")
    assert found["name"] == "default"
    assert "default" in api.ok("queues.get_by_id", queue=found["id"])["queue"]["system_tags"]


def test_sdk_apiclient_flow_enqueue_then_pop(server, monkeypatch, tmp_path, sdk_sockets_absorbed):
    """Contract §10.1: projects.create → tasks.create → tasks.enqueue → queues.get_next_task."""
    for name, value in {
        "CLEARML_API_HOST": server.url, "CLEARML_WEB_HOST": server.url, "CLEARML_FILES_HOST": server.url,
        "CLEARML_API_ACCESS_KEY": server.access_key, "CLEARML_API_SECRET_KEY": server.secret_key,
        "HOME": str(tmp_path), "CLEARML_CONFIG_FILE": str(tmp_path / "clearml.conf"),
    }.items():
        monkeypatch.setenv(name, value)
    import warnings

    with warnings.catch_warnings():
        warnings.simplefilter("ignore", DeprecationWarning)
        from clearml.backend_api.session.client import APIClient

        client = APIClient()
        project = client.projects.create(name=unique("sdk-project"))
        task = client.tasks.create(name="sdk task", type="training", project=project.id)
        queue = client.queues.create(name=unique("sdk-queue"))
        queued = client.tasks.enqueue(task=task.id, queue=queue.id)
        assert queued.queued == 1
        assert str(client.tasks.get_by_id(task=task.id).status.value) == "queued"
        popped = client.queues.get_next_task(queue=queue.id)
        assert popped.entry.task == task.id
        assert client.queues.get_next_task(queue=queue.id).entry is None
        client.session._Session__http_session.close()  # the SDK never closes its requests session


def test_queue_names_are_checked_and_unique(api: Api):
    name = unique("queue")
    api.ok("queues.create", name=name)
    status, body = api.call("queues.create", name=name)
    assert (status, body["meta"]["result_subcode"]) == (400, 801) and name in body["meta"]["result_msg"]
    status, body = api.call("queues.create", name="  q ")
    assert (status, body["meta"]["result_subcode"]) == (400, 800)


def test_unknown_queue_is_701_with_an_object_data(api: Api):
    status, body = api.call("queues.get_by_id", queue="no-such-queue")
    assert (status, body["meta"]["result_subcode"], body["data"]) == (400, 701, {})


def test_get_all_finds_a_queue_by_exact_escaped_name(api: Api):
    name = unique("my queue")
    queue = api.ok("queues.create", name=name)["id"]
    import re

    found = api.ok("queues.get_all", name=f"^{re.escape(name)}$", only_fields=["id"])["queues"]
    assert found == [{"id": queue}]


def test_contents_add_move_peek_count_remove(api: Api):
    queue = new_queue(api)
    a, b, c = (new_task(api) for _ in range(3))
    for t in (a, b, c):
        assert api.ok("queues.add_task", queue=queue, task=t) == {"added": 1}
    status, body = api.call("queues.add_task", queue=queue, task=a)
    assert (status, body["meta"]["result_subcode"]) == (400, 706)
    assert api.ok("queues.get_num_entries", queue=queue) == {"num": 3}
    assert api.ok("queues.peek_task", queue=queue) == {"task": a}
    assert api.ok("queues.move_task_to_back", queue=queue, task=a) == {"position": 2}
    assert entries(api, queue) == [b, c, a]
    assert api.ok("queues.move_task_forward", queue=queue, task=a, count=5) == {"position": 0}
    assert api.ok("queues.move_task_backward", queue=queue, task=a) == {"position": 1}
    assert api.ok("queues.move_task_to_front", queue=queue, task=c) == {"position": 0}
    assert entries(api, queue) == [c, b, a]
    assert api.ok("queues.remove_task", queue=queue, task=a) == {"removed": 1}
    status, body = api.call("queues.remove_task", queue=queue, task=a)
    assert (status, body["meta"]["result_subcode"]) == (400, 703)
    assert api.ok("queues.get_by_id", queue=queue, max_task_entries=1)["queue"]["entries"][0]["task"] == c


def test_enqueue_sets_status_and_entry_and_dequeue_undoes_both(api: Api):
    queue, task = new_queue(api), new_task(api, system_tags=["development"])
    result = api.ok("tasks.enqueue", task=task, queue=queue)
    assert result["queued"] == 1 and result["fields"]["execution.queue"] == queue
    doc = api.ok("tasks.get_by_id", task=task)["task"]
    assert doc["status"] == "queued" and doc["execution"]["queue"] == queue and "development" not in doc["system_tags"]
    assert entries(api, queue) == [task]
    assert api.ok("tasks.dequeue", task=task)["dequeued"] == 1
    assert api.ok("tasks.get_by_id", task=task)["task"]["status"] == "created"
    assert entries(api, queue) == []


def test_dequeue_to_a_chosen_status_at_2_26(api: Api):
    queue, task = new_queue(api), new_task(api)
    api.ok("tasks.enqueue", task=task, queue=queue)
    api.ok("tasks.dequeue", version="2.26", task=task, new_status="stopped")
    assert api.ok("tasks.get_by_id", task=task)["task"]["status"] == "stopped"


def test_enqueue_into_another_queue_moves_the_task(api: Api):
    first, second, task = new_queue(api), new_queue(api), new_task(api)
    api.ok("tasks.enqueue", task=task, queue=first)
    api.ok("tasks.enqueue", task=task, queue=second)
    assert entries(api, first) == [] and entries(api, second) == [task]


def test_enqueue_twice_into_the_same_queue_is_706_and_changes_nothing(api: Api):
    queue, task = new_queue(api), new_task(api)
    api.ok("tasks.enqueue", task=task, queue=queue)
    status, body = api.call("tasks.enqueue", task=task, queue=queue)
    assert (status, body["meta"]["result_subcode"]) == (400, 706)
    doc = api.ok("tasks.get_by_id", task=task)["task"]
    assert doc["status"] == "queued" and doc["execution"]["queue"] == queue and entries(api, queue) == [task]


def test_enqueue_by_name_creates_the_queue(api: Api):
    name, task = unique("by-name"), new_task(api)
    api.ok("tasks.enqueue", version="2.19", task=task, queue_name=name)
    queue = api.ok("queues.get_all", name=f"^{name}$")["queues"][0]
    assert [e["task"] for e in queue["entries"]] == [task]


def test_enqueue_refuses_a_running_task_and_leaves_no_entry(api: Api):
    queue, task = new_queue(api), new_task(api)
    api.ok("tasks.started", task=task)
    status, body = api.call("tasks.enqueue", task=task, queue=queue)
    assert (status, body["meta"]["result_subcode"]) == (400, 110)
    assert entries(api, queue) == []


def test_stop_of_a_queued_task_takes_it_out_of_the_queue(api: Api):
    queue, task = new_queue(api), new_task(api)
    api.ok("tasks.enqueue", task=task, queue=queue)
    api.ok("tasks.stop", task=task)
    assert api.ok("tasks.get_by_id", task=task)["task"]["status"] == "stopped" and entries(api, queue) == []


def test_reset_and_delete_take_the_task_out_of_every_queue(api: Api):
    first, second = new_queue(api), new_queue(api)
    task = new_task(api)
    api.ok("tasks.enqueue", task=task, queue=first)
    api.ok("queues.add_task", queue=second, task=task, update_execution_queue=False)
    assert api.ok("tasks.reset", task=task)["dequeued"] == {"removed": 2}
    assert entries(api, first) == entries(api, second) == []
    other = new_task(api)
    api.ok("tasks.enqueue", task=other, queue=first)
    api.ok("tasks.delete", task=other, force=True)
    assert entries(api, first) == []


def test_deleting_a_non_empty_queue_needs_force_and_reverts_its_tasks(api: Api):
    queue, task = new_queue(api), new_task(api)
    api.ok("tasks.enqueue", task=task, queue=queue)
    status, body = api.call("queues.delete", queue=queue)
    assert (status, body["meta"]["result_subcode"]) == (400, 702)
    assert api.ok("queues.delete", queue=queue, force=True) == {"deleted": 1}
    doc = api.ok("tasks.get_by_id", task=task)["task"]
    assert doc["status"] == "created" and "queue" not in doc.get("execution", {})


def test_get_next_task_with_head_check_and_task_info(api: Api):
    queue, a, b = new_queue(api), new_task(api), new_task(api)
    for t in (a, b):
        api.ok("tasks.enqueue", task=t, queue=queue)
    assert api.ok("queues.get_next_task", version="2.21", queue=queue, task=b) == {}
    popped = api.ok("queues.get_next_task", version="2.21", queue=queue, task=a, get_task_info=True)
    assert popped["entry"]["task"] == a and popped["task_info"]["company"]
    assert api.ok("tasks.get_by_id", task=a)["task"]["status"] == "queued"  # the pop leaves the status alone


def test_an_entry_of_a_deleted_task_is_skipped(server, api: Api):
    queue, gone, kept = new_queue(api), new_task(api), new_task(api)
    for t in (gone, kept):
        api.ok("queues.add_task", queue=queue, task=t)
    api.ok("tasks.delete", task=gone, force=True)  # not queued by status, so its entry stays behind
    assert api.ok("queues.get_next_task", queue=queue)["entry"]["task"] == kept


def test_sixteen_consumers_get_every_one_of_2000_tasks_exactly_once(server, api: Api):
    queue = new_queue(api)
    headers = {"Authorization": f"Bearer {api.token}"}

    async def run() -> list[str]:
        async with httpx.AsyncClient(base_url=server.url, headers=headers, timeout=60) as http:
            async def call(endpoint: str, **data) -> dict:
                response = await http.post(f"/v2.23/{endpoint}", json=data)
                assert response.status_code == 200, response.text
                return response.json()["data"]

            created: list[str] = []

            async def producer(n: int) -> None:
                for _ in range(n):
                    task = (await call("tasks.create", name=unique("load"), type="training"))["id"]
                    await call("tasks.enqueue", task=task, queue=queue)
                    created.append(task)

            await asyncio.gather(*(producer(125) for _ in range(16)))
            received: list[str] = []

            async def consumer() -> None:
                while True:
                    popped = await call("queues.get_next_task", queue=queue)
                    if not popped:
                        return
                    received.append(popped["entry"]["task"])

            await asyncio.gather(*(consumer() for _ in range(16)))
            assert len(created) == 2000
            return sorted(created), sorted(received)

    created, received = asyncio.run(run())
    assert received == created  # every task delivered, none twice


def test_a_crash_between_status_write_and_push_is_repaired(server, api: Api):
    """The enqueue runs in a second process's adapters (same SQLite file, same Valkey) and dies after
    its status write; `specgate repair-queues` (what start-up runs too) puts the entry back, and only
    that one: the thousands of delivered-but-not-started tasks of other tests stay delivered."""
    from specgate.adapters.redis_queue import RedisQueues
    from specgate.adapters.sqlite import SqliteStore

    queue, task = new_queue(api), new_task(api)
    company = api.ok("tasks.get_by_id", task=task)["task"]["company"]
    caller = Identity(user="tester", company=company)

    class Crash(BaseException):
        """The process dying: nothing after it runs, not even error handling."""

    class DiesOnPush(RedisQueues):
        async def push(self, *args):
            raise Crash()

    async def crash() -> int:
        store = SqliteStore(str(server.data_dir / "specgate.db"))
        dying = DiesOnPush(server.app.services.redis_url)
        await store.open()
        await dying.open()
        try:
            with pytest.raises(Crash):
                await enqueue(store, Queues(store, dying), caller, task, {"queue": queue})
            return await dying.length(queue)
        finally:
            await dying.close()
            await store.close()

    assert asyncio.run(crash()) == 0
    assert api.ok("tasks.get_by_id", task=task)["task"]["status"] == "queued"  # queued, but no entry
    env = {**os.environ, "SPECGATE_DATA_DIR": str(server.data_dir), "SPECGATE_REDIS_URL": server.app.services.redis_url}
    done = subprocess.run([sys.executable, "-m", "specgate.cli", "repair-queues"], env=env, capture_output=True, text=True, timeout=60)
    assert done.returncode == 0, done.stderr
    assert "1 lost entry restored, 0 stale entries dropped" in done.stdout
    assert api.ok("queues.get_next_task", queue=queue)["entry"]["task"] == task


def test_another_company_cannot_touch_this_companys_queues(server, api: Api):
    from .test_tasks_support import second_company

    queue, task = new_queue(api), new_task(api)
    api.ok("tasks.enqueue", task=task, queue=queue)
    other = second_company(server)
    try:
        for endpoint, data in [
            ("queues.get_by_id", {"queue": queue}),
            ("queues.get_next_task", {"queue": queue}),
            ("queues.add_task", {"queue": queue, "task": task}),
            ("queues.delete", {"queue": queue, "force": True}),
        ]:
            status, body = other.call(endpoint, **data)
            assert (status, body["meta"]["result_subcode"]) == (400, 701), endpoint
        own = other.ok("queues.create", name=unique("theirs"))["id"]
        status, body = other.call("tasks.enqueue", task=task, queue=own)
        assert (status, body["meta"]["result_subcode"]) == (400, 101)
        assert queue not in [q["id"] for q in other.ok("queues.get_all")["queues"]]
    finally:
        other.close()
    assert entries(api, queue) == [task]  # nothing was taken
