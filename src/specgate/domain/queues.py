"""Queues: metadata in the document store (collection ``queues``), contents in the queue backend.

A queue document holds name, tags, metadata and times; the ordered entries live only in Redis, so
every answer that shows entries reads them from there. The queue named ``default`` of a company, with
system tag ``default``, is created at first start; ``tasks.enqueue`` without a queue relies on it.
"""

from __future__ import annotations

import time

import uuid
from typing import Any

from specgate._generated import errors as E
from specgate.adapters.ports import DocumentStore, DuplicateKey, Eq, In, NotIn, QueueBackend
from specgate.core.clock import now_iso
from specgate.core.errors import ApiError

from . import queries
from .identity import Identity

QUEUES = "queues"
DEFAULT_TAG = "default"
HIDDEN_TAGS = ("k8s-glue",)
SPEC = queries.QuerySpec(pattern=("name",), lists=("id", "tags", "system_tags"), list_prefixes=("metadata.",))


def _check_tags(data: dict) -> None:
    for field in ("tags", "system_tags"):
        for tag in data.get(field) or ():
            if tag.startswith("__$"):
                raise ApiError(E.FIELDS_VALUE_ERROR, "tags may not start with __$", field=field, value=tag)


def _name(raw: str) -> str:
    name = (raw or "").strip()
    if len(name) < 3:
        raise ApiError(E.DATA_VALIDATION_ERROR, "queue name must have at least 3 characters", name=raw)
    return name


TOUCH_EVERY = 1.0  # seconds between two last_update bumps of one queue
_TOUCHED: dict[str, float] = {}  # queue id → when this process last bumped it

class Queues:
    def __init__(self, store: DocumentStore, backend: QueueBackend):
        self.store, self.backend = store, backend

    # --- metadata ------------------------------------------------------------------------------

    async def create(self, caller: Identity, data: dict, *, queue_id: str | None = None) -> str:
        _check_tags(data)
        now = now_iso()
        doc = {
            "id": queue_id or uuid.uuid4().hex,
            "company": caller.company,
            "user": caller.user,
            "name": _name(data["name"]),
            "display_name": data.get("display_name"),
            "tags": sorted(set(data.get("tags") or [])),
            "system_tags": sorted(set(data.get("system_tags") or [])),
            "metadata": data.get("metadata") or {},
            "created": now,
            "last_update": now,
        }
        try:
            await self.store.insert(QUEUES, doc)
        except DuplicateKey:
            raise ApiError(E.EXPECTED_UNIQUE_DATA, "a queue with this name already exists", name=doc["name"]) from None
        return doc["id"]

    async def ensure_default(self, caller: Identity) -> None:
        """The company's ``default`` queue, created once (race-safe through a fixed id and the unique name)."""
        found = await self.store.find(QUEUES, companies=[caller.company], where=Eq("system_tags", DEFAULT_TAG), limit=1)
        if found:
            return
        fixed = uuid.uuid5(uuid.NAMESPACE_URL, f"specgate:default-queue:{caller.company}").hex
        try:
            await self.create(caller, {"name": "default", "system_tags": [DEFAULT_TAG]}, queue_id=fixed)
        except ApiError as e:
            if e.code is not E.EXPECTED_UNIQUE_DATA:
                raise

    async def load(self, company: str, queue_id: str) -> dict:
        doc = await self.store.get(QUEUES, queue_id, companies=[company])
        if doc is None:
            raise ApiError(E.INVALID_QUEUE_ID, id=queue_id, company=company)
        return doc

    async def by_name(self, company: str, name: str) -> dict | None:
        found = await self.store.find(QUEUES, companies=[company], where=Eq("name", name), limit=1)
        return found[0] if found else None

    async def default(self, company: str) -> dict:
        found = await self.store.find(QUEUES, companies=[company], where=Eq("system_tags", DEFAULT_TAG), limit=3)
        if not found:
            raise ApiError(E.NO_DEFAULT_QUEUE)
        if len(found) > 1:
            raise ApiError(E.MULTIPLE_DEFAULT_QUEUES, queues=[q["id"] for q in found])
        return found[0]

    async def update(self, caller: Identity, queue_id: str, data: dict) -> dict:
        doc = await self.load(caller.company, queue_id)
        _check_tags(data)
        fields: dict[str, Any] = {}
        if "name" in data:
            fields["name"] = _name(data["name"])
        for key in ("tags", "system_tags"):
            if key in data:
                fields[key] = sorted(set(data[key]))
        for key in ("metadata", "display_name"):
            if key in data:
                fields[key] = data[key]
        if not fields:
            return {"updated": 0, "fields": {}}
        fields["last_update"] = now_iso()
        doc.update(fields)
        try:
            saved = await self.store.replace(QUEUES, doc, expected_rev=doc["rev"])
        except DuplicateKey:
            raise ApiError(E.EXPECTED_UNIQUE_DATA, "a queue with this name already exists", name=fields.get("name")) from None
        if saved is None:
            return await self.update(caller, queue_id, data)  # changed meanwhile: apply to the fresh copy
        return {"updated": 1, "fields": fields}

    async def touch(self, company: str, queue_id: str) -> None:
        """Bump ``last_update`` (push, pop, removal) at most once a second per queue and process: it was a
        store read and a compare-and-swap on every enqueue and pop. Losing a race to another bump is fine."""
        now = time.monotonic()
        if now - _TOUCHED.get(queue_id, -1.0) < TOUCH_EVERY:
            return
        _TOUCHED[queue_id] = now
        if len(_TOUCHED) > 10_000:
            _TOUCHED.clear()
        doc = await self.store.get(QUEUES, queue_id, companies=[company])
        if doc is not None:
            doc["last_update"] = now_iso()
            await self.store.replace(QUEUES, doc, expected_rev=doc["rev"])

    # --- answers -------------------------------------------------------------------------------

    async def render(self, doc: dict, max_entries: int | None = None, paths: list[str] | None = None) -> dict:
        out = {k: v for k, v in doc.items() if k != "rev" and v is not None}
        if paths is None or any(p.split(".")[0] == "entries" for p in paths):
            if max_entries is not None:  # Redis takes 64-bit indexes; 0 or less asks for no limit, as before
                max_entries = min(max(max_entries, 0), 2**31) or None
            entries = await self.backend.entries(doc["id"], max_entries)
            out["entries"] = [{"task": t, "added": a} for t, a in entries]
        return queries.pick(out, paths) if paths else out

    async def get_all(self, caller: Identity, data: dict) -> dict:
        extra = []
        if not (data.get("search_hidden") or data.get("id") or data.get("name")):
            extra.append(NotIn("system_tags", HIDDEN_TAGS))
        query = queries.build(data, SPEC, extra)
        docs = await self.store.find(
            QUEUES, companies=[caller.company], where=query.where, order=query.order,
            skip=query.skip, limit=query.limit, fields=query.fields and [*query.fields, "id"],
        )
        limit = data.get("max_task_entries")
        out = {"queues": [await self.render(d, limit, query.projection) for d in docs]}
        if query.scroll is not None:
            out["scroll_id"] = queries.encode_scroll(query.skip + len(docs))
        return out

    # --- contents ------------------------------------------------------------------------------

    async def remove_everywhere(self, company: str, task_id: str, keep: str | None = None) -> int:
        """Take a task out of every queue of the company but ``keep``; how many entries went."""
        removed = 0
        for q in await self.store.find(QUEUES, companies=[company], fields=["id"]):
            if q["id"] != keep and await self.backend.remove(q["id"], task_id):
                removed += 1
        return removed

    async def metrics(self, caller: Identity, queue_ids: list[str] | None) -> dict:
        """Current length and average waiting time per queue (history is not recorded)."""
        from datetime import datetime

        where = In("id", tuple(queue_ids)) if queue_ids else None
        now = datetime.now().astimezone()
        found = []
        for q in await self.store.find(QUEUES, companies=[caller.company], where=where, order=[("name", False)]):
            entries = await self.backend.entries(q["id"])
            waits = [(now - datetime.fromisoformat(a)).total_seconds() for _, a in entries if a]
            found.append({
                "queue": q["id"],
                "dates": [int(now.timestamp())],
                "avg_waiting_times": [sum(waits) / len(waits) if waits else 0.0],
                "queue_lengths": [len(entries)],
            })
        return {"queues": found}
