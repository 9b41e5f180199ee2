"""Start-up and upkeep of the store: the indexes the domain's queries need (created on whichever store
is configured), the first company, and the queue repairs run at start-up and in the background."""

from __future__ import annotations

from datetime import datetime, timedelta, timezone
from typing import Any

from specgate.adapters.ports import DocumentStore, Index
from specgate.core.clock import to_iso
from specgate.core.progress import Progress

from .identity import Identity

INDEXES: dict[str, list[Index]] = {
    "queues": [Index(("company", "name"), unique=True)],
    # One name per company: concurrent creates in several gateway processes cannot both win. Array
    # fields (path, system_tags) get no index: nx-27017, the test server, then misses equality matches.
    "projects": [Index(("company", "name"), unique=True), Index(("parent",)), Index(("last_update",))],
    "events": [Index(("task", "type", "timestamp"))],
    "tasks": [
        Index(("project",)),
        Index(("status",)),
        Index(("name",)),
        # with the tie-break of every order: a page sorted by time is read in index order, no sort
        Index(("last_update", "id")),
        Index(("created", "id")),
        Index(("parent",)),
        Index(("type",)),
        # every list call filters on system_tags (hidden, -archived) and most list tags: carried in
        # the SQLite indexes (a page of such fields is read from them); filter_only: none in MongoDB
        Index(("system_tags",), filter_only=True),
        Index(("tags",), filter_only=True),
    ],
}


async def prepare(store: DocumentStore) -> None:
    for collection, indexes in INDEXES.items():
        await store.ensure_indexes(collection, indexes)


async def provision_company(services: Any, company: str, user: str) -> None:
    """What a company needs before its first call: the ``default`` queue."""
    from .queues import Queues

    await Queues(services.store, services.queues).ensure_default(Identity(user, company, "admin"))


async def redeliver_popped(services: Any, after: float) -> int:
    """``task_queueing.redeliver_unstarted`` for every company with credentials: entries popped more
    than ``after`` seconds ago and never started."""
    from .queues import Queues
    from .task_queueing import redeliver_unstarted

    queues = Queues(services.store, services.queues)
    before = to_iso(datetime.now(timezone.utc) - timedelta(seconds=after))
    total = 0
    for company in await _companies(services.store):
        total += await redeliver_unstarted(services.store, queues, company, before)
    return total


async def _companies(store: DocumentStore) -> list[str]:
    """The companies that have credentials: those whose queues the repairs look after."""
    from .accounts import CREDENTIALS
    from .identity import SYSTEM_COMPANY

    return await store.distinct(CREDENTIALS, "user_company", companies=[SYSTEM_COMPANY])


async def repair_queues(services: Any) -> dict[str, int]:
    """Reconcile queue contents with task statuses for every company that has credentials (run at
    start-up and by ``specgate repair-queues``): a crash between the two writes of an enqueue loses
    nothing."""
    from .queues import Queues
    from .task_queueing import reconcile

    totals = {"companies": 0, "restored": 0, "dropped": 0}
    queues = Queues(services.store, services.queues)
    companies = await _companies(services.store)
    progress = Progress("reconciling queues of companies", len(companies))
    for company in companies:
        found = await reconcile(services.store, queues, company)
        totals["companies"] += 1
        totals["restored"] += found["restored"]
        totals["dropped"] += found["dropped"]
        progress.step(company)
    if companies:
        progress.close()
    return totals
