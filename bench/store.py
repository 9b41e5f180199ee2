"""Document-store cost as the task count grows: the SQLite and MongoDB adapters (MongoDB over an
nx-27017 started here, or a real server with --mongo-url), and for MongoDB the same queries issued
directly with PyMongo on the same collection, to show what the adapter layer costs.

    .venv/bin/python bench/store.py                  # SQLite at 1k, 10k, 100k; MongoDB (nx-27017) at 1k, 10k
    .venv/bin/python bench/store.py --only sqlite    # SQLite only
    .venv/bin/python bench/store.py --sizes 1000,10000 --mongo-sizes 1000 --budget 0.5 --rounds 1   # quick
    .venv/bin/python bench/store.py --only mongo --mongo-url mongodb://host/ --mongo-sizes 1000,10000,100000
    BENCH_STORE_SIZES=... BENCH_STORE_MONGO_SIZES=... BENCH_STORE_OPS=... BENCH_STORE_BUDGET=... (same as the flags)

nx-27017 answers the adapter's ``$and`` queries in Python (about a second a page at 10k tasks), so its
default sizes stop at 10k; 100k there takes many minutes.

Tasks are realistic (~2.3 KB: script, hyperparams, configuration, as tasks.create stores them) with
the indexes specgate creates at start-up (``specgate.domain.setup.prepare``). The collection is
filled to each size in bulk (untimed), then, at each size:

- paths of the port, one await at a time (rates are inverted latencies, not server capacity):
  ``get`` by id; ``list``: a page of 50 with an indexed filter (status + project), order and
  projection; ``update``: compare-and-swap get + replace; ``claim``: find the oldest ``queued`` task
  and CAS it to ``in_progress`` (retried on a lost race), as a store-polling worker would; ``insert``;
- for MongoDB, each path issued directly with PyMongo (the adapter's own query documents, through a
  client with the adapter's own options, so the ratio is the adapter layer's cost; plus the flat
  query form for the page, which nx-27017 answers faster and wrongly for arrays, see
  ``specgate.adapters.mongo._scoped``). The options themselves cost ~60 µs of client CPU an insert
  and ~100 µs a find_one here: with a socket timeout, PyMongo's async reads each go through
  ``asyncio.wait_for``; the adapter keeps it, or a partitioned server would hang calls for good;
- ``tasks.get_all`` latency through the domain code (``specgate.domain.task_query.get_all``, what
  the endpoint runs) for a page of 50: without a filter, with the SDK's ``system_tags: [-archived]``,
  with indexed filters (project; a rare status; 50 ids), and with a filter no index serves (tags).
  Issue 8: it must stay flat for indexed filters.

Each measurement stops at ``--ops`` calls or after ``--budget`` seconds, whichever comes first.
"""

from __future__ import annotations

import os
import sys

_BENCH = os.path.dirname(os.path.abspath(__file__))
sys.path[:] = [p for p in sys.path if os.path.abspath(p or os.curdir) != _BENCH] + [_BENCH]

import argparse  # noqa: E402
import asyncio  # noqa: E402
import contextlib  # noqa: E402
import math  # noqa: E402
import random  # noqa: E402
import statistics  # noqa: E402
import tempfile  # noqa: E402
import time  # noqa: E402
import uuid  # noqa: E402
from pathlib import Path  # noqa: E402
from typing import Any, Awaitable, Callable  # noqa: E402

import orjson  # noqa: E402
from benchlib import env_float, env_int, env_list, int_list, start_nx, stop_process, task_create_body, verdict  # noqa: E402

from specgate.adapters.documents import prepare  # noqa: E402
from specgate.adapters.mongo import MongoStore, _projection, _to_mongo  # noqa: E402
from specgate.adapters.ports import And, Eq, In  # noqa: E402
from specgate.adapters.sqlite import SqliteStore  # noqa: E402
from specgate.core.versions import parse_pin  # noqa: E402
from specgate.domain import setup, task_query  # noqa: E402

COMPANY = "c1"
COMPANIES = (COMPANY, "")
PROJECTS = [f"{i:032x}" for i in range(1, 21)]  # 20 projects, 5% of the tasks each
STATUS_WEIGHTS = {"created": 55, "queued": 10, "completed": 24, "failed": 5, "stopped": 4, "in_progress": 2}
TAGS = ["red", "green", "blue", "gpu", "cpu", "nightly", "release"]
PAGE_FIELDS = ("name", "status", "project", "created", "tags")
VERSION = parse_pin("2.23")
ONLY_FIELDS = ["id", "name", "status", "type", "project", "last_update", "tags"]
_TEMPLATE = {k: v for k, v in task_create_body("x", None).items() if k != "method"}


def make_task(i: int, rnd: random.Random) -> dict[str, Any]:
    """Task ``i`` as tasks.create would store it (times increase with i)."""
    t = f"2026-{1 + i // 2_000_000:02d}-{1 + (i // 80_000) % 28:02d}T{(i // 3600) % 24:02d}:{(i // 60) % 60:02d}:{i % 60:02d}.{i % 1_000_000:06d}+00:00"
    status = rnd.choices(list(STATUS_WEIGHTS), weights=list(STATUS_WEIGHTS.values()))[0]
    system_tags = ["archived"] if rnd.random() < 0.05 else (["hidden"] if rnd.random() < 0.01 else [])
    return {
        **_TEMPLATE,
        "id": uuid.UUID(int=rnd.getrandbits(128)).hex,
        "company": COMPANY if i % 10 else "",
        "user": "a6886c86758450b9a16596f6426d84a1",
        "name": f"task {i:07d}",
        "status": status,
        "project": rnd.choice(PROJECTS),
        "tags": rnd.sample(TAGS, rnd.randint(0, 3)),
        "system_tags": system_tags,
        "created": t,
        "status_changed": t,
        "last_update": t,
        "last_change": t,
        "last_changed_by": "a6886c86758450b9a16596f6426d84a1",
        "last_iteration": i % 1000,
        "execution": {"queue": f"{i % 4:032x}", "priority": i % 5},
    }


def page_filter(rnd: random.Random) -> And:
    return And((Eq("status", rnd.choice(["created", "queued", "completed"])), In("project", tuple(rnd.sample(PROJECTS, 3)))))


class Timer:
    def __init__(self, ops: int, budget: float, rounds: int):
        self.ops, self.budget, self.rounds = ops, budget, rounds

    async def rate(self, one: Callable[[int], Awaitable[Any]], ops: int | None = None) -> tuple[float, int]:
        """Run ``one(i)`` until ``ops`` calls or the budget; (calls per second, calls done)."""
        count = self.ops if ops is None else ops
        start = time.perf_counter()
        done = 0
        while done < count:
            if await one(done) is False:  # nothing left to do (claim ran out of queued tasks)
                break
            done += 1
            if time.perf_counter() - start > self.budget:
                break
        return done / (time.perf_counter() - start), done

    async def latency(self, one: Callable[[], Awaitable[Any]], calls: int = 30) -> float:
        """Median latency in ms over up to ``calls`` calls within the budget (at least one)."""
        samples: list[float] = []
        start = time.perf_counter()
        while len(samples) < calls and (not samples or time.perf_counter() - start < self.budget):
            t0 = time.perf_counter()
            await one()
            samples.append(time.perf_counter() - t0)
        return statistics.median(samples) * 1000


# --- filling -------------------------------------------------------------------------------------


class Filler:
    """Bulk writes of stored tasks in each adapter's own format (as its ``insert`` writes them)."""

    def __init__(self) -> None:
        self.count = 0
        self.ids: list[str] = []
        self.rnd = random.Random(7)

    def batch(self, upto: int, size: int = 5000) -> list[dict]:
        docs = []
        while self.count < upto and len(docs) < size:
            doc = make_task(self.count, self.rnd)
            stored = prepare(doc)
            stored["rev"] = 1
            docs.append(stored)
            self.ids.append(doc["id"])
            self.count += 1
        return docs

    def next_doc(self) -> dict:
        doc = make_task(self.count, self.rnd)
        self.ids.append(doc["id"])
        self.count += 1
        return doc


async def fill_sqlite(store: SqliteStore, filler: Filler, upto: int) -> None:
    db = store._db()
    store._table("tasks")
    db.execute("BEGIN")
    while docs := filler.batch(upto):
        db.executemany("INSERT INTO tasks (id, company, rev, doc) VALUES (?, ?, 1, ?)",
                       [(d["id"], d["company"], orjson.dumps(d).decode()) for d in docs])  # fmt: skip
    db.execute("COMMIT")
    db.execute("ANALYZE")  # what PRAGMA optimize would do at the first close after a bulk load


async def fill_mongo(store: MongoStore, filler: Filler, upto: int) -> None:
    col = store._col("tasks")
    while docs := filler.batch(upto, size=2000):
        await col.insert_many([_to_mongo(d) for d in docs], ordered=False)


# --- the measured paths ----------------------------------------------------------------------------
# Each path is (name, one call, how many calls at most); a claim returns False when nothing is queued.
# Claimed tasks are put back to queued after each round (untimed), so every round finds work.


def adapter_paths(store, filler: Filler, timer: Timer, rnd: random.Random, claimed: list[str]) -> list[tuple]:
    async def get(i: int) -> None:
        assert await store.get("tasks", rnd.choice(filler.ids), companies=COMPANIES) is not None

    async def page(i: int) -> None:
        await store.find("tasks", companies=COMPANIES, where=page_filter(rnd), order=[("created", True)],
                         limit=50, fields=PAGE_FIELDS)  # fmt: skip

    async def update(i: int) -> None:
        while True:
            doc = await store.get("tasks", rnd.choice(filler.ids), companies=COMPANIES)
            doc["execution"]["priority"] = (doc["execution"].get("priority", 0) + 1) % 5
            if await store.replace("tasks", doc, expected_rev=doc["rev"]) is not None:
                return

    async def claim(i: int) -> bool:
        while True:
            found = await store.find("tasks", companies=COMPANIES, where=Eq("status", "queued"),
                                     order=[("created", False)], limit=1)  # fmt: skip
            if not found:
                return False
            doc = found[0]
            doc["status"] = "in_progress"
            if await store.replace("tasks", doc, expected_rev=doc["rev"]) is not None:
                claimed.append(doc["id"])
                return True

    async def insert(i: int) -> None:
        await store.insert("tasks", filler.next_doc())

    return [("get", get, timer.ops), ("list page of 50", page, timer.ops // 5), ("update (CAS)", update, timer.ops // 2),
            ("claim (find+CAS)", claim, timer.ops // 5), ("insert", insert, timer.ops // 4)]  # fmt: skip


def direct_paths(col, filler: Filler, timer: Timer, rnd: random.Random, claimed: list[str]) -> list[tuple]:
    """The same paths as adapter_paths, hand-written with PyMongo, sending the adapter's query documents."""
    companies = list(COMPANIES)
    projection = _projection(PAGE_FIELDS)

    async def get(i: int) -> None:
        assert await col.find_one({"_id": rnd.choice(filler.ids), "company": {"$in": companies}}) is not None

    def page_where() -> dict:
        return {"status": rnd.choice(["created", "queued", "completed"]), "project": {"$in": rnd.sample(PROJECTS, 3)}}

    async def page(i: int) -> None:
        where = page_where()
        query = {"$and": [{"company": {"$in": companies}}, {"$and": [{"status": where["status"]}, {"project": where["project"]}]}]}
        await col.find(query, projection, sort=[("created", -1), ("_id", 1)]).limit(50).to_list()

    async def page_flat(i: int) -> None:
        query = {"company": {"$in": companies}, **page_where()}
        await col.find(query, projection, sort=[("created", -1), ("_id", 1)]).limit(50).to_list()

    async def update(i: int) -> None:
        while True:
            raw = await col.find_one({"_id": rnd.choice(filler.ids), "company": {"$in": companies}})
            rev = raw["rev"]
            raw["execution"]["priority"] = (raw["execution"].get("priority", 0) + 1) % 5
            raw["rev"] = rev + 1
            if (await col.replace_one({"_id": raw["_id"], "company": raw["company"], "rev": rev}, raw)).matched_count:
                return

    async def claim(i: int) -> bool:
        while True:
            query = {"$and": [{"company": {"$in": companies}}, {"status": "queued"}]}
            found = await col.find(query, sort=[("created", 1), ("_id", 1)]).limit(1).to_list()
            if not found:
                return False
            raw = found[0]
            rev = raw["rev"]
            raw["status"], raw["rev"] = "in_progress", rev + 1
            if (await col.replace_one({"_id": raw["_id"], "company": raw["company"], "rev": rev}, raw)).matched_count:
                claimed.append(raw["_id"])
                return True

    async def insert(i: int) -> None:
        doc = filler.next_doc()
        await col.insert_one({"_id": doc["id"], **{k: v for k, v in doc.items() if k != "id"}, "rev": 1})

    return [("get", get, timer.ops), ("list page of 50", page, timer.ops // 5), ("update (CAS)", update, timer.ops // 2),
            ("claim (find+CAS)", claim, timer.ops // 5), ("insert", insert, timer.ops // 4),
            ("list page of 50, flat query", page_flat, timer.ops // 5)]  # fmt: skip


async def requeue(store, claimed: list[str]) -> None:
    while claimed:
        doc = await store.get("tasks", claimed.pop(), companies=COMPANIES)
        if doc is not None and doc["status"] == "in_progress":
            doc["status"] = "queued"
            await store.replace("tasks", doc, expected_rev=doc["rev"])


async def measure(
    store, sides: dict[str, list[tuple]], timer: Timer, claimed: list[str], rounds: int
) -> tuple[dict[str, dict[str, float]], dict[str, dict[str, float]]]:
    """Rounds alternate the sides (adapter, direct) path by path. Returns the best rate of each and
    its least client CPU per call in µs: this process only, so the server's noise stays out of it."""
    best: dict[str, dict[str, float]] = {side: {} for side in sides}
    cpu: dict[str, dict[str, float]] = {side: {} for side in sides}
    names = list(dict.fromkeys(name for paths in sides.values() for name, _, _ in paths))
    for name in names:
        for _ in range(rounds):
            for side, paths in sides.items():
                for path_name, one, ops in paths:
                    if path_name == name:
                        started = time.process_time()
                        rate, done = await timer.rate(one, ops)
                        used = (time.process_time() - started) / max(done, 1) * 1e6
                        best[side][name] = max(best[side].get(name, 0.0), rate)
                        cpu[side][name] = min(cpu[side].get(name, math.inf), used)
                        await requeue(store, claimed)
    return best, cpu


GET_ALL = [
    ("no filter (search_hidden)", {"search_hidden": True}, True),  # the order index serves it
    ("no filter (hidden excluded)", {}, False),
    ("SDK: system_tags -archived", {"system_tags": ["-archived"]}, False),
    ("indexed: project", {"project": [PROJECTS[3]]}, True),
    ("indexed: status in_progress", {"status": ["in_progress"]}, True),
    ("indexed: 50 ids", None, True),
    ("not indexed: tags red", {"tags": ["red"]}, False),
]


async def get_all_latencies(store, filler: Filler, timer: Timer, rnd: random.Random) -> dict[str, float]:
    out = {}
    for label, extra, _ in GET_ALL:
        data = {"only_fields": ONLY_FIELDS, "order_by": ["-last_update"], "page": 0, "page_size": 50}
        data.update(extra if extra is not None else {"id": rnd.sample(filler.ids, 50)})

        async def one(data: dict = data) -> None:
            answer = await task_query.get_all(store, COMPANY, dict(data), VERSION)
            assert answer["tasks"] or "status" in data

        out[label] = await timer.latency(one)
    return out


# --- reporting -------------------------------------------------------------------------------------


def print_rates(title: str, sizes: list[int], rows: dict[int, dict[str, float]]) -> None:
    print(f"\n{title}: calls per second, one at a time")
    names = list(next(iter(rows.values())))
    print(f"  {'path':<30}" + "".join(f"{n:>12,}" for n in sizes))
    for name in names:
        print(f"  {name:<30}" + "".join(f"{rows[n].get(name, float('nan')):>12,.0f}" for n in sizes))


def print_layer_cost(sizes: list[int], paths: dict, direct: dict, cpu: dict) -> None:
    """What the adapter layer adds in client CPU per call, and the rate ratio that cost alone would
    give: the rate ratios above also carry the test server's noise (nx-27017 shares the cores)."""
    print("\nmongo adapter layer: client CPU per call in µs (adapter / direct / added), and the rate ratio the added CPU alone gives")
    print(f"  {'path':<30}" + "".join(f"{n:>30,}" for n in sizes))
    for name in paths[sizes[0]]:
        cells = []
        for n in sizes:
            mine, theirs = cpu[n]["adapter"][name], cpu[n]["direct"][name]
            implied = 1 / (1 + max(mine - theirs, 0.0) * direct[n][name] / 1e6)
            cells.append(f"{mine:,.0f} / {theirs:,.0f} / {mine - theirs:+,.0f} -> {implied:.2f}")
        print(f"  {name:<30}" + "".join(f"{c:>30}" for c in cells))


def print_latencies(title: str, sizes: list[int], rows: dict[int, dict[str, float]]) -> None:
    print(f"\n{title}: tasks.get_all page of 50 (domain code over the store), median ms")
    print(f"  {'filter':<30}" + "".join(f"{n:>10,}" for n in sizes) + f"  {'growth':>7}  flat?")
    for label, _, indexed in GET_ALL:
        values = [rows[n][label] for n in sizes]
        growth = values[-1] / values[0] if values[0] else float("nan")
        flat = ("indexed: " + verdict(growth < 3)) if indexed else ""
        print(f"  {label:<30}" + "".join(f"{v:>10.2f}" for v in values) + f"  {growth:>6.1f}x  {flat}")


# --- main ----------------------------------------------------------------------------------------


async def run_sqlite(sizes: list[int], timer: Timer, tmp: Path) -> None:
    print("\n== sqlite adapter (WAL file)", flush=True)
    store = SqliteStore(str(tmp / "bench.db"))
    await store.open()
    filler, rnd = Filler(), random.Random(11)
    paths, latencies = {}, {}
    try:
        await setup.prepare(store)
        for n in sizes:
            start = time.perf_counter()
            await fill_sqlite(store, filler, n)
            print(f"  filled to {filler.count:,} tasks in {time.perf_counter() - start:.1f} s", flush=True)
            latencies[n] = await get_all_latencies(store, filler, timer, rnd)
            claimed: list[str] = []
            sides = {"adapter": adapter_paths(store, filler, timer, rnd, claimed)}
            paths[n] = (await measure(store, sides, timer, claimed, timer.rounds))[0]["adapter"]
        print_rates("sqlite adapter", sizes, paths)
        print_latencies("sqlite", sizes, latencies)
    finally:
        await store.close()


async def run_mongo(sizes: list[int], timer: Timer, url: str) -> None:
    print(f"\n== mongo adapter ({url})", flush=True)
    from pymongo import AsyncMongoClient

    store = MongoStore(url, database=f"bench_{uuid.uuid4().hex[:8]}")
    await store.open()
    direct_client: AsyncMongoClient = AsyncMongoClient(url, **store.client_options)
    col = direct_client[store.database_name]["tasks"]
    filler, rnd = Filler(), random.Random(11)
    paths, direct, latencies, cpu = {}, {}, {}, {}
    try:
        await setup.prepare(store)
        for n in sizes:
            start = time.perf_counter()
            await fill_mongo(store, filler, n)
            print(f"  filled to {filler.count:,} tasks in {time.perf_counter() - start:.1f} s", flush=True)
            latencies[n] = await get_all_latencies(store, filler, timer, rnd)
            claimed: list[str] = []
            sides = {"adapter": adapter_paths(store, filler, timer, rnd, claimed),
                     "direct": direct_paths(col, filler, timer, rnd, claimed)}  # fmt: skip
            both, cpu[n] = await measure(store, sides, timer, claimed, timer.rounds)
            paths[n], direct[n] = both["adapter"], both["direct"]
            print(f"  measured at {n:,}", flush=True)
        print_rates("mongo adapter", sizes, paths)
        print_rates("pymongo directly, the adapter's query documents", sizes, direct)
        print("\nmongo adapter rate / direct pymongo rate (issue 8: >= 0.9 each)")
        print(f"  {'path':<30}" + "".join(f"{n:>12,}" for n in sizes))
        worst = float("inf")
        for name in paths[sizes[0]]:
            ratios = [paths[n][name] / direct[n][name] for n in sizes]
            worst = min(worst, *ratios)
            print(f"  {name:<30}" + "".join(f"{r:>12.2f}" for r in ratios))
        ratios = [paths[n]["list page of 50"] / direct[n]["list page of 50, flat query"] for n in sizes]
        print(f"  {'list page vs the flat query':<30}" + "".join(f"{r:>12.2f}" for r in ratios))
        print(f"  worst ratio {worst:.2f}: {verdict(worst >= 0.9)}")
        print_layer_cost(sizes, paths, direct, cpu)
        print_latencies("mongo", sizes, latencies)
    finally:
        await store.drop_database()
        await store.close()
        await direct_client.close()


@contextlib.contextmanager
def mongo_server(url: str | None, workdir: Path):
    """The given server, or a private nx-27017 for the duration."""
    if url is not None:
        yield url
        return
    proc, url = start_nx(workdir)
    try:
        yield url
    finally:
        stop_process(proc)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--sizes", type=int_list, default=env_list("BENCH_STORE_SIZES", [1_000, 10_000, 100_000]),
                        help="task counts, ascending (env BENCH_STORE_SIZES, default 1000,10000,100000)")
    parser.add_argument("--mongo-sizes", type=int_list, default=env_list("BENCH_STORE_MONGO_SIZES", [1_000, 10_000]),
                        help="task counts for MongoDB (env BENCH_STORE_MONGO_SIZES, default 1000,10000: nx-27017 "
                             "answers the adapter's queries in Python, ~1 s a page at 10k; give 100000 with a real server)")
    parser.add_argument("--ops", type=int, default=env_int("BENCH_STORE_OPS", 2_000),
                        help="calls per path (gets; lists, claims 1/5 of it; updates 1/2; inserts 1/4) (env BENCH_STORE_OPS)")
    parser.add_argument("--budget", type=float, default=env_float("BENCH_STORE_BUDGET", 1.0),
                        help="seconds per measurement round at most (env BENCH_STORE_BUDGET, default 1)")
    parser.add_argument("--rounds", type=int, default=env_int("BENCH_STORE_ROUNDS", 3),
                        help="rounds per path, alternating adapter and direct; best kept (env BENCH_STORE_ROUNDS, default 3)")
    parser.add_argument("--mongo-url", help="benchmark this MongoDB instead of a private nx-27017")
    parser.add_argument("--only", choices=["sqlite", "mongo"], help="run one adapter only")
    args = parser.parse_args()  # fmt: skip

    timer = Timer(args.ops, args.budget, args.rounds)
    load = os.getloadavg()[0]
    print(f"bench/store.py: sqlite sizes {', '.join(f'{n:,}' for n in args.sizes)}, mongo sizes "
          f"{', '.join(f'{n:,}' for n in args.mongo_sizes)}; {args.ops:,} ops or {args.budget:g} s per round, "
          f"{args.rounds} rounds, best kept; load average {load:.1f}{' (busy machine: expect noise)' if load > 1 else ''}")  # fmt: skip
    started = time.perf_counter()
    with tempfile.TemporaryDirectory(prefix="specgate-bench-store-") as tmp_name:
        tmp = Path(tmp_name)
        if args.only in (None, "sqlite"):
            asyncio.run(run_sqlite(sorted(args.sizes), timer, tmp))
        if args.only in (None, "mongo"):
            with mongo_server(args.mongo_url, tmp / "nx") as url:
                asyncio.run(run_mongo(sorted(args.mongo_sizes), timer, url))
    print(f"\ntotal {time.perf_counter() - started:.0f} s; load average {os.getloadavg()[0]:.1f} at the end")
    return 0


if __name__ == "__main__":
    sys.exit(main())
