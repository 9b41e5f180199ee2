"""A task popped by a ``get_next_task`` whose answer never arrived (the gateway died right after the
pop) stays ``queued`` and was lost to every consumer. After ``SPECGATE_REDELIVER_AFTER`` seconds
without a ``tasks.started`` it is handed out again; a task that was started never is.
"""

from __future__ import annotations

import time
import uuid

from e2e.conftest import Api, start_server


def test_a_popped_task_nobody_started_is_handed_out_again(tmp_path) -> None:
    info, uv, thread = start_server(tmp_path / "data", redeliver_after=1)
    api = Api(info)
    try:
        queue = api.ok("queues.create", name=f"redeliver-{uuid.uuid4().hex[:8]}")["id"]
        lost, started = (api.ok("tasks.create", name=f"redeliver {n}", type="training")["id"] for n in range(2))
        for task in (lost, started):
            api.ok("tasks.enqueue", task=task, queue=queue)
        assert api.ok("queues.get_next_task", queue=queue)["entry"]["task"] == lost  # the answer "never arrived"
        assert api.ok("queues.get_next_task", queue=queue)["entry"]["task"] == started
        api.ok("tasks.started", task=started, force=True)
        assert api.ok("queues.get_next_task", queue=queue) == {}

        deadline, entries = time.monotonic() + 10, []
        while time.monotonic() < deadline and not entries:
            time.sleep(0.2)
            entries = [e["task"] for e in api.ok("queues.get_by_id", queue=queue)["queue"]["entries"]]
        assert entries == [lost]
        assert api.ok("tasks.get_by_id", task=lost)["task"]["status"] == "queued"
        assert api.ok("queues.get_next_task", queue=queue)["entry"]["task"] == lost
        api.ok("tasks.started", task=lost, force=True)

        time.sleep(2.5)  # two more rounds of the sweep: neither started task comes back
        assert api.ok("queues.get_by_id", queue=queue)["queue"]["entries"] == []
        assert api.ok("queues.get_next_task", queue=queue) == {}
    finally:
        api.close()
        uv.should_exit = True
        thread.join(timeout=10)
