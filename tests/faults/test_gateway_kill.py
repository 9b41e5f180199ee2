"""SIGKILL of ``specgate serve`` while 12 clients create, edit and enqueue tasks, then a restart on the
same data directory: every write that got a successful answer is there.

Round 1 kills the gateway alone. Its valkey-server child survives the SIGKILL (it is not signalled)
and the restarted gateway adopts it from ``server.json`` instead of starting a second one on the same
files. Round 2 kills the gateway and that valkey-server together, so the queues come back from the
AOF. At the end a SIGTERM stops the gateway and the adopted valkey-server: no orphan is left.

Durability: SQLite in WAL mode with ``synchronous=NORMAL`` has a committed transaction in the WAL file
(in the OS's page cache) before the answer goes out, which a killed process cannot lose (only an OS
crash or power cut could); the embedded Valkey likewise writes its AOF before every reply
(``appendfsync no``, see adapters/embedded.py).
"""

from __future__ import annotations

import asyncio
import os
import signal
import time
import uuid
from collections import Counter

from .conftest import Gateway, Http, alive, bearer, get, listener_pid

WRITERS = 12
HAMMER = 2.0  # seconds of writes before each kill


class Book:
    """What the clients were told: acknowledged writes, and writes whose answer never came."""

    def __init__(self) -> None:
        self.created: set[str] = set()
        self.comment: dict[str, str] = {}  # task → last acknowledged comment
        self.maybe_comment: dict[str, str] = {}  # task → comment sent when the gateway died
        self.enqueued: set[str] = set()
        self.maybe_enqueued: set[str] = set()
        self.calls = 0
        self.cut = 0  # calls in flight when the gateway died


async def _hammer(port: int, headers: dict, queue: str, book: Book, kill) -> None:
    """Writers until the gateway dies under them; ``kill`` runs after HAMMER seconds."""

    async def writer() -> None:
        http = Http(port, headers)
        try:
            while True:
                task = None
                try:
                    status, body = await http.post("/v2.23/tasks.create", {"name": f"kill-{uuid.uuid4().hex[:8]}", "type": "training"})
                    book.calls += 1
                    assert status == 200, body
                    task = body["data"]["id"]
                    book.created.add(task)
                    for version in ("v1", "v2"):
                        book.maybe_comment[task] = version
                        status, body = await http.post("/v2.23/tasks.edit", {"task": task, "comment": version})
                        book.calls += 1
                        assert status == 200, body
                        book.comment[task] = version
                        del book.maybe_comment[task]
                    book.maybe_enqueued.add(task)
                    status, body = await http.post("/v2.23/tasks.enqueue", {"task": task, "queue": queue})
                    book.calls += 1
                    assert status == 200, body
                    book.enqueued.add(task)
                    book.maybe_enqueued.discard(task)
                except (OSError, asyncio.IncompleteReadError):
                    book.cut += 1
                    return  # the gateway is gone
        finally:
            await http.close()

    async def killer() -> None:
        await asyncio.sleep(HAMMER)
        await asyncio.to_thread(kill)

    await asyncio.wait_for(asyncio.gather(killer(), *(writer() for _ in range(WRITERS))), 60)


async def _check(port: int, queue: str, book: Book) -> dict:
    """Everything acknowledged is there; the queue agrees with the task statuses."""
    headers = await bearer(port)
    http = Http(port, headers)
    try:
        ids = sorted(book.created)
        found: dict[str, dict] = {}
        for at in range(0, len(ids), 500):
            status, body = await http.post("/v2.23/tasks.get_all", {"id": ids[at:at + 500], "only_fields": ["id", "comment", "status", "execution"]})
            assert status == 200, body
            found.update((t["id"], t) for t in body["data"]["tasks"])
        status, body = await http.post("/v2.23/queues.get_by_id", {"queue": queue})
        assert status == 200, body
        entries = [e["task"] for e in body["data"]["queue"]["entries"]]
    finally:
        await http.close()
    missing = sorted(set(ids) - set(found))
    lost_edits = {t: (v, found[t].get("comment")) for t, v in book.comment.items()
                  if t in found and found[t].get("comment") not in (v, book.maybe_comment.get(t))}  # fmt: skip
    lost_enqueues = sorted(t for t in book.enqueued if t in found and (found[t]["status"], (found[t].get("execution") or {}).get("queue")) != ("queued", queue))
    queued = {t for t, doc in found.items() if doc["status"] == "queued"}
    return {
        "missing": missing, "lost_edits": lost_edits, "lost_enqueues": lost_enqueues,
        "duplicate_entries": {t: n for t, n in Counter(entries).items() if n > 1},
        "queued_without_entry": sorted(queued - set(entries)), "entry_not_queued": sorted(set(entries) & set(found) - queued),
        "maybe_enqueued_landed": sum(1 for t in book.maybe_enqueued if t in queued),
    }  # fmt: skip


CLEAN = {"missing": [], "lost_edits": {}, "lost_enqueues": [], "duplicate_entries": {}, "queued_without_entry": [], "entry_not_queued": []}


def test_sigkilled_gateway_restarts_with_every_acknowledged_write(tmp_path, reap):
    gateway = reap.gateway(Gateway(tmp_path)).start()
    book = Book()

    async def prepare() -> tuple[dict, str]:
        headers = await bearer(gateway.port)
        http = Http(gateway.port, headers)
        status, body = await http.post("/v2.23/queues.create", {"name": f"kill-{uuid.uuid4().hex[:8]}"})
        await http.close()
        assert status == 200, body
        return headers, body["data"]["id"]

    headers, queue = asyncio.run(prepare())
    valkey_port = gateway.valkey_port()
    valkey = listener_pid(valkey_port)
    reap.pid(valkey)
    started = time.monotonic()

    # round 1: the gateway alone
    asyncio.run(_hammer(gateway.port, headers, queue, book, gateway.kill))
    survived = alive(valkey)
    round1 = {"created": len(book.created), "cut": book.cut, "calls": book.calls}
    gateway.start()
    adopted = listener_pid(valkey_port) == valkey  # the same valkey-server serves the new gateway
    first = asyncio.run(_check(gateway.port, queue, book))

    # round 2: the gateway and its (adopted) valkey-server together
    headers = asyncio.run(bearer(gateway.port))

    def kill_both() -> None:  # the gateway first: alive a moment longer than its Valkey, it would answer 503s
        gateway.kill()
        os.kill(valkey, signal.SIGKILL)

    asyncio.run(_hammer(gateway.port, headers, queue, book, kill_both))
    gateway.start()
    valkey_again = listener_pid(valkey_port)
    reap.pid(valkey_again)
    second = asyncio.run(_check(gateway.port, queue, book))
    ready = get(gateway.port, "/health/ready")[0]
    gateway.stop()
    elapsed = time.monotonic() - started

    assert survived and adopted  # the orphaned valkey-server was reused, not duplicated
    assert {k: first[k] for k in CLEAN} == CLEAN
    assert valkey_again not in (None, valkey) and not alive(valkey)  # round 2: a new one on the same port, from the AOF
    assert {k: second[k] for k in CLEAN} == CLEAN
    assert ready == 200
    assert listener_pid(valkey_port) is None and not alive(valkey_again)  # SIGTERM stopped the adopted server too
    assert round1["cut"] > 0 and book.cut > round1["cut"]  # both kills hit writes in flight
    print(f"\ngateway kill: round 1 {round1['created']} tasks created, {round1['cut']} calls cut by the SIGKILL, "
          f"valkey child survived and was adopted; round 2 (gateway + valkey killed) {len(book.created)} tasks in all, "
          f"{book.cut - round1['cut']} calls cut; acknowledged {len(book.created)} creates, {len(book.comment)} edits, "
          f"{len(book.enqueued)} enqueues: missing 0, lost edits 0, lost enqueues 0, duplicate entries 0; "
          f"{second['maybe_enqueued_landed']} of {len(book.maybe_enqueued)} unanswered enqueues landed (consistently); "
          f"{book.calls} calls, {elapsed:.1f} s")  # fmt: skip
