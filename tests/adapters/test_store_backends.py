"""Backend-specific behaviour the contract suite cannot state in neutral terms: SQLite's file sharing
between processes and its pragmas, MongoDB's ``_id`` mapping and failure mapping."""

from __future__ import annotations

import asyncio
import gc
import sqlite3
import subprocess
import sys
import textwrap
import warnings
from contextlib import asynccontextmanager
from pathlib import Path

import orjson
import pytest

from specgate.adapters.mongo import MongoStore
from specgate.adapters.ports import And, DuplicateKey, Eq, In, Index, NotIn, Range, StoreUnavailable
from specgate.adapters.sqlite import SqliteStore

from .conftest import free_port, start_nx, stop_nx
from .test_store_contract import FILTER_DOCS, FILTERS

A = ("A",)


# --- SQLite ------------------------------------------------------------------------------------


@pytest.fixture
async def sqlite_path(tmp_path: Path) -> str:
    return str(tmp_path / "shared.db")


async def test_sqlite_pragmas(sqlite_path: str) -> None:
    store = SqliteStore(sqlite_path)
    await store.open()
    try:
        db = store._db()
        assert db.execute("PRAGMA journal_mode").fetchone()[0] == "wal"
        assert db.execute("PRAGMA synchronous").fetchone()[0] == 1  # NORMAL
        assert db.execute("PRAGMA busy_timeout").fetchone()[0] > 0
    finally:
        await store.close()


async def test_sqlite_memory_store() -> None:
    store = SqliteStore(":memory:")
    await store.open()
    try:
        await store.insert("things", {"id": "m", "company": "A"})
        assert await store.count("things", companies=A) == 1
    finally:
        await store.close()


async def test_sqlite_two_connections_race_on_one_file(sqlite_path: str) -> None:
    one, two = SqliteStore(sqlite_path), SqliteStore(sqlite_path)
    await one.open()
    await two.open()
    try:
        await one.insert("things", {"id": "k", "company": "A", "v": 0})
        seen_one = await one.get("things", "k", companies=A)
        seen_two = await two.get("things", "k", companies=A)
        assert await one.replace("things", {**seen_one, "v": 1}, expected_rev=seen_one["rev"]) is not None
        assert await two.replace("things", {**seen_two, "v": 2}, expected_rev=seen_two["rev"]) is None
        assert (await two.get("things", "k", companies=A))["v"] == 1
        # the table created by one connection is visible to the other, and ids stay unique across them
        with pytest.raises(DuplicateKey):
            await two.insert("things", {"id": "k", "company": "A"})
    finally:
        await one.close()
        await two.close()


WORKER = textwrap.dedent(
    """
    import asyncio, sys
    from specgate.adapters.sqlite import SqliteStore

    async def main(path, rounds):
        store = SqliteStore(path)
        await store.open()
        for _ in range(rounds):
            while True:
                doc = await store.get("counters", "k", companies=("A",))
                if await store.replace("counters", {**doc, "n": doc["n"] + 1}, expected_rev=doc["rev"]):
                    break
        await store.close()

    asyncio.run(main(sys.argv[1], int(sys.argv[2])))
    """
)


async def test_sqlite_processes_share_one_file(sqlite_path: str) -> None:
    store = SqliteStore(sqlite_path)
    await store.open()
    try:
        await store.insert("counters", {"id": "k", "company": "A", "n": 0})
        procs = [
            subprocess.Popen([sys.executable, "-c", WORKER, sqlite_path, "40"], stdout=subprocess.PIPE, stderr=subprocess.PIPE)
            for _ in range(3)
        ]
        for proc in procs:
            out, err = proc.communicate(timeout=60)
            assert proc.returncode == 0, err.decode()
        final = await store.get("counters", "k", companies=A)
        assert final["n"] == 120 and final["rev"] == 121
    finally:
        await store.close()


async def test_sqlite_unopenable_path_is_unavailable(tmp_path: Path) -> None:
    with pytest.raises(StoreUnavailable):
        await SqliteStore(str(tmp_path / "no" / "such" / "dir" / "x.db")).open()


async def test_sqlite_rejects_bad_collection_names(sqlite_path: str) -> None:
    store = SqliteStore(sqlite_path)
    await store.open()
    try:
        for name in ('x"; DROP TABLE t; --', "sqlite_master", "", "a.b"):
            with pytest.raises(ValueError):
                await store.insert(name, {"id": "x", "company": "A"})
    finally:
        await store.close()


def _plan(store: SqliteStore, collection: str, where, order=(), skip=0, limit=None) -> str:
    """The query plan of the statement find() would run."""
    with store._transaction():
        sql, params, _ = store._select(collection, A, where, order, skip, limit)
        return " | ".join(row[3] for row in store._db().execute("EXPLAIN QUERY PLAN " + sql, params))


async def _fill_tasks(store: SqliteStore, n: int, rare_every: int) -> None:
    db = store._db()
    db.execute("BEGIN")
    for i in range(n):
        status = "rare" if i % rare_every == 0 else "common"
        doc = {"id": f"t{i:05d}", "company": "A", "status": status, "project": f"p{i % 4}", "created": f"{i:05d}"}
        db.execute("INSERT INTO tasks (id, company, rev, doc) VALUES (?, 'A', 1, ?)", (doc["id"], orjson.dumps(doc).decode()))
    db.execute("COMMIT")


async def test_sqlite_pages_walk_the_order_index_or_the_rare_value(sqlite_path: str) -> None:
    """A page ordered by an indexed field walks that field's index (stopping at the page) when the
    equality filter matches many rows, and starts from the filter's index when it matches few; both
    indexes cover the filter, so neither reads documents it then rejects."""
    store = SqliteStore(sqlite_path)
    await store.open()
    try:
        await store.ensure_indexes("tasks", [Index(("status",)), Index(("created",)), Index(("company", "name"), unique=True)])
        await _fill_tasks(store, 2000, rare_every=500)
        common = _plan(store, "tasks", Eq("status", "common"), [("created", False)], limit=1)
        assert "SCAN tasks USING INDEX kx:tasks:created" in common and "TEMP B-TREE FOR ORDER BY" not in common, common
        rare = _plan(store, "tasks", Eq("status", "rare"), [("created", True)], limit=50)
        assert "SEARCH tasks USING INDEX kx:tasks:status (k:status=? AND company=?)" in rare, rare
        recent = _plan(store, "tasks", Range("created", gte="01990"), [("status", False)], limit=50)
        assert "SEARCH tasks USING INDEX kx:tasks:created (k:created>? AND k:created<?)" in recent, recent
        # the claim query of a store-polling worker: the oldest common task, and the ordering holds
        [oldest] = await store.find("tasks", companies=A, where=Eq("status", "common"), order=[("created", False)], limit=1)
        assert oldest["id"] == "t00001"
        newest = await store.find("tasks", companies=A, where=Eq("status", "rare"), order=[("created", True)], limit=50)
        assert [d["id"] for d in newest] == ["t01500", "t01000", "t00500", "t00000"]
        names = {row[0] for row in store._db().execute("SELECT name FROM sqlite_master WHERE type = 'index'")}
        assert {"kx:tasks:status", "kx:tasks:created", "ux:tasks:company,name"} <= names
    finally:
        await store.close()


async def test_sqlite_time_order_with_its_tie_break_needs_no_sort_and_replaces_the_shorter_index(sqlite_path: str) -> None:
    """A file made with an index on (created) opens with (created, id) declared: the old index
    is dropped, and a page ordered by created (ties by id, both directions) is read in index order."""
    store = SqliteStore(sqlite_path)
    await store.open()
    await store.ensure_indexes("tasks", [Index(("created",)), Index(("status",))])
    await _fill_tasks(store, 200, rare_every=50)
    await store.close()
    store = SqliteStore(sqlite_path)
    await store.open()
    try:
        await store.ensure_indexes("tasks", [Index(("created", "id")), Index(("status",))])
        names = {row[0] for row in store._db().execute("SELECT name FROM sqlite_master WHERE type = 'index'")}
        assert "kx:tasks:created,id" in names and "kx:tasks:created" not in names
        for descending in (True, False):
            plan = _plan(store, "tasks", Eq("status", "common"), [("created", descending)], limit=50)
            assert "USING INDEX kx:tasks:created,id" in plan and "TEMP B-TREE" not in plan, plan
        found = await store.find("tasks", companies=A, order=[("created", True)], limit=3)
        assert len(found) == 3 and found[0]["created"] >= found[1]["created"] >= found[2]["created"]
    finally:
        await store.close()


async def test_sqlite_equality_uses_the_key_column(sqlite_path: str) -> None:
    store = SqliteStore(sqlite_path)
    await store.open()
    try:
        await store.ensure_indexes("tasks", [Index(("project",)), Index(("created",))])
        plan = _plan(store, "tasks", Eq("project", "p1"))
        assert "SEARCH tasks USING INDEX kx:tasks:project (k:project=? AND company=?)" in plan, plan
        # a second store on the file learns the layout from the file itself
        other = SqliteStore(sqlite_path)
        await other.open()
        await other.count("tasks", companies=A)
        assert other._layouts["tasks"].keys.keys() == {"project", "created"}
        await other.close()
    finally:
        await store.close()


async def test_sqlite_rows_written_without_the_adapter_are_found(sqlite_path: str) -> None:
    """Key columns are generated from the document, so rows written by a bulk loader, another
    process or an older version are indexed like the adapter's own."""
    store = SqliteStore(sqlite_path)
    await store.open()
    try:
        await store.ensure_indexes("tasks", [Index(("status",)), Index(("created",))])
        await _fill_tasks(store, 20, rare_every=7)
        found = await store.find("tasks", companies=A, where=In("status", ("rare",)), order=[("created", True)], limit=2)
        assert [d["id"] for d in found] == ["t00014", "t00007"]
        doc = found[0]
        store._db().execute("UPDATE tasks SET doc = ? WHERE id = ?", (orjson.dumps({**doc, "status": "done"}).decode(), doc["id"]))
        assert await store.count("tasks", companies=A, where=Eq("status", "rare")) == 2
    finally:
        await store.close()


async def test_sqlite_array_values_in_a_key_field(sqlite_path: str) -> None:
    """While a key field holds scalars only, its filters compare the column; once some row holds an
    array there, array rows are also tested element by element."""
    store = SqliteStore(sqlite_path)
    await store.open()
    try:
        await store.ensure_indexes("things", [Index(("tag",)), Index(("n",))])
        await store.insert("things", {"id": "s", "company": "A", "tag": "x", "n": 5})
        await store.insert("things", {"id": "b", "company": "A", "tag": True, "n": "5"})
        with store._transaction():
            assert store._arrays("things", ["tag", "n"]) == frozenset()
        assert [d["id"] for d in await store.find("things", companies=A, where=Eq("tag", "x"))] == ["s"]
        assert [d["id"] for d in await store.find("things", companies=A, where=Eq("tag", True))] == ["b"]
        assert [d["id"] for d in await store.find("things", companies=A, where=Range("n", gte=5))] == ["s"]
        await store.insert("things", {"id": "a", "company": "A", "tag": ["y", "x", True], "n": [1, 9]})
        with store._transaction():
            assert store._arrays("things", ["tag", "n"]) == {"tag", "n"}
        assert [d["id"] for d in await store.find("things", companies=A, where=Eq("tag", "x"))] == ["a", "s"]
        assert [d["id"] for d in await store.find("things", companies=A, where=Eq("tag", True))] == ["a", "b"]
        assert [d["id"] for d in await store.find("things", companies=A, where=NotIn("tag", ("y",)))] == ["b", "s"]
        assert [d["id"] for d in await store.find("things", companies=A, where=Range("n", gte=5))] == ["a", "s"]
    finally:
        await store.close()


async def test_sqlite_remembered_filters_tell_true_from_one(sqlite_path: str) -> None:
    """Compiled filters are remembered: Eq(n, 1) and Eq(n, True) are equal as Python values, yet
    select different rows, on a key field and on a plain one, asked in either order, again and again."""
    store = SqliteStore(sqlite_path)
    await store.open()
    try:
        await store.ensure_indexes("things", [Index(("n",))])
        await store.insert("things", {"id": "one", "company": "A", "n": 1, "m": 1})
        await store.insert("things", {"id": "yes", "company": "A", "n": True, "m": True})
        for _ in range(2):
            for field in ("n", "m"):
                assert [d["id"] for d in await store.find("things", companies=A, where=Eq(field, True))] == ["yes"]
                assert [d["id"] for d in await store.find("things", companies=A, where=Eq(field, 1))] == ["one"]
                assert [d["id"] for d in await store.find("things", companies=A, where=In(field, (1.0,)))] == ["one"]
        await store.insert("things", {"id": "two", "company": "A", "n": 1, "m": 1})
        assert [d["id"] for d in await store.find("things", companies=A, where=Eq("n", 1))] == ["one", "two"]
    finally:
        await store.close()


# the DDL of the previous layout: expression indexes plus array-marker partial indexes
PREVIOUS_LAYOUT = [
    "CREATE TABLE tasks (id TEXT PRIMARY KEY, company TEXT NOT NULL, rev INTEGER NOT NULL, doc TEXT NOT NULL)",
    """CREATE INDEX "ix:tasks:status" ON "tasks" (json_extract(doc, '$."status"'))""",
    """CREATE INDEX "ty:tasks:status" ON "tasks" (json_type(doc, '$."status"')) WHERE json_type(doc, '$."status"') = 'array'""",
    """CREATE INDEX "ix:tasks:created" ON "tasks" (json_extract(doc, '$."created"'))""",
    """CREATE INDEX "ty:tasks:created" ON "tasks" (json_type(doc, '$."created"')) WHERE json_type(doc, '$."created"') = 'array'""",
    """CREATE UNIQUE INDEX "ux:tasks:company,name" ON "tasks" (company, json_extract(doc, '$."name"')) """
    """WHERE company IS NOT NULL AND json_extract(doc, '$."name"') IS NOT NULL""",
]


async def test_sqlite_opens_a_file_of_the_previous_layout(sqlite_path: str) -> None:
    db = sqlite3.connect(sqlite_path, isolation_level=None)
    for statement in PREVIOUS_LAYOUT:
        db.execute(statement)
    docs = [{**doc, "rev": 1} for doc in FILTER_DOCS]
    for doc in docs:
        db.execute("INSERT INTO tasks (id, company, rev, doc) VALUES (?, ?, 1, ?)", (doc["id"], doc["company"], orjson.dumps(doc).decode()))
    db.close()

    store = SqliteStore(sqlite_path)
    await store.open()
    try:
        assert await store.get("tasks", "d1", companies=A) == docs[0]
        before = {name: [d["id"] for d in await store.find("tasks", companies=A, where=where)] for name, where, *_ in FILTERS}
        await store.ensure_indexes("tasks", [Index(("status",)), Index(("created",)), Index(("company", "name"), unique=True)])
        names = {row[0] for row in store._db().execute("SELECT name FROM sqlite_master WHERE type = 'index'")}
        assert {"kx:tasks:status", "kx:tasks:created", "ux:tasks:company,name"} <= names
        assert not {"ix:tasks:status", "ty:tasks:status", "ix:tasks:created", "ty:tasks:created"} & names
        after = {name: [d["id"] for d in await store.find("tasks", companies=A, where=where)] for name, where, *_ in FILTERS}
        assert after == before
        order = [("created", True)]
        assert [d["id"] for d in await store.find("tasks", companies=A, order=order, limit=2)] == ["d5", "d4"]
        with pytest.raises(DuplicateKey):
            await store.insert("tasks", {"id": "d9", "company": "A", "name": "Alpha"})
    finally:
        await store.close()


async def test_sqlite_index_covers_key_fields_declared_later(sqlite_path: str) -> None:
    store = SqliteStore(sqlite_path)
    await store.open()
    try:
        await store.ensure_indexes("tasks", [Index(("status",))])
        await store.insert("tasks", {"id": "t", "company": "A", "status": "s", "project": "p"})

        def indexes() -> dict[str, tuple[int, str]]:
            rows = store._db().execute("SELECT name, rootpage, sql FROM sqlite_master WHERE type = 'index'")
            return {name: (root, sql) for name, root, sql in rows if name.startswith("kx:")}

        first = indexes()
        await store.ensure_indexes("tasks", [Index(("status",))])
        assert indexes() == first  # nothing rebuilt
        await store.ensure_indexes("tasks", [Index(("project",))])
        now = indexes()
        assert set(now) == {"kx:tasks:status", "kx:tasks:project"}
        assert '"k:project"' in now["kx:tasks:status"][1]  # rebuilt to cover the new key field
        assert [d["id"] for d in await store.find("tasks", companies=A, where=And((Eq("status", "s"), Eq("project", "p"))))] == ["t"]
    finally:
        await store.close()


async def test_sqlite_find_survives_an_index_rebuilt_elsewhere(sqlite_path: str) -> None:
    store = SqliteStore(sqlite_path)
    await store.open()
    try:
        await store.ensure_indexes("tasks", [Index(("status",)), Index(("created",))])
        await _fill_tasks(store, 50, rare_every=10)
        other = sqlite3.connect(sqlite_path, isolation_level=None)
        other.execute('DROP INDEX "kx:tasks:created"')
        other.close()
        found = await store.find("tasks", companies=A, where=Eq("status", "rare"), order=[("created", True)], limit=2)
        assert [d["id"] for d in found] == ["t00040", "t00030"]
    finally:
        await store.close()


# --- MongoDB -----------------------------------------------------------------------------------


@asynccontextmanager
async def driver_socket_leak_expected():
    """PyMongo 4.20 leaks one socket when a client closes while its monitor is connecting to a dead
    server (``pool_shared._async_create_connection`` closes the socket on OSError and timeouts but not
    on cancellation). Only the dead-server tests close clients that way; the leaked sockets are
    collected here, where their ResourceWarning is expected, instead of failing a later test."""
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ResourceWarning)
        try:
            yield
        finally:
            await asyncio.sleep(0.05)
            gc.collect()


async def test_mongo_unreachable_server_is_unavailable() -> None:
    store = MongoStore(f"mongodb://127.0.0.1:{free_port()}/?directConnection=true", serverSelectionTimeoutMS=300)
    async with driver_socket_leak_expected():
        with pytest.raises(StoreUnavailable):
            await store.open()
        await store.close()


async def test_mongo_server_going_away_is_unavailable(tmp_path: Path) -> None:
    proc, url = start_nx(tmp_path)
    try:
        async with driver_socket_leak_expected():
            store = MongoStore(url, database="gone", serverSelectionTimeoutMS=500)
            await store.open()
            await store.insert("things", {"id": "x", "company": "A"})
            stop_nx(proc)
            with pytest.raises(StoreUnavailable):
                await store.get("things", "x", companies=A)
            with pytest.raises(StoreUnavailable):
                await store.insert("things", {"id": "y", "company": "A"})
            await store.close()
    finally:
        stop_nx(proc)


async def test_mongo_database_name(nx_url: str) -> None:
    named = MongoStore(nx_url.replace("/?", "/fromurl?"))
    default = MongoStore(nx_url)
    explicit = MongoStore(nx_url.replace("/?", "/fromurl?"), database="explicit")
    for store, expected in ((named, "fromurl"), (default, "specgate"), (explicit, "explicit")):
        await store.open()
        assert store.database_name == expected
        await store.close()


async def test_mongo_escaped_keys_come_back_through_get_and_projected_find(nx_url: str) -> None:
    """Keys MongoDB cannot hold as they are (``$``, ``.``, NUL, and ``%``, the escape itself) come back
    intact from every read; only a document that has one carries the mark that asks for decoding, and
    a key that is a bare ``%`` is stored escaped, never taken for that mark."""
    store = MongoStore(nx_url, database="escaped_keys")
    await store.open()
    try:
        odd = {"a.b": 1, "$x": {"c.d": [{"%": 2, "e$": 3}]}, "n\x00ul": 4, "%": 5, "100%2E": 6}
        await store.insert("things", {"id": "odd", "company": "A", "params": odd})
        await store.insert("things", {"id": "plain", "company": "A", "params": {"lr": 1, "batch-size": 2}})
        raw = {d["_id"]: d for d in await store._db["things"].find({}).to_list()}
        assert "%" in raw["odd"] and "%" not in raw["plain"]
        assert raw["odd"]["params"]["%25"] == 5 and "a%2Eb" in raw["odd"]["params"]
        assert raw["plain"]["params"] == {"lr": 1, "batch-size": 2}
        assert (await store.get("things", "odd", companies=A))["params"] == odd
        assert await store.get("things", "odd", companies=A, fields=("params",)) == {"id": "odd", "params": odd}
        found = await store.find("things", companies=A, fields=("params",))
        assert sorted(found, key=lambda d: d["id"]) == [{"id": "odd", "params": odd}, {"id": "plain", "params": {"lr": 1, "batch-size": 2}}]
        assert "%" not in await store.get("things", "odd", companies=A)
    finally:
        await store.drop_database()
        await store.close()


async def test_mongo_stores_id_as_underscore_id(nx_url: str) -> None:
    store = MongoStore(nx_url, database="underscore_id")
    await store.open()
    try:
        await store.insert("things", {"id": "x1", "company": "A", "v": 1})
        raw = await store._db["things"].find_one({"_id": "x1"})
        assert raw == {"_id": "x1", "company": "A", "v": 1, "rev": 1}
        assert await store.find("things", companies=A, where=Eq("id", "x1"), fields=("v",)) == [{"id": "x1", "v": 1}]
    finally:
        await store.drop_database()
        await store.close()
