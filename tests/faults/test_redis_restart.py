"""The embedded Valkey SIGKILLed twice while 8 producers enqueue 2,000 tasks and 16 consumers pop them.

The gateway notices that its valkey-server died and starts it again on the same port and AOF (in
production Redis is external and the gateway only reconnects). Meanwhile calls that need Redis are
answered 503 in the catalogue envelope, fast; afterwards they work again without a gateway restart,
and every acknowledged enqueue is delivered exactly once.
"""

from __future__ import annotations

import asyncio
import os
import signal
import time
import uuid
from collections import Counter

from .conftest import Gateway, Http, alive, bearer, get, listener_pid

TASKS, PRODUCERS, CONSUMERS = 2000, 8, 16
KILL_AT = (600, 1400)  # acknowledged enqueues after which valkey-server gets SIGKILL
SLOW_503 = 2.0  # seconds: a 503 slower than this is a hang, not a fast failure
RECOVERY = 5.0  # seconds after valkey-server listens again by which calls must succeed again


async def _run(gateway: Gateway, reap) -> dict:
    headers = await bearer(gateway.port)
    admin = Http(gateway.port, headers)
    status, body = await admin.post("/v2.23/queues.create", {"name": f"faults-{uuid.uuid4().hex[:8]}"})
    assert status == 200, body
    queue = body["data"]["id"]
    acked: set[str] = set()
    delivered: list[str] = []
    answers: Counter = Counter()
    odd: list = []  # anything but 200 and a proper 503
    failures: list[tuple[float, float, str]] = []  # (when, seconds it took, endpoint) of each 503
    outages: list[dict] = []
    producers_done = asyncio.Event()
    connections: list[Http] = [admin]

    def connect() -> Http:
        connections.append(Http(gateway.port, headers))
        return connections[-1]

    async def call(http: Http, endpoint: str, data: dict) -> tuple[int, dict]:
        started = time.monotonic()
        status, body = await http.post(f"/v2.23/{endpoint}", data)
        answers[endpoint, status] += 1
        if status == 503:
            failures.append((started, time.monotonic() - started, endpoint))
            meta = body.get("meta") or {}
            if meta.get("result_code") != 503 or "unavailable" not in meta.get("result_msg", "").lower() or "data" not in body:
                odd.append((endpoint, status, meta))
        elif status != 200:
            odd.append((endpoint, status, body.get("meta")))
        return status, body

    async def producer(n: int) -> None:
        http = connect()
        for _ in range(n):
            task = None
            while task is None:  # the SDK retries 503s; so does this producer
                status, body = await call(http, "tasks.create", {"name": f"fault-{uuid.uuid4().hex[:8]}", "type": "training"})
                if status not in (200, 503):
                    return
                task = body["data"]["id"] if status == 200 else await asyncio.sleep(0.05)
            while True:
                status, _ = await call(http, "tasks.enqueue", {"task": task, "queue": queue})
                if status == 200:
                    acked.add(task)
                    break
                if status != 503:
                    return
                await asyncio.sleep(0.05)

    async def producers() -> None:
        await asyncio.gather(*(producer(TASKS // PRODUCERS) for _ in range(PRODUCERS)))
        producers_done.set()

    async def consumer() -> None:
        http = connect()
        while True:
            status, body = await call(http, "queues.get_next_task", {"queue": queue})
            if status == 200 and body["data"]:
                delivered.append(body["data"]["entry"]["task"])
            elif status == 200 and producers_done.is_set():
                break  # every acknowledged entry was pushed before this empty answer
            elif status in (200, 503):
                await asyncio.sleep(0.02 if status == 200 else 0.05)
            else:
                break

    async def killer() -> None:
        for threshold in KILL_AT:
            while len(acked) < threshold and not producers_done.is_set():
                await asyncio.sleep(0.01)
            port = gateway.valkey_port()
            victim = listener_pid(port)
            assert victim is not None and victim != gateway.pid
            killed = time.monotonic()
            os.kill(victim, signal.SIGKILL)
            outage = {"killed": killed, "port": port, "pid": victim, "acked": len(acked), "delivered": len(delivered)}
            outages.append(outage)
            while (back := listener_pid(port)) in (None, victim):  # who restarts it: the gateway
                assert time.monotonic() - outage["killed"] < 20, "nobody restarted the embedded Valkey"
                await asyncio.sleep(0.05)
            reap.pid(back)
            outage.update(back=time.monotonic(), new_pid=back)

    try:
        await asyncio.wait_for(asyncio.gather(producers(), killer(), *(consumer() for _ in range(CONSUMERS))), 100)
        status, body = await admin.post("/v2.23/queues.get_by_id", {"queue": queue})
    finally:
        for http in connections:
            await http.close()
    assert status == 200, body
    return {"acked": acked, "delivered": delivered, "answers": answers, "odd": odd, "failures": failures,
            "outages": outages, "left": body["data"]["queue"]["entries"]}  # fmt: skip


def test_valkey_sigkilled_mid_run_gives_fast_503s_then_recovers_with_every_enqueue_delivered_once(tmp_path, reap):
    gateway = reap.gateway(Gateway(tmp_path)).start()
    started = time.monotonic()
    run = asyncio.run(_run(gateway, reap))
    elapsed = time.monotonic() - started

    assert run["odd"] == []  # no 500, no 4xx from a retried enqueue, every 503 in the envelope
    assert len(run["acked"]) == TASKS
    twice = {task: n for task, n in Counter(run["delivered"]).items() if n > 1}
    assert twice == {}
    assert set(run["delivered"]) == run["acked"]
    assert run["left"] == []
    for outage in run["outages"]:
        assert outage["new_pid"] != outage["pid"] and not alive(outage["pid"])
        assert 0 < outage["delivered"] and outage["acked"] < TASKS  # the kill hit a running load
        assert outage["back"] - outage["killed"] < 10
    assert len({o["port"] for o in run["outages"]}) == 1  # restarted on the same port
    failed = run["failures"]
    assert failed, "no call noticed the outages"
    # every 503 was in flight during an outage or just after (the AOF loading): none once Redis was back.
    # A call that started just before the SIGKILL and was answered after it counts as in the outage.
    stray = [f for f in failed if not any(f[0] + f[1] >= o["killed"] and f[0] <= o["back"] + RECOVERY for o in run["outages"])]
    assert stray == [], [(o["killed"], o["back"]) for o in run["outages"]]
    assert {f[2] for f in failed} >= {"tasks.enqueue", "queues.get_next_task"}
    assert max(f[1] for f in failed) < SLOW_503
    assert gateway.proc.poll() is None  # no gateway restart was needed
    assert get(gateway.port, "/health/ready")[0] == 200
    print(
        f"\nvalkey restart: {len(run['outages'])} kills, outages "
        f"{[round(o['back'] - o['killed'], 2) for o in run['outages']]} s until listening again; "
        f"{len(failed)} calls answered 503 ({Counter(f[2] for f in failed)}), slowest {max(f[1] for f in failed):.3f} s, "
        f"last 503 {max(f[0] for f in failed) - run['outages'][-1]['killed']:.2f} s after the last kill; "
        f"{len(run['acked'])} acknowledged, {len(run['delivered'])} delivered, duplicates 0, lost 0; "
        f"{sum(run['answers'].values())} calls in {elapsed:.1f} s"
    )
    assert gateway.stop() in (0, -signal.SIGTERM)  # uvicorn re-raises the SIGTERM it handled
    assert listener_pid(run["outages"][0]["port"]) is None  # it stopped the Valkey it restarted
