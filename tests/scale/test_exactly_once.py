"""Exactly-once delivery when several gateway processes serve one deployment.

Producers create and enqueue tasks through alternating gateways while 16 consumers, split across
the gateways, pop the same queue; every enqueue the API acknowledged must come out exactly once,
and afterwards the tasks and the queue must agree. One token is used against every process, so
token signing must agree across processes too.
"""

from __future__ import annotations

import asyncio
import collections
import os
import secrets
import subprocess
import sys
import time
from pathlib import Path

from .conftest import ACCESS_KEY, SECRET_KEY, Connection, database_url

TASKS = 2000
CONSUMERS = 16
PRODUCERS = 8
VERSION = "/v2.23/"


def _failure(endpoint: str, status: int, body: dict) -> tuple:
    meta = body.get("meta", {})
    return endpoint, status, meta.get("result_code"), meta.get("result_subcode"), meta.get("result_msg", "")[:100]


async def _login(url: str) -> str:
    conn = Connection(url)
    try:
        status, body = await conn.post("/auth.login", {}, basic=(ACCESS_KEY, SECRET_KEY))
    finally:
        await conn.close()
    assert status == 200, body["meta"]
    return body["data"]["token"]


async def _ok(url: str, endpoint: str, token: str, **data) -> dict:
    conn = Connection(url)
    try:
        status, body = await conn.post(VERSION + endpoint, data, token=token)
    finally:
        await conn.close()
    assert status == 200, body["meta"]
    return body["data"]


async def _opened(url: str) -> Connection:
    conn = await Connection(url).open()
    await asyncio.sleep(0.005)
    return conn


def _count(metrics: bytes, endpoint: str) -> int:
    """Calls of ``endpoint`` answered 200, from one worker's /metrics."""
    prefix = f'specgate_requests_total{{endpoint="{endpoint}"'
    return sum(int(line.rsplit(" ", 1)[1]) for line in metrics.decode().splitlines()
               if line.startswith(prefix) and 'status="200"' in line)  # fmt: skip


async def run_exactly_once(urls: list[str], token: str) -> dict:
    """Race producers against consumers through ``urls``; return what was acknowledged and delivered."""
    queue = (await _ok(urls[0], "queues.create", token, name=f"scale {time.time_ns()}"))["id"]
    acked: list[str] = []
    delivered: list[str] = []
    failures: list[tuple] = []
    calls = collections.Counter()
    todo = iter(range(TASKS))
    produced = asyncio.Event()

    # opened one by one before the race, so the kernel spreads them over a host's worker processes
    producer_conns = [[await _opened(u) for u in urls] for _ in range(PRODUCERS)]
    consumer_conns = [await _opened(urls[n % len(urls)]) for n in range(CONSUMERS)]

    async def producer(conns: list[Connection]) -> None:
        try:
            for i in todo:
                maker, enqueuer = conns[i % len(conns)], conns[(i + 1) % len(conns)]
                status, body = await maker.post(VERSION + "tasks.create", {"name": f"scale {i}", "type": "training"}, token=token)
                if status != 200:
                    failures.append(_failure("tasks.create", status, body))
                    continue
                task = body["data"]["id"]
                status, body = await enqueuer.post(VERSION + "tasks.enqueue", {"task": task, "queue": queue}, token=token)
                if status == 200 and body["data"].get("queued") == 1:
                    acked.append(task)
                else:
                    failures.append(_failure("tasks.enqueue", status, body))
        finally:
            for conn in conns:
                await conn.close()

    async def consumer(conn: Connection) -> None:
        try:
            while True:
                done = produced.is_set()  # read before the pop: an empty answer after it means drained
                status, body = await conn.post(VERSION + "queues.get_next_task", {"queue": queue}, token=token)
                calls[status] += 1
                if status != 200:
                    failures.append(_failure("queues.get_next_task", status, body))
                    await asyncio.sleep(0.05)
                elif body["data"].get("entry"):
                    delivered.append(body["data"]["entry"]["task"])
                elif done:
                    return
                else:  # ahead of the producers: poll as an idle agent would, not in a tight loop
                    calls["empty"] += 1
                    await asyncio.sleep(0.3)
        finally:
            await conn.close()

    async def produce() -> None:
        await asyncio.gather(*(producer(conns) for conns in producer_conns))
        produced.set()

    started = time.monotonic()
    await asyncio.wait_for(asyncio.gather(produce(), *(consumer(c) for c in consumer_conns)), timeout=240)
    elapsed = time.monotonic() - started

    states: dict[str, tuple] = {}
    for at in range(0, len(acked), 500):
        found = await _ok(urls[-1], "tasks.get_all", token, id=acked[at : at + 500], only_fields=["id", "status", "execution"], page_size=500)
        states.update((t["id"], (t["status"], (t.get("execution") or {}).get("queue"))) for t in found["tasks"])
    entries = (await _ok(urls[-1], "queues.get_by_id", token, queue=queue))["queue"]["entries"]
    return {"queue": queue, "acked": acked, "delivered": delivered, "failures": failures, "states": states,
            "entries": entries, "seconds": elapsed, "pops": calls[200], "empty": calls["empty"]}  # fmt: skip


def check(outcome: dict) -> None:
    acked, delivered = outcome["acked"], outcome["delivered"]
    assert outcome["failures"] == [], collections.Counter(f[:4] for f in outcome["failures"])
    assert len(acked) == TASKS
    duplicates = {t: n for t, n in collections.Counter(delivered).items() if n > 1}
    assert duplicates == {}, f"{len(duplicates)} tasks delivered more than once"
    assert set(acked) - set(delivered) == set(), "acknowledged enqueues never delivered"
    assert set(delivered) - set(acked) == set(), "deliveries of tasks never acknowledged"
    # afterwards every task still says queued, on this queue (popping leaves the status to the agent),
    # and the queue holds nothing
    assert len(outcome["states"]) == TASKS
    assert set(outcome["states"].values()) == {("queued", outcome["queue"])}
    assert outcome["entries"] == []
    print(f"\n  {len(acked)} acknowledged, {len(delivered)} delivered, 0 duplicates, 0 lost, in "
          f"{outcome['seconds']:.1f} s ({outcome['empty']} empty polls)")  # fmt: skip


async def test_two_gateway_processes_deliver_every_enqueue_exactly_once(gateways, mongo_url, redis_url) -> None:
    mongo = database_url(mongo_url)
    # two hosts: a data directory each, one MongoDB, one Redis, the same SPECGATE_AUTH_SECRET
    first, second = await asyncio.to_thread(gateways, mongo, redis_url, 2, SPECGATE_AUTH_SECRET=secrets.token_hex(32))
    token = await _login(first.url)
    assert (await _ok(second.url, "users.get_current_user", token))["user"]["name"] == "admin"
    assert (await _ok(first.url, "users.get_current_user", await _login(second.url)))["user"]["name"] == "admin"

    check(await run_exactly_once([first.url, second.url], token))

    # the reconciliation a restarting gateway runs finds nothing lost and nothing stale: every entry
    # was popped, and the record of deliveries says so
    env = {k: v for k, v in os.environ.items() if not k.startswith("SPECGATE_")}
    env.update(SPECGATE_DATA_DIR=str(first.log.parent), SPECGATE_MONGO_URL=mongo, SPECGATE_REDIS_URL=redis_url)
    repair = await asyncio.to_thread(
        subprocess.run, [str(Path(sys.executable).with_name("specgate")), "repair-queues"],
        env=env, capture_output=True, text=True, timeout=60,
    )  # fmt: skip
    assert repair.returncode == 0, repair.stderr
    assert "0 lost entries restored, 0 stale entries dropped" in repair.stdout


async def test_one_process_with_two_workers_delivers_every_enqueue_exactly_once(gateways) -> None:
    # the default single host: the workers share the SQLite file and the one embedded Valkey the CLI
    # starts for them (shared backends across processes are the test above), and, with no
    # SPECGATE_AUTH_SECRET, the secret generated into the data directory on this first start
    (gateway,) = await asyncio.to_thread(gateways, None, None, 1, "--workers", "2")
    # a token issued by one worker is accepted by the other: log in on one connection, then find a
    # connection served by a worker that has answered no login (the metrics are per worker)
    issuer = await Connection(gateway.url).open()
    status, body = await issuer.post("/auth.login", {}, basic=(ACCESS_KEY, SECRET_KEY))
    assert status == 200, body["meta"]
    token = body["data"]["token"]
    for _ in range(100):
        other = await Connection(gateway.url).open()
        try:
            if _count((await other.request("GET", "/metrics"))[1], "auth.login") == 0:
                status, body = await other.post(VERSION + "users.get_current_user", {}, token=token)
                assert status == 200, body["meta"]
                break
        finally:
            await other.close()
    else:
        raise AssertionError("100 new connections all reached the worker that issued the token")
    await issuer.close()

    outcome = await run_exactly_once([gateway.url, gateway.url], token)
    check(outcome)
    # how the pops were split between the workers, from their own metrics
    split = set()
    for _ in range(100):
        conn = await Connection(gateway.url).open()
        split.add(_count((await conn.request("GET", "/metrics"))[1], "queues.get_next_task"))
        await conn.close()
        if len(split) == 2:
            break
    print(f"  get_next_task answered per worker: {sorted(split)}")
    assert sum(split) == outcome["pops"] or split == {outcome["pops"] // 2}
