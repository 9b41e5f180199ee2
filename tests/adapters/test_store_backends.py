"""Backend-specific behaviour the contract suite cannot state in neutral terms: SQLite's file sharing
between processes and its pragmas, MongoDB's ``_id`` mapping and failure mapping."""

from __future__ import annotations

import asyncio
import gc
import subprocess
import sys
import textwrap
import warnings
from contextlib import asynccontextmanager
from pathlib import Path

import pytest

from specgate.adapters.mongo import MongoStore
from specgate.adapters.ports import Eq, Index, StoreUnavailable
from specgate.adapters.sqlite import SqliteStore, _field_sql, _where

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
        from specgate.adapters.ports import DuplicateKey

        with pytest.raises(DuplicateKey):
            await two.insert("things", {"id": "k", "company": "A"})
    finally:
        await one.close()
        await two.close()


WORKER = textwrap.dedent(
    """
    import asyncio, sys
    from specgate.adapters.sqlite import SqliteStore, _field_sql, _where

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


async def test_sqlite_list_queries_use_the_declared_indexes(sqlite_path: str) -> None:
    """The ORDER BY and unique-index expressions must be the very expressions the indexes were built on."""
    store = SqliteStore(sqlite_path)
    await store.open()
    try:
        await store.ensure_indexes("tasks", [Index(("created",)), Index(("company", "name"), unique=True)])
        # the statement find() runs for a typical list query
        cond, params = _where(A, Eq("status", "queued"))
        # (forced onto the index, which then must supply the order of the first key: whether the
        # planner picks it unforced depends on table statistics)
        sql = (
            f'SELECT doc FROM tasks INDEXED BY "ix:tasks:created" WHERE {cond} '
            f"ORDER BY {_field_sql('created')} DESC, id ASC LIMIT 50"
        )
        plan = " ".join(row[3] for row in store._db().execute("EXPLAIN QUERY PLAN " + sql, params))
        assert "USING INDEX ix:tasks:created" in plan and "RIGHT PART OF ORDER BY" in plan, plan
        names = {row[0] for row in store._db().execute("SELECT name FROM sqlite_master WHERE type = 'index'")}
        assert {"ix:tasks:created", "ux:tasks:company,name"} <= names
    finally:
        await store.close()


async def test_sqlite_filters_without_indexes_agree() -> None:
    """The contract's filter cases run with indexes (index narrowing on); here without."""
    store = SqliteStore(":memory:")
    await store.open()
    try:
        for doc in FILTER_DOCS:
            await store.insert("items", doc)
        for name, where, expected, *_ in FILTERS:
            found = [d["id"] for d in await store.find("items", companies=A, where=where, order=[("id", False)])]
            assert found == expected, name
            assert await store.count("items", companies=A, where=where) == len(expected), name
    finally:
        await store.close()


async def test_sqlite_equality_starts_from_the_index(sqlite_path: str) -> None:
    store = SqliteStore(sqlite_path)
    await store.open()
    try:
        await store.ensure_indexes("tasks", [Index(("project",)), Index(("created",))])
        cond, params = store._scope("tasks", A, Eq("project", "p1"))
        plan = " ".join(row[3] for row in store._db().execute(f"EXPLAIN QUERY PLAN SELECT doc FROM tasks WHERE {cond}", params))
        assert "INDEX ix:tasks:project" in plan and "INDEX ty:tasks:project" in plan, plan
        # a second store on the file learns the indexes from the file itself
        other = SqliteStore(sqlite_path)
        await other.open()
        await other.count("tasks", companies=A)
        assert other._indexed["tasks"] == {"project", "created"}
        await other.close()
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
