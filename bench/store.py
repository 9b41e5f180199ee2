"""Document-store throughput: the SQLite and MongoDB adapters (MongoDB over an nx-27017 started here,
or a real server with --mongo-url), plus, for MongoDB, the same operations issued directly with
PyMongo, to show what the adapter layer costs.

    .venv/bin/python bench/store.py            # 10k documents
    .venv/bin/python bench/store.py --large    # 100k documents

Each operation runs sequentially (one await at a time), so rates are per-connection latencies
inverted, not server capacity; each measurement stops early after a time budget (nx-27017 answers the
adapter's ``$and`` queries in a slow Python path, see ``specgate.adapters.mongo._scoped``).
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import random
import socket
import subprocess
import sys
import tempfile
import time
import uuid
from pathlib import Path
from typing import Any, Awaitable, Callable

from pymongo import AsyncMongoClient

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT / "src"))

from specgate.adapters.mongo import MongoStore  # noqa: E402
from specgate.adapters.ports import And, Eq, In, Index  # noqa: E402
from specgate.adapters.sqlite import SqliteStore  # noqa: E402

COMPANY = "c1"
STATUSES = ["created", "queued", "in_progress", "stopped", "completed", "failed"]
PROJECTS = [f"p{i:02d}" for i in range(20)]
TAGS = ["red", "green", "blue", "gpu", "cpu", "nightly", "release"]
PAGE_FIELDS = ("name", "status", "project", "created", "tags")
INDEXES = [
    Index(("company", "name"), unique=True),
    Index(("status",)),
    Index(("project",)),
    Index(("created",)),
]


def make_docs(n: int, seed: int = 7) -> list[dict[str, Any]]:
    rnd = random.Random(seed)
    docs = []
    for i in range(n):
        docs.append(
            {
                "id": uuid.UUID(int=rnd.getrandbits(128)).hex,
                "company": COMPANY if i % 10 else "",
                "name": f"task {i}",
                "status": rnd.choice(STATUSES),
                "project": rnd.choice(PROJECTS),
                "tags": rnd.sample(TAGS, rnd.randint(0, 3)),
                "created": f"2026-{1 + i % 12:02d}-{1 + i % 28:02d}T{i % 24:02d}:{i % 60:02d}:00.{i % 1000000:06d}+00:00",
                "active": bool(i % 2),
                "execution": {"queue": f"q{i % 4}", "priority": i % 5, "parameters": {"lr": 0.001 * (i % 10), "epochs": 10}},
                "script": {"repository": "https://example.invalid/repo.git", "entry_point": "train.py", "branch": "main"},
                "models": [{"name": "input", "model": f"m{i % 50}"}, {"name": "output", "model": f"m{i % 51}"}],
                "comment": "x" * 200,
            }
        )
    return docs


def page_filter(rnd: random.Random) -> And:
    return And((Eq("status", rnd.choice(STATUSES[:3])), In("project", tuple(rnd.sample(PROJECTS, 3)))))


BUDGET_S = 20.0  # per measured operation: stop early past this, and rate what was done


async def timed(
    label: str, count: int, one: Callable[[int], Awaitable[None]], budget: float | None = BUDGET_S
) -> float:
    """Run ``one(i)`` for i in range(count), or until ``budget`` seconds are spent; print and return the rate."""
    start = time.perf_counter()
    done = 0
    while done < count:
        await one(done)
        done += 1
        if budget is not None and time.perf_counter() - start > budget:
            break
    elapsed = time.perf_counter() - start
    rate = done / elapsed
    cut = "" if done == count else f", stopped at the {budget:.0f} s budget"
    print(f"  {label:<32} {rate:>10,.0f} /s   ({done} in {elapsed:.2f} s{cut})", flush=True)
    return rate


async def bench_store(store, docs: list[dict[str, Any]], ops: int) -> dict[str, float]:
    rnd = random.Random(11)
    await store.ensure_indexes("tasks", INDEXES)
    rates: dict[str, float] = {}
    companies = (COMPANY, "")

    async def insert(i: int) -> None:
        await store.insert("tasks", docs[i])

    async def get(i: int) -> None:
        assert await store.get("tasks", rnd.choice(docs)["id"], companies=companies) is not None

    async def page(i: int) -> None:
        await store.find(
            "tasks", companies=companies, where=page_filter(rnd), order=[("created", True)], limit=50, fields=PAGE_FIELDS
        )

    async def cas(i: int) -> None:
        doc = await store.get("tasks", rnd.choice(docs)["id"], companies=companies)
        doc["execution"]["priority"] += 1
        assert await store.replace("tasks", doc, expected_rev=doc["rev"]) is not None

    rates["insert"] = await timed("insert", len(docs), insert, budget=None)
    rates["get by id"] = await timed("get by id", ops, get)
    rates["find page of 50"] = await timed("find page of 50 (filter+proj)", ops // 10, page)
    rates["CAS get+replace"] = await timed("CAS get+replace", ops // 2, cas)
    return rates


async def bench_pymongo(url: str, database: str, docs: list[dict[str, Any]], ops: int) -> dict[str, float]:
    """The same operations as ``bench_store`` issued directly: what a hand-written PyMongo layer would
    send (a flat query document), plus the page query in the adapter's ``$and`` form."""
    rnd = random.Random(11)
    client: AsyncMongoClient = AsyncMongoClient(url, serverSelectionTimeoutMS=5000)
    col = client[database]["tasks"]
    rates: dict[str, float] = {}
    companies = [COMPANY, ""]
    try:
        await col.create_index([("company", 1), ("name", 1)], unique=True)
        for field in ("status", "project", "created"):
            await col.create_index([(field, 1)])
        raw_docs = [{"_id": d["id"], **{k: v for k, v in d.items() if k != "id"}, "rev": 1} for d in docs]

        async def insert(i: int) -> None:
            await col.insert_one(dict(raw_docs[i]))

        async def get(i: int) -> None:
            assert await col.find_one({"_id": rnd.choice(docs)["id"], "company": {"$in": companies}}) is not None

        def page_query() -> tuple[dict, dict]:
            scope = {"company": {"$in": companies}}
            where = {"status": rnd.choice(STATUSES[:3]), "project": {"$in": rnd.sample(PROJECTS, 3)}}
            return scope, where

        async def page(i: int) -> None:
            scope, where = page_query()
            cursor = col.find({**scope, **where}, {f: 1 for f in PAGE_FIELDS})
            await cursor.sort([("created", -1), ("_id", 1)]).limit(50).to_list()

        async def page_and(i: int) -> None:
            scope, where = page_query()
            cursor = col.find({"$and": [scope, where]}, {f: 1 for f in PAGE_FIELDS})
            await cursor.sort([("created", -1), ("_id", 1)]).limit(50).to_list()

        async def cas(i: int) -> None:
            raw = await col.find_one({"_id": rnd.choice(docs)["id"], "company": {"$in": companies}})
            rev = raw["rev"]
            raw["execution"]["priority"] += 1
            raw["rev"] = rev + 1
            result = await col.replace_one({"_id": raw["_id"], "company": raw["company"], "rev": rev}, raw)
            assert result.matched_count == 1

        rates["insert"] = await timed("insert", len(docs), insert, budget=None)
        rates["get by id"] = await timed("get by id", ops, get)
        rates["find page of 50"] = await timed("find page of 50 (flat query)", ops // 10, page)
        rates["find page of 50 ($and)"] = await timed("find page of 50 ($and, as adapter)", ops // 10, page_and)
        rates["CAS get+replace"] = await timed("CAS get+replace", ops // 2, cas)
    finally:
        await client.drop_database(database)
        await client.close()
    return rates


def start_nx(workdir: Path) -> tuple[subprocess.Popen, str]:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    exe = Path(sys.executable).parent / "nx-27017"
    proc = subprocess.Popen(
        [str(exe), "--host", "127.0.0.1", "-p", str(port), "--db", "memory",
         "--pid-file", str(workdir / "nx.pid"), "--log-file", str(workdir / "nx.log")],
        stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
    )
    deadline = time.monotonic() + 20
    while True:
        if proc.poll() is not None:
            raise SystemExit(f"nx-27017 exited with code {proc.returncode}")
        try:
            with socket.create_connection(("127.0.0.1", port), timeout=0.5):
                break
        except OSError:
            if time.monotonic() > deadline:
                proc.kill()
                raise SystemExit("nx-27017 did not start")
            time.sleep(0.05)
    return proc, f"mongodb://127.0.0.1:{port}/?directConnection=true"


async def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--large", action="store_true", help="100k documents instead of 10k")
    parser.add_argument("--mongo-url", help="benchmark this MongoDB instead of a private nx-27017")
    parser.add_argument("--only", choices=["sqlite", "mongo"], help="run one adapter only")
    args = parser.parse_args()

    n = 100_000 if args.large else 10_000
    ops = 5_000
    docs = make_docs(n)
    print(f"{n:,} documents, {ops:,} gets, {ops // 10:,} pages, {ops // 2:,} CAS updates")

    with tempfile.TemporaryDirectory(prefix="specgate-bench-") as tmp:
        if args.only in (None, "sqlite"):
            print("\nsqlite adapter (WAL file)")
            store = SqliteStore(str(Path(tmp) / "bench.db"))
            await store.open()
            try:
                await bench_store(store, docs, ops)
            finally:
                await store.close()

        if args.only in (None, "mongo"):
            label = "nx-27017, fresh server per run" if args.mongo_url is None else args.mongo_url
            print(f"\nmongo adapter ({label})")
            async with mongo_server(args.mongo_url, Path(tmp) / "nx-adapter") as url:
                store = MongoStore(url, database=f"bench_{uuid.uuid4().hex[:8]}")
                await store.open()
                try:
                    adapter = await bench_store(store, docs, ops)
                finally:
                    await store.drop_database()
                    await store.close()
            print("\npymongo directly (same queries)")
            async with mongo_server(args.mongo_url, Path(tmp) / "nx-direct") as url:
                direct = await bench_pymongo(url, f"bench_{uuid.uuid4().hex[:8]}", docs, ops)
            print("\nmongo adapter rate / direct pymongo rate")
            for key, rate in adapter.items():
                print(f"  {key:<32} {rate / direct[key]:>10.2f}")
            key = "find page of 50"
            print(f"  {key + ' vs $and form':<32} {adapter[key] / direct[key + ' ($and)']:>10.2f}")


@contextlib.asynccontextmanager
async def mongo_server(url: str | None, workdir: Path):
    """The given server, or a private nx-27017 for the duration."""
    if url is not None:
        yield url
        return
    workdir.mkdir()
    proc, url = start_nx(workdir)
    try:
        yield url
    finally:
        proc.terminate()
        try:
            proc.wait(timeout=10)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()

if __name__ == "__main__":
    asyncio.run(main())
