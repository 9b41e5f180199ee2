"""HTTP throughput and latency of specgate against a bare Starlette ceiling, measured in one run.

    .venv/bin/python bench/http.py                          # about 2.5 minutes
    .venv/bin/python bench/http.py --seconds 3 --concurrency 16,64 --only get_by_id,get_all
    .venv/bin/python bench/http.py --rss-tasks 100000       # then RSS and reads with 100k tasks stored
    .venv/bin/python bench/http.py --profile                # plus py-spy profiles of get_by_id / get_all

Two servers run as subprocesses on loopback, both under uvicorn (uvloop, httptools) with one worker:

- the ceiling: a bare Starlette app with one JSON POST route (parse the body, answer a small JSON);
- specgate (``specgate serve``) with its embedded backends (SQLite in a temporary data dir, embedded
  Valkey), ``SPECGATE_ENV=prod`` (no response validation) and the access log as configured
  (``--access-log``, on by default as in production; written to a file in the temporary dir).

Load comes from a keep-alive HTTP/1.1 client written here on raw asyncio sockets under uvloop, in
``--clients`` processes, at each concurrency (connections in total; a closed loop, as wrk's). wrk is
not installed on the benchmark machine, so both servers are driven by this client. Each request is
timed from write to the last byte read. It authenticates as the ClearML SDK does: ``auth.login`` with
Basic, then Bearer. The ceiling runs first and again last; ratios divide by the mean of the two.

Workloads, each a ratio to the ceiling measured in the same run at the same concurrency:

- ``get_by_id``: ``tasks.get_by_id`` of a random seeded task (~2 KB task: script, hyperparams, config);
- ``get_all``: ``tasks.get_all`` as ``Task.get_tasks`` sends it: a page of 50 of the seeded tasks with
  ``only_fields``, ``order_by -last_update`` and ``system_tags: [-archived]``;
- ``create``: ``tasks.create`` with the same ~2 KB body;
- ``pair``: ``tasks.enqueue`` then ``queues.get_next_task`` of the same task (each connection has a
  task and a queue of its own); counted in pairs, also as a ratio to ``redis_pair``;
- ``redis_pair``: raw redis-py ``LPUSH`` + ``LMOVE`` pairs against specgate's own embedded Valkey,
  from the same client processes at the same concurrency.

Besides client-side rates it prints the server's CPU time per request (its process plus children,
i.e. the embedded Valkey), which does not depend on how fast the load generator is: when the client
processes are near a full core each, the rates are client-bound and the CPU ratio is the fairer one.
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
import shutil  # noqa: E402
import subprocess  # noqa: E402
import tempfile  # noqa: E402
import time  # noqa: E402
from dataclasses import dataclass, field  # noqa: E402
from pathlib import Path  # noqa: E402

from benchlib import (  # noqa: E402
    BIN,
    env_float,
    env_int,
    env_list,
    free_port,
    int_list,
    percentile,
    stop_process,
    task_create_body,
    verdict,
    wait_for_port,
)

ACCESS_KEY = "BENCHACCESSKEY00000000000001"
SECRET_KEY = "bench-secret-key-0123456789-abcdefghijklmnopqrstuvwxyz"
VERSION = "2.23"
WORKLOADS = ["ceiling", "get_by_id", "get_all", "create", "pair", "redis_pair"]
GET_ALL_FIELDS = ["id", "name", "status", "type", "project", "last_update", "tags"]


# --- the ceiling server (run as: http.py --role ceiling --port P) ----------------------------


def serve_ceiling(port: int) -> None:
    import uvicorn
    from starlette.applications import Starlette
    from starlette.requests import Request
    from starlette.responses import JSONResponse
    from starlette.routing import Route

    async def echo(request: Request) -> JSONResponse:
        data = await request.json()
        return JSONResponse({"meta": {"result_code": 200}, "data": {"task": data.get("task")}})

    app = Starlette(routes=[Route("/echo", echo, methods=["POST"])])
    uvicorn.run(app, host="127.0.0.1", port=port, log_level="warning", access_log=False)


# --- the load generator (run as: http.py --role client, config as one JSON line on stdin) -----


class Conn(asyncio.Protocol):
    """One keep-alive HTTP/1.1 connection, one request in flight; responses need Content-Length."""

    def __init__(self, loop: asyncio.AbstractEventLoop):
        self.loop = loop
        self.buf = bytearray()
        self.fut: asyncio.Future | None = None
        self.need = -1
        self.body_at = 0
        self.status = 0
        self.transport: asyncio.Transport | None = None

    def connection_made(self, transport) -> None:
        self.transport = transport

    def data_received(self, data: bytes) -> None:
        buf = self.buf
        buf += data
        if self.need < 0:
            end = buf.find(b"\r\n\r\n")
            if end < 0:
                return
            head = bytes(buf[:end]).lower()
            self.status = int(head[9:12])
            at = head.find(b"\r\ncontent-length:")
            if at < 0:
                self._fail(RuntimeError("response without content-length"))
                return
            stop = head.find(b"\r\n", at + 2)
            self.body_at = end + 4
            self.need = self.body_at + int(head[at + 17 : stop if stop >= 0 else len(head)])
        if len(buf) >= self.need:
            body = bytes(buf[self.body_at : self.need])
            del buf[: self.need]
            self.need = -1
            fut, self.fut = self.fut, None
            if fut is not None and not fut.done():
                fut.set_result((self.status, body))

    def _fail(self, exc: BaseException) -> None:
        fut, self.fut = self.fut, None
        if fut is not None and not fut.done():
            fut.set_exception(exc)

    def connection_lost(self, exc) -> None:
        self._fail(ConnectionError(f"connection lost: {exc}"))

    def request(self, data: bytes) -> asyncio.Future:
        self.fut = self.loop.create_future()
        self.transport.write(data)
        return self.fut


def http_request(path: str, body: dict, token: str | None) -> bytes:
    raw = json.dumps(body, separators=(",", ":")).encode()
    auth = f"Authorization: Bearer {token}\r\n" if token else ""
    head = (
        f"POST {path} HTTP/1.1\r\nHost: 127.0.0.1\r\nUser-Agent: clearml-bench\r\nAccept: */*\r\n{auth}"
        f"Content-Type: application/json\r\nContent-Length: {len(raw)}\r\n\r\n"
    )
    return head.encode() + raw


def build_cycles(cfg: dict, conns: int) -> list[tuple[list, int]]:
    """Per connection, (a pool of request cycles, where in it to start); a cycle is a list of
    (request bytes, a fragment the response body must hold, or None)."""
    kind, token, rnd = cfg["kind"], cfg.get("token"), random.Random(cfg["seed"])
    ids = cfg.get("ids", [])
    if kind == "ceiling":
        pool = [[(http_request("/echo", {"task": i}, None), None)] for i in ids]
    elif kind == "get_by_id":
        pool = [[(http_request(f"/v{VERSION}/tasks.get_by_id", {"task": i}, token), None)] for i in ids]
    elif kind == "get_all":
        pages = max(1, min(10, len(ids) // 50))
        pool = [
            [(http_request(f"/v{VERSION}/tasks.get_all", {
                "only_fields": GET_ALL_FIELDS, "order_by": ["-last_update"], "system_tags": ["-archived"],
                "page": page, "page_size": 50}, token), b'"tasks":[{')]
            for page in range(pages)
        ]  # fmt: skip
    elif kind == "create":
        pool = [
            [(http_request(f"/v{VERSION}/tasks.create", task_create_body(f"bench create {cfg['seed']}-{k}", None), token), None)]
            for k in range(256)
        ]
    elif kind == "pair":
        return [
            ([[(http_request(f"/v{VERSION}/tasks.enqueue", {"task": t, "queue": q}, token), None),
               (http_request(f"/v{VERSION}/queues.get_next_task", {"queue": q}, token), f'"task":"{t}"'.encode())]], 0)
            for t, q in cfg["pairs"]
        ]  # fmt: skip
    else:
        raise ValueError(kind)
    rnd.shuffle(pool)
    return [(pool, rnd.randrange(len(pool))) for _ in range(conns)]


async def client_main(cfg: dict) -> dict:
    loop = asyncio.get_running_loop()
    conns = cfg["conns"]
    results = {"n": 0, "errors": 0, "lat": [], "first_error": ""}

    if cfg["kind"] == "redis_pair":
        import redis.asyncio as redis

        client = redis.Redis.from_url(cfg["redis_url"], decode_responses=True)
        keys = [(f"bench:{cfg['seed']}:{i}:list", f"bench:{cfg['seed']}:{i}:processing") for i in range(conns)]
        await asyncio.gather(*(client.ping() for _ in range(conns)))  # open the pool's connections

        async def one_cycle(i: int, n: int) -> bool:
            lst, processing = keys[i]
            await client.lpush(lst, "t")
            ok = await client.lmove(lst, processing, "RIGHT", "LEFT") == "t"
            if n % 1000 == 999:
                await client.delete(processing)
            return ok

    else:
        cycles = build_cycles(cfg, conns)
        protos: list[Conn] = []
        for _ in range(conns):
            _, proto = await loop.create_connection(lambda: Conn(loop), "127.0.0.1", cfg["port"])
            protos.append(proto)

        async def one_cycle(i: int, n: int) -> bool:
            ok = True
            pool, offset = cycles[i]
            for request, needle in pool[(offset + n) % len(pool)]:
                status, body = await protos[i].request(request)
                if status != 200 or (needle is not None and needle not in body):
                    if not results["first_error"]:
                        results["first_error"] = f"{status} {body[:300]!r}"
                    ok = False
            return ok

    print("ready", flush=True)
    go = sys.stdin.readline().split()
    start, warm, seconds = float(go[1]), cfg["warmup"], cfg["seconds"]
    record_from, stop = start + warm, start + warm + seconds
    cpu = {}

    async def worker(i: int) -> None:
        now = time.monotonic()
        if now < start:
            await asyncio.sleep(start - now)
        n, lat = 0, results["lat"]
        while True:
            t0 = time.monotonic()
            if t0 >= stop:
                break
            if "t0" not in cpu and t0 >= record_from:
                cpu["t0"] = time.process_time()
            try:
                ok = await one_cycle(i, n)
            except Exception as e:  # a dropped connection ends this worker, counted once
                results["errors"] += 1
                results["first_error"] = results["first_error"] or repr(e)
                return
            t1 = time.monotonic()
            if t0 >= record_from:
                results["n"] += 1
                lat.append(round((t1 - t0) * 1e6))
                if not ok:
                    results["errors"] += 1
            n += 1

    await asyncio.gather(*(worker(i) for i in range(conns)))
    results["cpu"] = time.process_time() - cpu.get("t0", time.process_time())
    if cfg["kind"] == "redis_pair":
        for pair in keys:
            await client.delete(*pair)
        await client.aclose()
    else:
        for p in protos:
            p.transport.close()
    return results


def run_client_role() -> None:
    cfg = json.loads(sys.stdin.readline())
    if cfg.get("cpus"):
        os.sched_setaffinity(0, set(cfg["cpus"]))
    try:
        import uvloop

        result = uvloop.run(client_main(cfg))
    except ImportError:  # pragma: no cover
        result = asyncio.run(client_main(cfg))
    Path(cfg["out"]).write_text(json.dumps(result))


# --- the driver ------------------------------------------------------------------------------


@dataclass
class Server:
    name: str
    proc: subprocess.Popen
    port: int
    data_dir: Path | None = None
    log: Path | None = None

    def cpu_seconds(self) -> float:
        import psutil

        try:
            p = psutil.Process(self.proc.pid)
            total = sum(p.cpu_times()[:2])
            for child in p.children(recursive=True):
                try:
                    total += sum(child.cpu_times()[:2])
                except psutil.NoSuchProcess:
                    pass
            return total
        except psutil.NoSuchProcess:
            return float("nan")

    def rss_mb(self) -> tuple[float, float]:
        """(the worker's RSS, its children's RSS) in MiB."""
        import psutil

        p = psutil.Process(self.proc.pid)
        kids = sum(c.memory_info().rss for c in p.children(recursive=True))
        return p.memory_info().rss / 2**20, kids / 2**20


@dataclass
class Result:
    workload: str
    concurrency: int
    rate: float
    p50_ms: float
    p99_ms: float
    errors: int
    server_cpu_us: float  # server CPU per cycle (request or pair)
    client_cpu: float  # client CPU, in cores, over the window
    first_error: str = ""
    extra: dict = field(default_factory=dict)


class Bench:
    def __init__(self, args: argparse.Namespace, tmp: Path):
        self.args, self.tmp = args, tmp
        self.servers: dict[str, Server] = {}
        self.token = ""
        self.ids: list[str] = []
        self.pairs: list[tuple[str, str]] = []
        self.redis_url = ""
        self.ncpu = os.cpu_count() or 1
        pin = args.pin and self.ncpu >= 2
        self.server_cpus = set(range(self.ncpu - 1)) if pin else None
        self.client_cpus = [self.ncpu - 1] if pin else None

    # servers

    def start_ceiling(self) -> Server:
        port = free_port()
        proc = subprocess.Popen([sys.executable, __file__, "--role", "ceiling", "--port", str(port)],
                                stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)  # fmt: skip
        if self.server_cpus:
            os.sched_setaffinity(proc.pid, self.server_cpus)
        server = Server("ceiling", proc, port)
        self.servers["ceiling"] = server
        wait_for_port(port, proc, what="the Starlette ceiling")
        return server

    def start_specgate(self, data_dir: Path) -> Server:
        port = free_port()
        env = {k: v for k, v in os.environ.items() if not k.startswith("SPECGATE_")}
        env.update({
            "SPECGATE_DATA_DIR": str(data_dir), "SPECGATE_ENV": "prod",
            "SPECGATE_ACCESS_KEY": ACCESS_KEY, "SPECGATE_SECRET_KEY": SECRET_KEY,
            "SPECGATE_ACCESS_LOG": "true" if self.args.access_log == "on" else "false",
            "SPECGATE_SHUTDOWN_TIMEOUT": "5",
        })  # fmt: skip
        log = self.tmp / f"specgate-{port}.log"
        with open(log, "wb") as out:
            proc = subprocess.Popen([str(BIN / "specgate"), "serve", "--host", "127.0.0.1", "--port", str(port)],
                                    stdin=subprocess.DEVNULL, stdout=out, stderr=out, env=env)  # fmt: skip
        if self.server_cpus:
            os.sched_setaffinity(proc.pid, self.server_cpus)
        server = Server("specgate", proc, port, data_dir, log)
        self.servers["specgate"] = server
        try:
            wait_for_port(port, proc, timeout=60, what="specgate")
        except SystemExit:
            print(log.read_text()[-3000:], file=sys.stderr)
            raise
        state = json.loads((data_dir / "valkey" / "server.json").read_text())
        self.redis_url = f"redis://127.0.0.1:{state['port']}/0"
        return server

    def stop_all(self) -> None:
        for server in self.servers.values():
            stop_process(server.proc, timeout=20)
        self.servers.clear()

    # set-up through the API, as the SDK does it

    def login(self) -> None:
        import httpx

        url = f"http://127.0.0.1:{self.servers['specgate'].port}"
        basic = base64.b64encode(f"{ACCESS_KEY}:{SECRET_KEY}".encode()).decode()
        r = httpx.get(f"{url}/auth.login", headers={"Authorization": f"Basic {basic}"}, timeout=30)
        r.raise_for_status()
        self.token = r.json()["data"]["token"]

    async def _calls(self, endpoint: str, bodies: list[dict], concurrency: int = 16) -> list[dict]:
        """Set-up calls over this script's own keep-alive client (httpx manages ~200 calls/s here)."""
        loop = asyncio.get_running_loop()
        path = f"/v{VERSION}/{endpoint}"
        out: list[dict] = [{}] * len(bodies)
        todo = iter(range(len(bodies)))

        async def worker() -> None:
            transport, proto = await loop.create_connection(lambda: Conn(loop), "127.0.0.1", self.servers["specgate"].port)
            try:
                for i in todo:
                    status, raw = await proto.request(http_request(path, bodies[i], self.token))
                    data = json.loads(raw)
                    if status != 200:
                        raise SystemExit(f"{endpoint} failed during set-up: {data['meta']['result_msg']}")
                    out[i] = data["data"]
            finally:
                transport.close()

        await asyncio.gather(*(worker() for _ in range(concurrency)))
        return out

    def seed(self) -> None:
        n, width = self.args.seed_tasks, max(self.args.concurrency)
        start = time.perf_counter()
        bodies = [task_create_body(f"seeded task {i:06d}", None) for i in range(n)]
        for body, i in zip(bodies, range(n)):
            body["tags"] = ["bench", random.Random(i).choice(["red", "green", "blue"])]
        self.ids = [d["id"] for d in asyncio.run(self._calls("tasks.create", bodies))]
        elapsed = time.perf_counter() - start
        run = random.getrandbits(32)
        queues = asyncio.run(self._calls("queues.create", [{"name": f"bench-{run:08x}-{i}"} for i in range(width)]))
        tasks = asyncio.run(self._calls("tasks.create", [task_create_body(f"queued task {i}", None) for i in range(width)]))
        self.pairs = [(t["id"], q["id"]) for t, q in zip(tasks, queues)]
        print(f"seeded {n:,} tasks through tasks.create in {elapsed:.1f} s ({n / elapsed:,.0f}/s at 16 connections), "
              f"and {width} queues with a task each", flush=True)  # fmt: skip

    # one measured run

    def run(self, workload: str, concurrency: int, seconds: float | None = None, profile: Path | None = None) -> Result:
        args = self.args
        seconds = args.seconds if seconds is None else seconds
        server = self.servers["ceiling" if workload == "ceiling" else "specgate"]
        clients = max(1, min(args.clients, concurrency))
        shares = [concurrency // clients + (1 if k < concurrency % clients else 0) for k in range(clients)]
        procs = []
        offset = 0
        for k, conns in enumerate(shares):
            cfg = {
                "kind": workload, "conns": conns, "port": server.port, "token": self.token, "seed": random.getrandbits(32),
                "ids": self.ids, "pairs": self.pairs[offset : offset + conns], "redis_url": self.redis_url,
                "warmup": args.warmup, "seconds": seconds, "cpus": self.client_cpus,
                "out": str(self.tmp / f"client-{k}.json"),
            }  # fmt: skip
            offset += conns
            proc = subprocess.Popen([sys.executable, __file__, "--role", "client"], stdin=subprocess.PIPE,
                                    stdout=subprocess.PIPE, text=True)  # fmt: skip
            proc.stdin.write(json.dumps(cfg) + "\n")
            proc.stdin.flush()
            procs.append(proc)
        for proc in procs:
            line = proc.stdout.readline()
            if line.strip() != "ready":
                for p in procs:
                    stop_process(p)
                raise SystemExit(f"a client process failed to start ({line!r})")
        start = time.monotonic() + 0.05
        for proc in procs:
            proc.stdin.write(f"go {start}\n")
            proc.stdin.flush()
        spy = None
        time.sleep(max(0.0, start + args.warmup - time.monotonic()))
        cpu0, t0 = server.cpu_seconds(), time.monotonic()
        if profile is not None:
            spy = subprocess.Popen([shutil.which("py-spy") or str(BIN / "py-spy"), "record", "--pid", str(server.proc.pid),
                                    "--duration", str(max(1, int(seconds) - 1)), "--rate", "250", "--nonblocking",
                                    "--format", "raw", "--output", str(profile)],
                                   stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)  # fmt: skip
        time.sleep(max(0.0, start + args.warmup + seconds - time.monotonic()))
        cpu1, t1 = server.cpu_seconds(), time.monotonic()
        results = []
        for k, proc in enumerate(procs):
            proc.stdin.close()
            proc.stdout.close()
            if proc.wait(timeout=120) != 0:
                raise SystemExit(f"a client process failed (code {proc.returncode})")
            out = self.tmp / f"client-{k}.json"
            results.append(json.loads(out.read_text()))
            out.unlink()
        if spy is not None:
            spy.wait(timeout=60)
        n = sum(r["n"] for r in results)
        lat = sorted(x for r in results for x in r["lat"])
        return Result(
            workload, concurrency, n / seconds,
            percentile(lat, 50) / 1000, percentile(lat, 99) / 1000,
            sum(r["errors"] for r in results),
            (cpu1 - cpu0) / max(n * (t1 - t0) / seconds, 1) * 1e6,
            sum(r["cpu"] for r in results) / seconds,
            next((r["first_error"] for r in results if r["first_error"]), ""),
        )  # fmt: skip


# --- reporting -------------------------------------------------------------------------------

LABELS = {
    "ceiling": "ceiling: Starlette echo",
    "ceiling_end": "ceiling again, at the end",
    "get_by_id": "tasks.get_by_id",
    "get_all": "tasks.get_all, page of 50",
    "create": "tasks.create (2 KB)",
    "pair": "enqueue + get_next_task",
    "redis_pair": "raw redis LPUSH+LMOVE",
}


def reference_ceiling(results: list[Result], concurrency: int) -> Result:
    """The ceiling the ratios divide by: the mean of its runs at the start and at the end (the machine
    may be shared; one run alone has drifted by 20-30% here)."""
    runs = [r for r in results if r.concurrency == concurrency and r.workload in ("ceiling", "ceiling_end")]
    mean = Result("ceiling", concurrency, sum(r.rate for r in runs) / len(runs), 0.0, 0.0, 0,
                  sum(r.server_cpu_us for r in runs) / len(runs), 0.0)  # fmt: skip
    mean.extra["runs"] = runs
    return mean


def print_table(results: list[Result], concurrency: int, ceiling: Result) -> None:
    print(f"\nconcurrency {concurrency} (connections); ratio = rate / ceiling rate, CPU ratio = ceiling CPU per "
          "request / server CPU per request (or pair); the ceiling is the mean of its two runs")  # fmt: skip
    head = (f"  {'workload':<27} {'rate/s':>9} {'p50 ms':>7} {'p99 ms':>7} {'ratio':>6}   "
            f"{'srv CPU us':>10} {'CPU ratio':>9} {'client CPU':>10} {'errors':>6}")  # fmt: skip
    print(head)
    print("  " + "-" * (len(head) - 2))
    for r in results:
        if r.concurrency != concurrency:
            continue
        unit = " pairs" if r.workload in ("pair", "redis_pair") else ""
        ratio = r.rate / ceiling.rate if ceiling.rate else float("nan")
        cpu_ratio = ceiling.server_cpu_us / r.server_cpu_us if r.server_cpu_us else float("nan")
        print(f"  {LABELS[r.workload]:<27} {r.rate:>9,.0f} {r.p50_ms:>7.2f} {r.p99_ms:>7.2f} {ratio:>6.2f}   "
              f"{r.server_cpu_us:>10,.0f} {cpu_ratio:>9.2f} {r.client_cpu:>9.0%}c {r.errors:>6}{unit}")  # fmt: skip
        if r.first_error:
            print(f"      first error: {r.first_error}")


def top_frames(raw: Path, limit: int = 18) -> None:
    """Self and inclusive sample shares per function from py-spy's collapsed stacks.

    py-spy --nonblocking (which does not pause the server) sometimes reads a truncated stack: self time
    counts every sample, inclusive time only the samples whose stack reaches the program's entry."""
    frame_re = re.compile(r"^(.*) \((.*?)(?::\d+)?\)$")
    self_count: collections.Counter = collections.Counter()
    incl: collections.Counter = collections.Counter()
    total = whole = 0
    for line in raw.read_text().splitlines():
        stack, _, count = line.rpartition(" ")
        if not stack or not count.isdigit():
            continue
        n = int(count)
        total += n
        frames = []
        for f in stack.split(";"):
            m = frame_re.match(f)
            frames.append(f"{m.group(1)} ({_short(m.group(2))})" if m else f)
        self_count[frames[-1]] += n
        if frames[0].startswith("<module>"):
            whole += n
            for name in set(frames):
                incl[name] += n
    if not total:
        print("    (no samples)")
        return
    print(f"    {total} samples of the busy worker thread; self time (where the CPU is):")
    for name, n in self_count.most_common(limit):
        print(f"      {n / total:6.1%}  {name}")
    print(f"    inclusive time, over the {whole / total:.0%} of samples with a whole stack:")
    shown = 0
    for name, n in incl.most_common():
        if any(k in name for k in ("specgate/", "logging/", "copy.py", "uvicorn/protocols")) and not name.startswith(("<module>", "main (", "run_serve")):
            print(f"      {n / max(whole, 1):6.1%}  {name}")
            shown += 1
            if shown >= limit:
                break


def _short(path: str) -> str:
    for marker in ("site-packages/", "/src/", "/lib/python3.11/"):
        if marker in path:
            return path.split(marker, 1)[1]
    return path


# --- RSS with many tasks stored ----------------------------------------------------------------


def top_up_tasks(data_dir: Path, total: int, ids: list[str]) -> list[str]:
    """Clone stored task rows straight into the (stopped) gateway's SQLite file until ``total`` tasks
    exist: 100k tasks through tasks.create would take minutes. Each clone is a real stored task (written
    by tasks.create) with a new id and name."""
    import sqlite3
    import uuid

    import orjson

    db = sqlite3.connect(str(data_dir / "specgate.db"), isolation_level=None)
    try:
        have = db.execute("SELECT count(*) FROM tasks").fetchone()[0]
        row = db.execute("SELECT company, doc FROM tasks WHERE id = ?", (ids[0],)).fetchone()
        company, template = row[0], orjson.loads(row[1])
        new_ids = []
        db.execute("BEGIN")
        for start in range(have, total, 10_000):
            rows = []
            for k in range(start, min(total, start + 10_000)):
                doc = dict(template, id=uuid.uuid4().hex, name=f"cloned task {k:07d}", rev=1)
                new_ids.append(doc["id"])
                rows.append((doc["id"], company, orjson.dumps(doc).decode()))
            db.executemany("INSERT INTO tasks (id, company, rev, doc) VALUES (?, ?, 1, ?)", rows)
        db.execute("COMMIT")
        db.execute("PRAGMA optimize")
    finally:
        db.close()
    return ids + new_ids


# --- main ----------------------------------------------------------------------------------------


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--role", choices=["driver", "ceiling", "client"], default="driver", help=argparse.SUPPRESS)
    parser.add_argument("--port", type=int, help=argparse.SUPPRESS)
    parser.add_argument("--seconds", type=float, default=env_float("BENCH_HTTP_SECONDS", 5.0),
                        help="measured seconds per run (env BENCH_HTTP_SECONDS, default 5)")
    parser.add_argument("--warmup", type=float, default=env_float("BENCH_HTTP_WARMUP", 1.0),
                        help="unmeasured seconds first (env BENCH_HTTP_WARMUP, default 1)")
    parser.add_argument("--concurrency", type=int_list, default=env_list("BENCH_HTTP_CONCURRENCY", [16, 64]),
                        help="comma-separated connection counts (env BENCH_HTTP_CONCURRENCY, default 16,64)")
    parser.add_argument("--clients", type=int, default=env_int("BENCH_HTTP_CLIENTS", 2),
                        help="load generator processes (env BENCH_HTTP_CLIENTS, default 2)")
    parser.add_argument("--seed-tasks", type=int, default=env_int("BENCH_HTTP_SEED_TASKS", 1000),
                        help="tasks created before measuring (env BENCH_HTTP_SEED_TASKS, default 1000)")
    parser.add_argument("--only", default=os.environ.get("BENCH_HTTP_ONLY", ""),
                        help=f"comma-separated subset of {','.join(WORKLOADS[1:])} (the ceiling always runs)")
    parser.add_argument("--access-log", choices=["on", "off"], default=os.environ.get("BENCH_HTTP_ACCESS_LOG", "on"),
                        help="specgate's per-call access log (SPECGATE_ACCESS_LOG; default on, as in production)")
    parser.add_argument("--pin", action="store_true", help="pin the servers to all CPUs but the last, the clients to the last")
    parser.add_argument("--rss-tasks", type=int, default=env_int("BENCH_HTTP_RSS_TASKS", 0),
                        help="afterwards, store this many tasks, restart specgate, read, and print its RSS")
    parser.add_argument("--profile", nargs="?", const="get_by_id,get_all", default="",
                        help="afterwards, profile these workloads (default get_by_id,get_all) at the highest "
                             "concurrency with py-spy (pip install py-spy); BENCH_PROFILE_DIR keeps the raw stacks")
    args = parser.parse_args()  # fmt: skip

    if args.role == "ceiling":
        serve_ceiling(args.port)
        return 0
    if args.role == "client":
        run_client_role()
        return 0

    chosen = [w for w in WORKLOADS[1:] if not args.only or w in args.only.split(",")]
    load = os.getloadavg()
    print(f"bench/http.py: {os.cpu_count()} CPUs, load average {load[0]:.1f} at start"
          f"{' (the machine is busy: expect noise)' if load[0] > 1.0 else ''}")  # fmt: skip
    print(f"load generator: raw asyncio sockets + uvloop, {args.clients} process(es), keep-alive; "
          f"{args.warmup:g} s warm-up + {args.seconds:g} s per run; specgate access log {args.access_log}"
          f"{'; servers and clients pinned' if args.pin else ''}")  # fmt: skip

    with tempfile.TemporaryDirectory(prefix="specgate-bench-http-") as tmp_name:
        tmp = Path(tmp_name)
        bench = Bench(args, tmp)
        results: list[Result] = []
        try:
            bench.start_ceiling()
            bench.start_specgate(tmp / "data")
            bench.login()
            bench.seed()
            order = ["ceiling", *chosen]
            for workload in order:
                for c in args.concurrency:
                    r = bench.run(workload, c)
                    results.append(r)
                    print(f"  {LABELS[workload]:<27} c={c:<3} {r.rate:>9,.0f}/s  p50 {r.p50_ms:6.2f} ms  "
                          f"p99 {r.p99_ms:6.2f} ms  errors {r.errors}", flush=True)  # fmt: skip
            for c in args.concurrency:
                r = bench.run("ceiling", c)
                r.workload = "ceiling_end"
                results.append(r)
                print(f"  {LABELS['ceiling_end']:<27} c={c:<3} {r.rate:>9,.0f}/s", flush=True)
            worker_rss, kids_rss = bench.servers["specgate"].rss_mb()
            ceilings = {c: reference_ceiling(results, c) for c in args.concurrency}
            for c in args.concurrency:
                print_table(results, c, ceilings[c])
            tasks_now = len(bench.ids) + sum(r.rate * args.seconds for r in results if r.workload == "create")
            print(f"\nspecgate worker RSS {worker_rss:.0f} MiB (embedded Valkey {kids_rss:.0f} MiB) "
                  f"with ~{tasks_now:,.0f} tasks stored")  # fmt: skip
            report_targets(results, ceilings, args)

            if args.profile:
                profile(bench, args, tmp)
            if args.rss_tasks:
                rss_phase(bench, args, tmp)
        finally:
            bench.stop_all()
    load = os.getloadavg()
    print(f"\nload average {load[0]:.1f} at the end")
    return 0


def report_targets(results: list[Result], ceilings: dict[int, Result], args: argparse.Namespace) -> None:
    by = {(r.workload, r.concurrency): r for r in results}
    print("\nissue 8 targets (rate ratios; the CPU ratio in brackets)")
    for c in args.concurrency:
        ceiling = ceilings[c]
        runs = ceiling.extra["runs"]
        print(f"  c={c}: ceiling {' then '.join(f'{r.rate:,.0f}/s' for r in runs)} (start, end: mean {ceiling.rate:,.0f}/s); "
              f"client CPU {max(r.client_cpu for r in runs):.0%} of a core at most")  # fmt: skip
        for workload, target in (("get_by_id", 0.6), ("get_all", 0.15)):
            r = by.get((workload, c))
            if r:
                ratio, cpu = r.rate / ceiling.rate, ceiling.server_cpu_us / r.server_cpu_us
                print(f"    {LABELS[workload]:<27} {ratio:5.2f} of the ceiling ({cpu:4.2f})  target >= {target}: "
                      f"{verdict(ratio >= target)}")  # fmt: skip
        pair, raw = by.get(("pair", c)), by.get(("redis_pair", c))
        if pair and raw:
            print(f"    {LABELS['pair']:<27} {pair.rate / raw.rate:5.2f} of raw redis pairs/s        "
                  f"target >= 0.3: {verdict(pair.rate / raw.rate >= 0.3)}  (two bare ceiling calls a pair: "
                  f"{ceiling.rate / 2 / raw.rate:.2f})")  # fmt: skip
    r = by.get(("get_by_id", 64))
    if r:
        own = ", ".join(f"{c.p99_ms:.1f}" for c in ceilings[64].extra["runs"]) if 64 in ceilings else ""
        own = f" (the ceiling's own: {own} ms)" if own else ""
        print(f"  tasks.get_by_id p99 at 64 connections: {r.p99_ms:.1f} ms  target < 20 ms: {verdict(r.p99_ms < 20)}{own}")


def profile(bench: Bench, args: argparse.Namespace, tmp: Path) -> None:
    if not (shutil.which("py-spy") or (BIN / "py-spy").exists()):
        print("\n--profile: py-spy not found (pip install py-spy into the venv)")
        return
    c = max(args.concurrency)
    for workload in args.profile.split(","):
        out = Path(os.environ.get("BENCH_PROFILE_DIR", tmp)) / f"py-spy-{workload}.txt"
        out.parent.mkdir(parents=True, exist_ok=True)
        r = bench.run(workload, c, seconds=max(args.seconds, 6), profile=out)
        kept = f", {out}" if os.environ.get("BENCH_PROFILE_DIR") else " (set BENCH_PROFILE_DIR to keep the stacks)"
        print(f"\nprofile of {LABELS[workload]} at c={c} ({r.rate:,.0f}/s under py-spy --nonblocking){kept}:")
        if out.exists():
            top_frames(out)
        else:
            print("    py-spy wrote nothing (ptrace not permitted?)")


def rss_phase(bench: Bench, args: argparse.Namespace, tmp: Path) -> None:
    server = bench.servers.pop("specgate")
    stop_process(server.proc, timeout=30)
    start = time.perf_counter()
    all_ids = top_up_tasks(server.data_dir, args.rss_tasks, bench.ids)
    print(f"\nstored {args.rss_tasks:,} tasks (clones of a stored task) in {time.perf_counter() - start:.1f} s; "
          "restarting specgate on that data dir")  # fmt: skip
    bench.start_specgate(server.data_dir)
    bench.login()
    rss0, _ = bench.servers["specgate"].rss_mb()
    bench.ids = all_ids
    c = max(args.concurrency)
    for workload in ("get_by_id", "get_all"):
        r = bench.run(workload, c)
        print(f"  {LABELS[workload]:<27} c={c:<3} {r.rate:>9,.0f}/s  p50 {r.p50_ms:6.2f} ms  p99 {r.p99_ms:6.2f} ms  "
              f"errors {r.errors}", flush=True)  # fmt: skip
        if r.first_error:
            print(f"      first error: {r.first_error}")
    rss, kids = bench.servers["specgate"].rss_mb()
    print(f"  specgate worker RSS {rss0:.0f} MiB after start, {rss:.0f} MiB after the reads, with {args.rss_tasks:,} tasks "
          f"(Valkey {kids:.0f} MiB)  target < 150 MB: {verdict(rss * 2**20 < 150e6)}")  # fmt: skip


if __name__ == "__main__":
    sys.exit(main())
