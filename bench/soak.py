"""Soak: sustained mixed load against one gateway with embedded backends, with faults injected while
it runs, then an audit of every queue delivery. Not part of CI (``make soak``).

    .venv/bin/python bench/soak.py                     # 10 minutes
    .venv/bin/python bench/soak.py --minutes 2 --connections 8

A ``specgate serve`` subprocess (SQLite and embedded Valkey in a temporary data directory,
``SPECGATE_ENV=prod``) takes a closed loop of calls from ``--connections`` keep-alive connections:
``tasks.create`` (the SDK's ~2 KB body), ``tasks.edit``, ``tasks.get_all`` (a page of 50, as
``Task.get_tasks`` asks), ``tasks.enqueue`` + ``queues.get_next_task`` pairs on a few shared
queues, and ``server.info`` pings. Faults, at fixed fractions of the run:

- at 30 %: SIGKILL the embedded valkey-server, and time how long until ``/health/ready`` is 200 again;
- at 60 %: SIGKILL the gateway, start it again on the same port and data directory, and time it.

Every failed call is counted by HTTP status and ``result_code/result_subcode`` (or the connection
error), and the run goes on. At the end the queues are drained and every task whose enqueue was
acknowledged (200, ``queued: 1``) must have been delivered by ``get_next_task`` exactly once: the
script prints the tasks lost and delivered twice, and exits 1 when either is not zero.

Consumers act as the agent does: every task popped is then ``tasks.started`` (retried until it is
answered). The gateway runs with ``SPECGATE_REDELIVER_AFTER=20``, so a pop whose answer died with
the gateway is handed out again within the run, and the drain waits for such redeliveries.
"""

from __future__ import annotations

import os
import sys

_BENCH = os.path.dirname(os.path.abspath(__file__))
sys.path[:] = [p for p in sys.path if os.path.abspath(p or os.curdir) != _BENCH] + [_BENCH]

import argparse  # noqa: E402
import asyncio  # noqa: E402
import base64  # noqa: E402
import collections  # noqa: E402
import json  # noqa: E402
import random  # noqa: E402
import re  # noqa: E402
import signal  # noqa: E402
import subprocess  # noqa: E402
import tempfile  # noqa: E402
import time  # noqa: E402
from pathlib import Path  # noqa: E402

from benchlib import BIN, TASK_EDIT, env_float, env_int, free_port, percentile, stop_process, task_create_body  # noqa: E402

ACCESS_KEY = "SOAKACCESSKEY0000000000000001"
SECRET_KEY = "soak-secret-key-0123456789-abcdefghijklmnopqrstuvwxyz"
VERSION = "2.23"
QUEUES = 4
MIX = {"create": 15, "edit": 20, "get_all": 15, "pair": 40, "ping": 10}  # weights per loop turn
CALL_TIMEOUT = 30.0
REDELIVER_AFTER = 20  # seconds (the gateway's SPECGATE_REDELIVER_AFTER)


# --- the gateway under test ------------------------------------------------------------------


class Gateway:
    def __init__(self, data_dir: Path, log: Path):
        self.data_dir, self.log = data_dir, log
        self.port = free_port()
        self.proc: subprocess.Popen | None = None
        self.starts = 0

    def start(self) -> None:
        env = {k: v for k, v in os.environ.items() if not k.startswith("SPECGATE_")}
        env.update({
            "SPECGATE_DATA_DIR": str(self.data_dir), "SPECGATE_ENV": "prod", "SPECGATE_ACCESS_KEY": ACCESS_KEY,
            "SPECGATE_SECRET_KEY": SECRET_KEY, "SPECGATE_ACCESS_LOG": "false", "SPECGATE_SHUTDOWN_TIMEOUT": "5",
            "SPECGATE_REDELIVER_AFTER": str(REDELIVER_AFTER),
        })  # fmt: skip
        with open(self.log, "ab") as out:
            self.proc = subprocess.Popen([str(BIN / "specgate"), "serve", "--port", str(self.port)],
                                         stdin=subprocess.DEVNULL, stdout=out, stderr=out, env=env)  # fmt: skip
        self.starts += 1

    def valkey_pid(self) -> int | None:
        """The embedded valkey-server's pid: recorded by the gateway, else found among its children."""
        state = self.data_dir / "valkey" / "server.json"
        if state.is_file() and (pid := json.loads(state.read_text()).get("valkey_pid")):
            return int(pid)
        import psutil

        for child in psutil.Process(self.proc.pid).children(recursive=True):
            if child.name().startswith("valkey-server"):
                return child.pid
        return None

    async def ready_after(self, since: float, limit: float) -> float | None:
        """Seconds from ``since`` until /health/ready answers 200, or None within ``limit``."""
        while time.monotonic() - since < limit:
            if self.proc.poll() is not None:
                return None
            try:
                conn = Connection(self.port)
                status, _ = await asyncio.wait_for(conn.request("GET", "/health/ready"), 2.0)
                conn.close()
                if status == 200:
                    return time.monotonic() - since
            except (OSError, asyncio.TimeoutError, asyncio.IncompleteReadError):
                pass
            await asyncio.sleep(0.1)
        return None


# --- a small keep-alive client ---------------------------------------------------------------


class Connection:
    """One HTTP/1.1 keep-alive connection on asyncio streams, reopened after any failure."""

    def __init__(self, port: int, token: str = ""):
        self.port, self.token = port, token
        self.reader: asyncio.StreamReader | None = None
        self.writer: asyncio.StreamWriter | None = None

    async def request(self, method: str, path: str, body: bytes = b"", headers: str = "") -> tuple[int, bytes]:
        try:
            if self.writer is None:
                self.reader, self.writer = await asyncio.open_connection("127.0.0.1", self.port)
            self.writer.write(f"{method} {path} HTTP/1.1\r\nHost: 127.0.0.1\r\n{headers}"
                              f"Content-Length: {len(body)}\r\n\r\n".encode() + body)  # fmt: skip
            head = (await self.reader.readuntil(b"\r\n\r\n")).decode("latin-1").lower().split("\r\n")
            fields = dict(line.split(":", 1) for line in head[1:] if ":" in line)
            data = await self.reader.readexactly(int(fields.get("content-length", "0")))
            if fields.get("connection", "").strip() == "close":
                self.close()
            return int(head[0].split()[1]), data
        except BaseException:
            self.close()
            raise

    async def call(self, endpoint: str, data: dict, auth: str = "") -> tuple[int, dict]:
        headers = f"Authorization: {auth or 'Bearer ' + self.token}\r\nContent-Type: application/json\r\n"
        status, raw = await asyncio.wait_for(
            self.request("POST", f"/v{VERSION}/{endpoint}", json.dumps(data).encode(), headers), CALL_TIMEOUT
        )
        return status, json.loads(raw) if raw else {}

    def close(self) -> None:
        if self.writer is not None:
            self.writer.close()
            self.reader = self.writer = None


# --- the load --------------------------------------------------------------------------------


class Soak:
    def __init__(self, args: argparse.Namespace, gateway: Gateway):
        self.args, self.gateway = args, gateway
        self.token = ""
        self.queues: list[str] = []
        self.calls: collections.Counter = collections.Counter()
        self.latency: dict[str, list[float]] = collections.defaultdict(list)
        self.errors: dict[tuple, collections.Counter] = collections.defaultdict(collections.Counter)
        self.first_message: dict[tuple, str] = {}
        self.acked: set[str] = set()
        self.unknown: set[str] = set()  # enqueues that failed: maybe queued, maybe not
        self.delivered: collections.Counter = collections.Counter()
        self.faults: list[str] = []
        self.started = 0.0
        self.stop_at = 0.0

    def record_error(self, endpoint: str, key: tuple, message: str) -> None:
        self.errors[key][endpoint] += 1
        self.first_message.setdefault(key, message[:160])

    async def call(self, conn: Connection, endpoint: str, data: dict) -> dict | None:
        """One counted call; its data on success, None (error recorded) otherwise."""
        self.calls[endpoint] += 1
        t0 = time.monotonic()
        try:
            status, body = await conn.call(endpoint, data)
        except (OSError, asyncio.TimeoutError, asyncio.IncompleteReadError, ValueError) as e:
            self.record_error(endpoint, ("connection", type(e).__name__), str(e) or type(e).__name__)
            await asyncio.sleep(0.2)  # the gateway is away: do not spin
            return None
        self.latency[endpoint].append(time.monotonic() - t0)
        meta = body.get("meta", {})
        if status != 200:
            self.record_error(endpoint, (f"HTTP {status}", f"{meta.get('result_code')}/{meta.get('result_subcode')}"),
                              meta.get("result_msg", ""))  # fmt: skip
            if status >= 500:
                await asyncio.sleep(0.05)
            return None
        return body.get("data", {})

    async def setup(self) -> None:
        conn = Connection(self.gateway.port)
        basic = base64.b64encode(f"{ACCESS_KEY}:{SECRET_KEY}".encode()).decode()
        status, body = await conn.call("auth.login", {}, auth=f"Basic {basic}")
        if status != 200:
            raise SystemExit(f"auth.login failed: {body}")
        self.token = conn.token = body["data"]["token"]
        for i in range(QUEUES):
            status, body = await conn.call("queues.create", {"name": f"soak queue {i} {time.time_ns()}"})
            self.queues.append(body["data"]["id"])
        conn.close()

    async def worker(self, n: int) -> None:
        rnd = random.Random(n)
        conn = Connection(self.gateway.port, self.token)
        idle: list[str] = []  # this connection's tasks in status created
        ops, weights = list(MIX), list(MIX.values())
        k = 0
        while time.monotonic() < self.stop_at:
            op, k = rnd.choices(ops, weights)[0], k + 1
            if op == "create" or (op in ("edit", "pair") and not idle):
                created = await self.call(conn, "tasks.create", task_create_body(f"soak {n}-{k}", None))
                if created:
                    idle.append(created["id"])
            elif op == "edit":
                task = rnd.choice(idle)
                body = {key: value for key, value in TASK_EDIT.items() if key != "execution"}
                await self.call(conn, "tasks.edit", {**body, "task": task, "name": f"soak {n}-{k} edited"})
            elif op == "get_all":
                await self.call(conn, "tasks.get_all", {"only_fields": ["id", "name", "status", "last_update"],
                                                        "order_by": ["-last_update"], "status": ["created", "queued"],
                                                        "system_tags": ["-archived"], "page": 0, "page_size": 50})  # fmt: skip
            elif op == "pair":
                task, queue = idle.pop(rnd.randrange(len(idle))), rnd.choice(self.queues)
                done = await self.call(conn, "tasks.enqueue", {"task": task, "queue": queue})
                if done and done.get("queued") == 1:
                    self.acked.add(task)
                else:
                    self.unknown.add(task)
                await self.pop(conn, queue)
            else:
                await self.call(conn, "server.info", {})
        conn.close()

    async def pop(self, conn: Connection, queue: str) -> bool:
        data = await self.call(conn, "queues.get_next_task", {"queue": queue})
        if data and data.get("entry"):
            await self.start(conn, data["entry"]["task"])
            return True
        return False

    async def start(self, conn: Connection, task: str) -> None:
        """Count a delivery and start the task, as the agent does (retried while the gateway is away)."""
        self.delivered[task] += 1
        deadline = time.monotonic() + 120
        while await self.call(conn, "tasks.started", {"task": task, "force": True}) is None and time.monotonic() < deadline:
            await asyncio.sleep(0.2)

    async def inject(self) -> None:
        """The faults, at fixed fractions of the run."""
        span = self.stop_at - self.started
        await asyncio.sleep(max(0.0, self.started + 0.3 * span - time.monotonic()))
        pid = self.gateway.valkey_pid()
        if pid is None:
            self.faults.append(f"t={self.elapsed():.0f}s valkey-server: no pid found, not killed")
        else:
            os.kill(pid, signal.SIGKILL)
            t0 = time.monotonic()
            await asyncio.sleep(0.2)  # let the gateway notice before asking whether it is ready
            back = await self.gateway.ready_after(t0, 60.0)
            self.faults.append(f"t={t0 - self.started:.0f}s SIGKILL valkey-server (pid {pid}): "
                               + (f"ready again after {back:.1f} s" if back is not None else "NOT ready again within 60 s"))  # fmt: skip
        await asyncio.sleep(max(0.0, self.started + 0.6 * span - time.monotonic()))
        old = self.gateway.proc.pid
        self.gateway.proc.send_signal(signal.SIGKILL)
        await asyncio.to_thread(self.gateway.proc.wait)
        t0 = time.monotonic()
        self.gateway.start()
        back = await self.gateway.ready_after(t0, 90.0)
        self.faults.append(f"t={t0 - self.started:.0f}s SIGKILL gateway (pid {old}), restarted (pid {self.gateway.proc.pid}): "
                           + (f"ready after {back:.1f} s" if back is not None else "NOT ready within 90 s"))  # fmt: skip

    def elapsed(self) -> float:
        return time.monotonic() - self.started

    async def progress(self) -> None:
        last_calls, last_errors = 0, 0
        while time.monotonic() < self.stop_at:
            await asyncio.sleep(min(self.args.every, max(0.1, self.stop_at - time.monotonic())))
            calls, errors = sum(self.calls.values()), sum(sum(c.values()) for c in self.errors.values())
            print(f"  t={self.elapsed():5.0f}s  {(calls - last_calls) / self.args.every:7.0f} calls/s  "
                  f"{errors - last_errors:6d} errors  acked {len(self.acked):7d}  delivered {sum(self.delivered.values()):7d}", flush=True)  # fmt: skip
            last_calls, last_errors = calls, errors

    async def drain(self) -> None:
        """Pop every queue until empty (retrying while the gateway is away), for the audit; while an
        acknowledged task is still missing, wait for redeliveries (up to two redelivery delays)."""
        conn = Connection(self.gateway.port, self.token)
        deadline = time.monotonic() + 120
        patience = time.monotonic() + 2 * REDELIVER_AFTER + 5
        while True:
            for queue in self.queues:
                while time.monotonic() < deadline:
                    data = await self.call(conn, "queues.get_next_task", {"queue": queue})
                    if data is None:
                        continue
                    if not data.get("entry"):
                        break
                    await self.start(conn, data["entry"]["task"])
            if not (self.acked - self.delivered.keys()) or time.monotonic() > min(deadline, patience):
                break
            await asyncio.sleep(1.0)
        conn.close()

    async def run(self) -> None:
        await self.setup()
        self.started = time.monotonic()
        self.stop_at = self.started + self.args.minutes * 60
        faults = asyncio.create_task(self.inject())
        await asyncio.gather(self.progress(), *(self.worker(n) for n in range(self.args.connections)))
        if not faults.done():
            faults.cancel()
        await asyncio.gather(faults, return_exceptions=True)
        if await self.gateway.ready_after(time.monotonic(), 60.0) is None:
            print("the gateway is not ready after the run: the drain will fail", flush=True)
        await self.drain()

    def popped_unanswered(self, lost: set[str]) -> set[str]:
        """The lost tasks Redis records as popped: a pop ran, and its answer died with the call."""
        if not lost:
            return set()
        import redis

        state = json.loads((self.gateway.data_dir / "valkey" / "server.json").read_text())
        client = redis.Redis(port=state["port"], decode_responses=True)
        try:
            found = set()
            for queue in self.queues:
                found |= set(client.hkeys(f"sg:{{q:{queue}}}:popped")) & lost
            return found
        finally:
            client.close()

    def report(self) -> int:
        seconds = self.args.minutes * 60
        total = sum(self.calls.values())
        failed = sum(sum(c.values()) for c in self.errors.values())
        print(f"\nsoak: {seconds:.0f} s, {self.args.connections} connections, gateway started {self.gateway.starts} times")
        print("faults:")
        for line in self.faults:
            print(f"  {line}")
        print(f"calls: {total:,} ({total / seconds:,.0f}/s), {failed:,} failed ({failed / max(total, 1):.2%})")
        for endpoint, n in self.calls.most_common():
            lat = sorted(self.latency[endpoint])
            print(f"  {endpoint:24} {n:9,}   p50 {percentile(lat, 50) * 1e3:7.1f} ms   p99 {percentile(lat, 99) * 1e3:8.1f} ms")
        print("errors by code:" + ("" if self.errors else " none"))
        for key, by_endpoint in sorted(self.errors.items(), key=lambda kv: -sum(kv[1].values())):
            where = ", ".join(f"{e} {n}" for e, n in by_endpoint.most_common())
            print(f"  {' '.join(key):32} {sum(by_endpoint.values()):7,}   ({where})  e.g. {self.first_message[key]!r}")
        lost = self.acked - set(self.delivered)
        popped = self.popped_unanswered(lost)
        twice = {t: n for t, n in self.delivered.items() if n > 1}
        strays = set(self.delivered) - self.acked
        print(f"queues: {len(self.acked):,} enqueues acknowledged, {sum(self.delivered.values()):,} deliveries, "
              f"{len(self.unknown):,} enqueues failed ({len(strays & self.unknown):,} of them delivered all the same)")  # fmt: skip
        print(f"  lost (acknowledged, never delivered): {len(lost)}" + (f"  e.g. {sorted(lost)[:3]}" if lost else ""))
        if lost:
            cut = sum(c["queues.get_next_task"] for k, c in self.errors.items() if k[0] == "connection" and k[1] != "ConnectionRefusedError")
            print(f"    of which {len(popped)} popped in Redis by a get_next_task whose answer never arrived "
                  f"({cut} get_next_task calls were cut off mid-call)")  # fmt: skip
        print(f"  duplicates (delivered more than once): {len(twice)}" + (f"  e.g. {list(twice.items())[:3]}" if twice else ""))
        unexplained = strays - self.unknown
        if unexplained:
            print(f"  delivered without any enqueue call: {len(unexplained)}")
        return 1 if lost or twice or unexplained else 0


def log_summary(log: Path) -> None:
    """The gateway's warnings and errors, counted by message (its log is JSON lines)."""
    found: collections.Counter = collections.Counter()
    for line in log.read_text(errors="replace").splitlines():
        if not line.startswith("{"):
            continue
        try:
            entry = json.loads(line)
        except ValueError:
            continue
        if entry.get("level") in ("warning", "error", "critical"):
            message = re.sub(r"\b[0-9a-f]{32}\b", "<id>", str(entry.get("msg", "")))
            found[(entry["level"], re.sub(r"\bpid \d+|port \d+", lambda m: m[0].split()[0] + " N", message)[:120])] += 1
    print("gateway log warnings/errors:" + ("" if found else " none"))
    for (level, message), n in found.most_common(12):
        print(f"  {level:8} {n:6,}  {message}")


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--minutes", type=float, default=env_float("SOAK_MINUTES", 10.0), help="length of the run (default 10)")
    parser.add_argument("--connections", type=int, default=env_int("SOAK_CONNECTIONS", 16), help="concurrent connections (default 16)")
    parser.add_argument("--every", type=float, default=10.0, help="seconds between progress lines (default 10)")
    parser.add_argument("--keep", action="store_true", help="keep the data directory and the gateway log")
    args = parser.parse_args()
    tmp = Path(tempfile.mkdtemp(prefix="specgate-soak-"))
    gateway = Gateway(tmp / "data", tmp / "gateway.log")
    gateway.start()
    valkey = None
    try:
        if asyncio.run(gateway.ready_after(time.monotonic(), 60.0)) is None:
            raise SystemExit(f"the gateway did not become ready:\n{gateway.log.read_text()[-3000:]}")
        print(f"soak: {args.minutes:g} min against specgate on port {gateway.port} (embedded SQLite + Valkey in {tmp})", flush=True)
        soak = Soak(args, gateway)
        asyncio.run(soak.run())
        code = soak.report()
        valkey = gateway.valkey_pid()
    finally:
        if gateway.proc is not None:
            stop_process(gateway.proc, timeout=30)
    if valkey is not None:  # the gateway stops the Valkey it supervises; say so if one outlived it
        import psutil

        try:
            server = psutil.Process(valkey)
            server.wait(timeout=2.0) if server.status() != psutil.STATUS_ZOMBIE else None
        except psutil.NoSuchProcess:
            pass
        except psutil.TimeoutExpired:
            print(f"valkey-server (pid {valkey}) outlived the gateway; stopping it")
            server.terminate()
    log_summary(gateway.log)
    if args.keep:
        print(f"kept {tmp}")
    else:
        import shutil

        shutil.rmtree(tmp, ignore_errors=True)
    return code


if __name__ == "__main__":
    sys.exit(main())
