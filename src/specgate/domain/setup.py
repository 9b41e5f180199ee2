"""The indexes the domain's queries need, created at start-up on whichever store is configured."""

from __future__ import annotations

from specgate.adapters.ports import DocumentStore, Index

INDEXES: dict[str, list[Index]] = {
    # one name per company: concurrent creates in several gateway processes cannot both win
    "projects": [Index(("company", "name"), unique=True), Index(("parent",)), Index(("path",)), Index(("last_update",))],
    "tasks": [
        Index(("project",)),
        Index(("status",)),
        Index(("name",)),
        Index(("last_update",)),
        Index(("created",)),
        Index(("parent",)),
        Index(("type",)),
    ],
}


async def prepare(store: DocumentStore) -> None:
    for collection, indexes in INDEXES.items():
        await store.ensure_indexes(collection, indexes)
