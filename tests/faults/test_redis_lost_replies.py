"""Redis outside the gateway (``SPECGATE_REDIS_URL``, as in production), reached through a proxy that
can fail in two ways.

A reply lost after the command ran (the server died or the connection broke between the two) must
not leave a change behind a 503. Without settling, a lost push reply left the task queued in Redis
while its enqueue was reported failed and undone in the store (the SDK's retry then got 706 "already
queued"), and a lost pop reply lost the entry altogether (nobody received it). A lost reply to a
background-job claim left the job leased to nobody: an X-Api-Async call stayed pending for the whole
lease (30 s).

Redis unreachable altogether: every call that needs it is a 503 (asynchronous calls and the worker
registry too, which used the client directly and answered 500), calls that do not need it go on, and
when Redis is back the same gateway serves again: nobody restarts anything but Redis.
"""

from __future__ import annotations

import contextlib
import time
import uuid
from typing import Iterator

from specgate.adapters.embedded import EmbeddedValkey
from specgate.runtime.background import LEASE

from e2e.conftest import Api, start_server

from .proxy import SwallowingProxy


@contextlib.contextmanager
def proxied_gateway(tmp_path) -> Iterator[tuple[Api, SwallowingProxy]]:
    """A test server whose Redis (an embedded Valkey of its own) is reached through the proxy."""
    valkey = EmbeddedValkey(tmp_path / "valkey")
    url = valkey.start()
    proxy = SwallowingProxy(int(url.rsplit(":", 1)[1]))
    info, uv, thread = start_server(tmp_path / "data", redis_url=f"redis://127.0.0.1:{proxy.port}")
    api = Api(info)
    try:
        yield api, proxy
    finally:
        api.close()
        uv.should_exit = True
        thread.join(timeout=10)
        proxy.close()
        valkey.stop()


def test_a_push_or_pop_whose_reply_was_lost_is_undone_so_retries_deliver_exactly_once(tmp_path):
    with proxied_gateway(tmp_path) as (api, proxy):
        queue, warm = (api.ok("queues.create", name=f"lost-{uuid.uuid4().hex[:8]}")["id"] for _ in range(2))
        first, second = (api.ok("tasks.create", name=f"lost-{n}", type="training")["id"] for n in range(2))

        def entries() -> list[str]:
            return [e["task"] for e in api.ok("queues.get_by_id", queue=queue)["queue"]["entries"]]

        api.ok("tasks.enqueue", task=first, queue=queue)  # loads the push script into Valkey
        assert api.ok("queues.get_next_task", queue=warm) == {}  # and the pop script

        proxy.swallow_next(f"sg:{{q:{queue}}}")
        status, body = api.call("tasks.enqueue", task=second, queue=queue)
        assert (status, body["meta"]["result_code"], proxy.swallowed) == (503, 503, 1), body["meta"]
        assert entries() == [first]  # the push had run: undone
        assert api.ok("tasks.get_by_id", task=second)["task"]["status"] == "created"
        api.ok("tasks.enqueue", task=second, queue=queue)  # the client's retry works
        assert entries() == [first, second]

        proxy.swallow_next(f"sg:{{q:{queue}}}")
        status, body = api.call("queues.get_next_task", queue=queue)
        assert (status, body["meta"]["result_code"], proxy.swallowed) == (503, 503, 2), body["meta"]
        assert entries() == [first, second]  # the popped entry is back at the head
        delivered = [api.ok("queues.get_next_task", queue=queue).get("entry", {}).get("task") for _ in range(3)]
        assert delivered == [first, second, None]


def test_a_background_claim_whose_reply_was_lost_is_undone_so_the_job_runs_within_seconds(tmp_path):
    """An X-Api-Async call's job claimed by a script whose reply never came: without undoing the claim
    the job would wait out its lease (30 s) before anybody ran it."""
    with proxied_gateway(tmp_path) as (api, proxy):
        task = api.ok("tasks.create", name="claimed", type="training")["id"]
        headers = {"Authorization": f"Bearer {api.token}", "X-Api-Async": "1"}
        proxy.swallow_next_reply('"name": "rpc.async"')  # the claim's reply carries the job
        call = api.raw("POST", "/v2.23/tasks.get_all", json={"id": [task], "only_fields": ["id"]}, headers=headers)[1]["data"]["id"]
        deadline = time.monotonic() + LEASE / 3
        while (outcome := api.ok("async.result", id=call))["status"] == "pending" and time.monotonic() < deadline:
            time.sleep(0.1)
        assert proxy.swallowed == 1
        assert (outcome["status"], outcome.get("data")) == ("done", {"tasks": [{"id": task}]})


def test_redis_unreachable_is_503_for_every_call_that_needs_it_and_the_gateway_reconnects(tmp_path):
    with proxied_gateway(tmp_path) as (api, proxy):
        queue = api.ok("queues.create", name=f"down-{uuid.uuid4().hex[:8]}")["id"]
        task = api.ok("tasks.create", name="down", type="training")["id"]
        api.ok("tasks.enqueue", task=task, queue=queue)
        headers = {"Authorization": f"Bearer {api.token}"}
        done = api.raw("POST", "/v2.23/tasks.get_all", json={"id": [task]}, headers={**headers, "X-Api-Async": "1"})[1]["data"]["id"]

        proxy.close()
        answers = {
            "queues.get_next_task": api.call("queues.get_next_task", queue=queue),
            "tasks.enqueue": api.call("tasks.enqueue", task=api.ok("tasks.create", name="down-2", type="training")["id"], queue=queue),
            "queues.get_by_id": api.call("queues.get_by_id", queue=queue),
            "workers.get_all": api.call("workers.get_all"),
            "async.result": api.call("async.result", id=done),
            "X-Api-Async": api.raw("POST", "/v2.23/tasks.get_all", json={}, headers={**headers, "X-Api-Async": "1"}),
        }
        codes = {name: (status, body["meta"]["result_code"]) for name, (status, body) in answers.items()}
        assert codes == {name: (503, 503) for name in answers}
        assert all("unavailable" in body["meta"]["result_msg"].lower() for _, body in answers.values())
        assert api.ok("tasks.get_by_id", task=task)["task"]["status"] == "queued"  # the store goes on
        assert api.raw("GET", "/health/ready")[0] == 503

        proxy.reopen()
        assert api.ok("queues.get_next_task", queue=queue)["entry"]["task"] == task
        assert api.raw("GET", "/health/ready")[0] == 200
        deadline = time.monotonic() + 10  # the background worker retries every second while Redis is away
        while (outcome := api.ok("async.result", id=done))["status"] == "pending" and time.monotonic() < deadline:
            time.sleep(0.1)
        assert outcome["status"] == "done"
