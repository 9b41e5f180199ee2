"""The document store unavailable for a moment.

MongoDB (nx-27017 on a file, so its data outlives it) is stopped and started again on the same port
while clients keep calling: meanwhile every call is answered 503 in the catalogue envelope within
the server-selection timeout (3 s) plus slack, never 500 and never a hang; afterwards calls work again
without a gateway restart and nothing written before is missing. A SQLite database locked by another
writer is a 503 too, after the busy timeout, while reads go on.
"""

from __future__ import annotations

import asyncio
import sqlite3
import subprocess
import sys
import time
import uuid
from collections import Counter
from pathlib import Path

from adapters.conftest import stop_nx, wait_for_port
from e2e.conftest import Api, free_port, start_server

from .conftest import Gateway, Http, bearer, get

SELECTION_TIMEOUT = 3.0  # MongoStore's default serverSelectionTimeoutMS
OUTAGE = 4.5  # seconds MongoDB stays down: more than the selection timeout, so waiting calls give up
SLACK = 2.0


def start_nx_on(home: Path, port: int) -> subprocess.Popen:
    """nx-27017 on ``home/nx.db`` (a file, unlike the in-memory server of the adapter tests)."""
    home.mkdir(parents=True, exist_ok=True)
    exe = Path(sys.executable).parent / "nx-27017"
    proc = subprocess.Popen(
        [str(exe), "--host", "127.0.0.1", "-p", str(port), "--db", str(home / "nx.db"),
         "--pid-file", str(home / "nx.pid"), "--log-file", str(home / "nx.log")],
        stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, cwd=home,
    )  # fmt: skip
    wait_for_port(port, proc)
    return proc


async def _outage(gateway: Gateway, nx_home: Path, nx_port: int, nx: list[subprocess.Popen]) -> dict:
    headers = await bearer(gateway.port)
    admin = Http(gateway.port, headers)
    connections = [admin]
    answers: list[tuple[float, float, str, int, dict]] = []  # (started, seconds, endpoint, status, meta)
    try:
        before = []
        for i in range(10):
            status, body = await admin.post("/v2.23/tasks.create", {"name": f"before-{i}", "type": "training"})
            assert status == 200, body
            before.append(body["data"]["id"])
        stop_nx(nx[0])
        stopped = time.monotonic()
        restarting = restarted = float("inf")  # start command given / port listening again
        phase = {"done": False}

        async def caller(n: int) -> None:
            http = Http(gateway.port, headers)
            connections.append(http)
            calls = [("tasks.get_all", {"id": before}), ("tasks.create", {"name": f"during-{n}", "type": "training"}),
                     ("tasks.edit", {"task": before[n], "comment": f"edited by {n}"})]  # fmt: skip
            i = n  # each caller starts elsewhere in the rotation
            while not phase["done"]:
                endpoint, data = calls[i % len(calls)]
                i += 1
                started = time.monotonic()
                status, body = await http.post(f"/v2.23/{endpoint}", data)
                answers.append((started, time.monotonic() - started, endpoint, status, body.get("meta") or {}))
                await asyncio.sleep(0.05)

        async def operator() -> None:
            nonlocal restarting, restarted
            await asyncio.sleep(OUTAGE)
            ready_down = await asyncio.to_thread(get, gateway.port, "/health/ready")
            restarting = time.monotonic()  # MongoDB may answer from here on, before this loop sees the port
            nx[0] = await asyncio.to_thread(start_nx_on, nx_home, nx_port)
            restarted = time.monotonic()
            deadline = restarted + 15
            while not any(a[0] >= restarted and a[3] == 200 for a in answers):
                assert time.monotonic() < deadline, "calls did not recover after MongoDB came back"
                await asyncio.sleep(0.05)
            await asyncio.sleep(0.5)
            phase["done"] = True
            phase["ready"] = (ready_down[0], (await asyncio.to_thread(get, gateway.port, "/health/ready"))[0])

        await asyncio.wait_for(asyncio.gather(operator(), *(caller(n) for n in range(4))), 60)
        status, body = await admin.post("/v2.23/tasks.get_all", {"id": before, "only_fields": ["id", "comment"]})
        assert status == 200, body
        return {"answers": answers, "stopped": stopped, "restarting": restarting, "restarted": restarted, "before": before,
                "found": body["data"]["tasks"], "ready": phase["ready"]}  # fmt: skip
    finally:
        for http in connections:
            await http.close()


def test_mongodb_stopped_and_started_again_gives_bounded_503s_then_recovers(tmp_path, reap):
    nx_home, nx_port = tmp_path / "nx", free_port()
    nx = [start_nx_on(nx_home, nx_port)]
    try:
        gateway = reap.gateway(Gateway(tmp_path / "gw", SPECGATE_MONGO_URL=f"mongodb://127.0.0.1:{nx_port}/faults?directConnection=true",
                                       SPECGATE_AUTH_SECRET="faults-shared-secret")).start()  # fmt: skip
        run = asyncio.run(_outage(gateway, nx_home, nx_port, nx))
        assert gateway.proc.poll() is None  # recovered without a gateway restart
        gateway.stop()
    finally:
        stop_nx(nx[0])

    answers, stopped, restarting, restarted = run["answers"], run["stopped"], run["restarting"], run["restarted"]
    odd = [a for a in answers if a[3] not in (200, 503)]
    assert odd == []
    unavailable = [a for a in answers if a[3] == 503]
    assert all(a[4].get("result_code") == 503 and "unavailable" in a[4].get("result_msg", "").lower() for a in unavailable)
    during = [a for a in answers if stopped + 0.2 < a[0] + a[1] < restarting]  # answered while MongoDB was down
    window = f"stopped {stopped:.3f}, restarting {restarting:.3f}, listening {restarted:.3f}"
    assert during and [a[:4] for a in during if a[3] != 503] == [], window
    assert {a[2] for a in during} == {"tasks.get_all", "tasks.create", "tasks.edit"}
    slowest = max(a[1] for a in unavailable)
    assert slowest < SELECTION_TIMEOUT + SLACK
    recovered = min(a[0] + a[1] for a in answers if a[0] >= restarted and a[3] == 200) - restarted
    assert recovered < 5
    assert after_all_ok(answers, restarted)
    assert sorted(t["id"] for t in run["found"]) == sorted(run["before"])  # nothing written before is gone
    assert run["ready"] == (503, 200)
    print(f"\nmongo outage: down {restarted - stopped:.1f} s; {len(unavailable)} calls answered 503 "
          f"({dict(Counter(a[2] for a in unavailable))}), slowest {slowest:.2f} s; first success {recovered:.2f} s after "
          f"MongoDB was back; {len(answers)} calls, 0 x 500")  # fmt: skip


def after_all_ok(answers: list, restarted: float) -> bool:
    """Once a call succeeded after the restart, every later call succeeds (no flapping)."""
    first = min(a[0] + a[1] for a in answers if a[0] >= restarted and a[3] == 200)
    return all(a[3] == 200 for a in answers if a[0] > first)


def test_a_locked_sqlite_database_is_503_after_the_busy_timeout_and_reads_go_on(tmp_path, monkeypatch):
    from specgate.adapters.sqlite import SqliteStore
    from specgate.runtime import app as app_module

    busy_ms = 300  # the gateway's is 10 s; shortened here through the store's own parameter
    monkeypatch.setattr(app_module, "make_store", lambda s: SqliteStore(str(s.data_dir / "specgate.db"), busy_timeout_ms=busy_ms))
    info, uv, thread = start_server(tmp_path / "data")
    api = Api(info)
    locker = sqlite3.connect(tmp_path / "data" / "specgate.db", isolation_level=None)
    try:
        task = api.ok("tasks.create", name=f"locked-{uuid.uuid4().hex[:6]}", type="training")["id"]
        locker.execute("BEGIN IMMEDIATE")  # another writer holds the write lock (a backup, a second gateway)
        started = time.monotonic()
        status, body = api.call("tasks.create", name="while-locked", type="training")
        waited = time.monotonic() - started
        assert (status, body["meta"]["result_code"]) == (503, 503), body["meta"]
        assert "locked" in body["meta"]["result_msg"]
        assert busy_ms / 1000 <= waited < busy_ms / 1000 + SLACK
        status, body = api.call("tasks.edit", task=task, comment="while locked")
        assert status == 503, body["meta"]
        assert [t["id"] for t in api.ok("tasks.get_all", id=[task])["tasks"]] == [task]  # WAL: readers go on
        locker.execute("ROLLBACK")
        api.ok("tasks.edit", task=task, comment="after")
        assert api.ok("tasks.get_by_id", task=task)["task"]["comment"] == "after"
        print(f"\nsqlite locked: writes answered 503 after {waited:.2f} s (busy_timeout {busy_ms} ms), reads 200, writes 200 once released")
    finally:
        locker.close()
        api.close()
        uv.should_exit = True
        thread.join(timeout=10)


def test_a_store_failure_right_after_a_pop_puts_the_entry_back(tmp_path):
    """queues.get_next_task pops, then reads the task: if the store fails in between, the caller gets
    a 503 and the entry must not be lost (before, nobody ever received it)."""
    from specgate.adapters.ports import StoreUnavailable

    info, uv, thread = start_server(tmp_path / "data")
    api = Api(info)
    store = info.app.services.store
    real_get = store.get
    try:
        queue = api.ok("queues.create", name=f"pop-{uuid.uuid4().hex[:6]}")["id"]
        tasks = [api.ok("tasks.create", name=f"pop-{n}", type="training")["id"] for n in range(2)]
        for task in tasks:
            api.ok("tasks.enqueue", task=task, queue=queue)
        failing = {"armed": True}

        async def get(collection, id, **kwargs):
            if collection == "tasks" and id == tasks[0] and failing.pop("armed", False):
                raise StoreUnavailable("the store went away")
            return await real_get(collection, id, **kwargs)

        store.get = get
        status, body = api.call("queues.get_next_task", queue=queue)
        assert (status, body["meta"]["result_code"]) == (503, 503), body["meta"]
        assert not failing  # the failure was injected after the pop
        entries = [e["task"] for e in api.ok("queues.get_by_id", queue=queue)["queue"]["entries"]]
        assert entries == tasks  # back at the head, in order
        assert [api.ok("queues.get_next_task", queue=queue)["entry"]["task"] for _ in tasks] == tasks
    finally:
        store.get = real_get
        api.close()
        uv.should_exit = True
        thread.join(timeout=10)
