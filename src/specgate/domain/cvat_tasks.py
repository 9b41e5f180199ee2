"""CVAT tasks over the document store: integer ids per company, users numbered per company, TaskRead.

CVAT numbers everything with integers (tasks, users, labels, data), while specgate's documents have
string ids. Each company keeps its own sequences in small counter documents (collection
``cvat_counters``, id ``<sequence>:<company>``, field ``value``) advanced by compare-and-swap, so a
number is never handed out twice nor reused after a delete.

A task document (collection ``cvat_tasks``): ``{id: "<number>:<company>", company, number, name,
owner {number, username, first_name, last_name}, owner_name, assignee? (same shape), assignee_name?,
assignee_updated_date?, bug_tracker, overlap?, segment_size, initial_replicas, consensus_replicas,
status, labels [{id, name, color, type, attributes, ...}], subset, target_storage?, source_storage?,
created_date, updated_date, data? {number, size, image_quality, chunk_size, frames}, jobs_count,
pending_request?}``; the store adds ``rev``. ``owner_name``/``assignee_name`` are flat copies of the user
names for filtering and sorting.

A user's number (collection ``cvat_users``, id ``<len(company)>:<company>:<user id>``) is given the first
time the user creates or is shown as the owner of something; the deterministic id makes two racing
first calls agree (the loser of the insert reads the winner's number).
"""

from __future__ import annotations

import copy
import re
from typing import Any, Sequence

from specgate._generated import errors as E
from specgate.adapters.ports import And, DocumentStore, DuplicateKey, Eq, Filter, Or, Regex
from specgate.core.clock import now_iso
from specgate.core.errors import ApiError

from .identity import Identity

TASKS, USERS, COUNTERS = "cvat_tasks", "cvat_users", "cvat_counters"
STATUSES = ("annotation", "validation", "completed")
SORTABLE = {
    "id": "number", "name": "name", "owner": "owner_name", "assignee": "assignee_name", "status": "status",
    "subset": "subset", "mode": "mode", "dimension": "dimension", "created_date": "created_date",
    "updated_date": "updated_date",
}  # fmt: skip
SIMPLE_FILTERS = {"name": "name", "owner": "owner_name", "assignee": "assignee_name", "status": "status",
                  "subset": "subset", "mode": "mode", "dimension": "dimension"}  # fmt: skip
_USERNAME_BAD = re.compile(r"[^\w.@+-]")
_RETRIES = 50


# --- errors in CVAT's words -----------------------------------------------------------------------


def not_found(what: str = "Not found.") -> ApiError:
    return ApiError(E.RESOURCE_NOT_FOUND, text=what)


def field_error(field: str, message: str) -> ApiError:
    """A 400 the CVAT dialect renders as ``{"<field>": ["<message>"]}`` (the message kept verbatim)."""
    error = ApiError(E.VALIDATION_ERROR, text=message)
    error.data["field"] = field  # set after construction: the text stays exactly ``message``
    return error


def bad_request(message: str) -> ApiError:
    """A 400 rendered as ``{"detail": "<message>"}``."""
    return ApiError(E.BAD_REQUEST, text=message)


# --- sequences ----------------------------------------------------------------------------------------


async def next_number(store: DocumentStore, company: str, sequence: str, count: int = 1) -> int:
    """Reserve ``count`` numbers of a company's sequence; returns the last one (the first is last - count + 1)."""
    doc_id = f"{sequence}:{company}"
    for _ in range(_RETRIES):
        doc = await store.get(COUNTERS, doc_id, companies=[company])
        if doc is None:
            try:
                await store.insert(COUNTERS, {"id": doc_id, "company": company, "value": count})
                return count
            except DuplicateKey:
                continue  # another call created it first: advance it like everyone else
        rev = doc.pop("rev")
        doc["value"] = int(doc["value"]) + count
        if await store.replace(COUNTERS, doc, expected_rev=rev) is not None:
            return doc["value"]
    raise ApiError(E.RESOURCE_CONFLICT, text="Too many concurrent writes; try again.")


# --- users -----------------------------------------------------------------------------------------


def username_of(identity: Identity) -> str:
    """A CVAT-valid user name (letters, digits and ``.@+-_``, at most 150) for a specgate user."""
    name = _USERNAME_BAD.sub("_", (identity.user_name or "").strip())[:150]
    return name or _USERNAME_BAD.sub("_", identity.user)[:150] or "user"


class CvatUsers:
    def __init__(self, store: DocumentStore):
        self.store = store

    @staticmethod
    def _doc_id(company: str, user: str) -> str:
        return f"{len(company)}:{company}:{user}"

    async def of(self, identity: Identity) -> dict:
        """The caller's user record ``{number, user, username, first_name, last_name}``, numbering it on first use."""
        company, doc_id = identity.company, self._doc_id(identity.company, identity.user)
        doc = await self.store.get(USERS, doc_id, companies=[company])
        if doc is not None:
            return doc
        number = await next_number(self.store, company, "users")
        first, _, last = (identity.user_name or "").strip().partition(" ")
        doc = {
            "id": doc_id, "company": company, "user": identity.user, "number": number,
            "username": username_of(identity), "first_name": first[:150], "last_name": last.strip()[:150],
        }  # fmt: skip
        try:
            return await self.store.insert(USERS, doc)
        except DuplicateKey:
            found = await self.store.get(USERS, doc_id, companies=[company])
            if found is None:  # pragma: no cover - deleted between the two calls
                raise ApiError(E.RESOURCE_CONFLICT, text="Too many concurrent writes; try again.") from None
            return found

    async def by_number(self, company: str, number: int) -> dict | None:
        found = await self.store.find(USERS, companies=[company], where=Eq("number", number), limit=1)
        return found[0] if found else None


def user_summary(user: dict) -> dict:
    """What a task keeps of its owner or assignee."""
    return {k: user.get(k, "") for k in ("number", "username", "first_name", "last_name")}


# --- presentation ------------------------------------------------------------------------------------


def present_user(user: dict | None, base: str) -> dict | None:
    if not user:
        return None
    return {
        "url": f"{base}/users/{user['number']}", "id": user["number"], "username": user["username"],
        "first_name": user.get("first_name", ""), "last_name": user.get("last_name", ""),
    }  # fmt: skip


def present_storage(storage: dict | None) -> dict | None:
    if not storage:
        return None
    return {"location": storage.get("location", "local"), "cloud_storage_id": storage.get("cloud_storage_id")}


def present(doc: dict, base: str) -> dict:
    """A stored task as CVAT's TaskRead: every field present, null where there is nothing."""
    n, data = doc["number"], doc.get("data") or {}
    return {
        "url": f"{base}/tasks/{n}",
        "id": n,
        "name": doc["name"],
        "project_id": None,
        "project_name": None,
        "owner": present_user(doc.get("owner"), base),
        "assignee": present_user(doc.get("assignee"), base),
        "bug_tracker": doc.get("bug_tracker", ""),
        "created_date": doc["created_date"],
        "updated_date": doc["updated_date"],
        "overlap": doc.get("overlap"),
        "segment_size": doc.get("segment_size", 0),
        "initial_replicas": doc.get("initial_replicas", 1),
        "status": doc.get("status", "annotation"),
        "data_chunk_size": data.get("chunk_size"),
        "data_compressed_chunk_type": "imageset" if data else None,
        "data_original_chunk_type": "imageset" if data else None,
        "data_cloud_storage_id": None,
        "guide_id": None,
        "size": data.get("size", 0),
        "image_quality": data.get("image_quality", 70),
        "data": data.get("number"),
        "dimension": doc.get("dimension", "2d"),
        "mode": doc.get("mode", ""),
        "media_type": "image",
        "subset": doc.get("subset", ""),
        "organization": None,
        "organization_id": None,
        "target_storage": present_storage(doc.get("target_storage")),
        "source_storage": present_storage(doc.get("source_storage")),
        "jobs": {"count": doc.get("jobs_count", 0), "completed": 0, "validation": 0, "url": f"{base}/jobs?task_id={n}"},
        "labels": {"url": f"{base}/labels?task_id={n}"},
        "assignee_updated_date": doc.get("assignee_updated_date"),
        "validation_mode": None,
    }


# --- labels ------------------------------------------------------------------------------------------

_LABEL_KEYS = ("name", "color", "type", "attributes", "svg", "sublabels")


def _label_fields(label: dict) -> dict:
    return {k: copy.deepcopy(label[k]) for k in _LABEL_KEYS if k in label and label[k] is not None}


def _check_unique(labels: Sequence[dict]) -> None:
    seen: set[str] = set()
    for label in labels:
        if label["name"] in seen:
            raise field_error("labels", f"Label '{label['name']}' is listed more than once.")
        seen.add(label["name"])


async def new_labels(store: DocumentStore, company: str, given: Sequence[dict]) -> list[dict]:
    """Labels of a new task, numbered in the company's label sequence."""
    for label in given:
        if not label.get("name"):
            raise field_error("labels", "Each label needs a name.")
        if label.get("deleted"):
            raise field_error("labels", "A new task cannot delete labels.")
    labels = [_label_fields(label) for label in given]
    _check_unique(labels)
    if labels:
        last = await next_number(store, company, "labels", len(labels))
        for offset, label in enumerate(labels):
            label["id"] = last - len(labels) + 1 + offset
            label.setdefault("type", "any")
            label.setdefault("attributes", [])
    return labels


async def patch_labels(store: DocumentStore, company: str, current: list[dict], given: Sequence[dict]) -> list[dict]:
    """CVAT's label update: each given label updates the stored one of the same number (or name),
    removes it with ``deleted: true``, or is added."""
    labels = copy.deepcopy(current)
    added: list[dict] = []
    for change in given:
        index = next(
            (i for i, label in enumerate(labels)
             if ("id" in change and label.get("id") == change["id"]) or ("id" not in change and label["name"] == change.get("name"))),
            None,
        )  # fmt: skip
        if index is None:
            if "id" in change:
                raise field_error("labels", f"Label {change['id']} is not a label of this task.")
            if change.get("deleted"):
                raise field_error("labels", f"Label '{change.get('name')}' is not a label of this task.")
            if not change.get("name"):
                raise field_error("labels", "A new label needs a name.")
            added.append(_label_fields(change))
        elif change.get("deleted"):
            labels.pop(index)
        else:
            labels[index].update(_label_fields(change))
    if added:
        last = await next_number(store, company, "labels", len(added))
        for offset, label in enumerate(added):
            label["id"] = last - len(added) + 1 + offset
            label.setdefault("type", "any")
            label.setdefault("attributes", [])
    labels += added
    _check_unique(labels)
    return labels


# --- the service -------------------------------------------------------------------------------------


def _storage(value: Any, field: str) -> dict | None:
    if value is None:
        return None
    location = value.get("location", "local")
    if location != "local":
        raise field_error(field, "Only the local location is available: no cloud storages are configured.")
    return {"location": "local"}


class CvatTasks:
    def __init__(self, store: DocumentStore):
        self.store = store
        self.users = CvatUsers(store)

    @staticmethod
    def doc_id(company: str, number: int) -> str:
        return f"{number}:{company}"

    async def get(self, company: str, number: int) -> dict:
        doc = await self.store.get(TASKS, self.doc_id(company, number), companies=[company])
        if doc is None:
            raise not_found()
        return doc

    async def _user(self, company: str, number: int, field: str) -> dict:
        user = await self.users.by_number(company, number)
        if user is None:
            raise field_error(field, f'Invalid pk "{number}" - object does not exist.')
        return user

    async def create(self, identity: Identity, data: dict) -> dict:
        company = identity.company
        if data.get("project_id") is not None:
            raise field_error("project_id", f'Invalid pk "{data["project_id"]}" - object does not exist.')
        if data.get("owner_id") is not None:
            owner = await self._user(company, data["owner_id"], "owner_id")
        else:
            owner = await self.users.of(identity)
        assignee = await self._user(company, data["assignee_id"], "assignee_id") if data.get("assignee_id") is not None else None
        target = _storage(data.get("target_storage"), "target_storage")
        source = _storage(data.get("source_storage"), "source_storage")
        labels = await new_labels(self.store, company, data.get("labels") or [])
        number = await next_number(self.store, company, "tasks")
        now = now_iso()
        doc: dict[str, Any] = {
            "id": self.doc_id(company, number), "company": company, "number": number, "name": data["name"],
            "owner": user_summary(owner), "owner_name": owner["username"],
            "bug_tracker": data.get("bug_tracker", ""), "overlap": data.get("overlap"),
            "segment_size": data.get("segment_size", 0), "initial_replicas": data.get("initial_replicas", 1),
            "consensus_replicas": data.get("consensus_replicas", 0), "status": "annotation", "labels": labels,
            "subset": data.get("subset", ""), "target_storage": target, "source_storage": source,
            "dimension": "2d", "mode": "", "created_date": now, "updated_date": now, "jobs_count": 0,
        }  # fmt: skip
        if assignee is not None:
            doc.update(assignee=user_summary(assignee), assignee_name=assignee["username"], assignee_updated_date=now)
        doc = {k: v for k, v in doc.items() if v is not None}
        try:
            return await self.store.insert(TASKS, doc)
        except DuplicateKey:  # pragma: no cover - the sequence never repeats a number
            raise ApiError(E.RESOURCE_CONFLICT, text="Task number already taken; try again.") from None

    async def list(self, company: str, data: dict, offset: int, limit: int) -> tuple[list[dict], int]:
        clauses: list[Filter] = []
        for param, field in SIMPLE_FILTERS.items():
            if data.get(param) not in (None, ""):
                clauses.append(Eq(field, data[param]))
        if data.get("project_id") is not None:
            return [], 0  # no task belongs to a project
        if data.get("search"):
            pattern = re.escape(data["search"])
            clauses.append(Or(tuple(Regex(f, pattern, ignore_case=True) for f in ("name", "subset", "owner_name", "assignee_name"))))
        where = None if not clauses else clauses[0] if len(clauses) == 1 else And(tuple(clauses))
        order = _order(data.get("sort") or "-id")
        total = await self.store.count(TASKS, companies=[company], where=where)
        if offset and offset >= total:
            raise not_found("Invalid page.")
        docs = await self.store.find(TASKS, companies=[company], where=where, order=order, skip=offset, limit=limit)
        return docs, total

    async def modify(self, company: str, number: int, change) -> dict:
        """Apply ``change(doc)`` (which may be async and may raise) with compare-and-swap, re-reading on a lost race."""
        for _ in range(_RETRIES):
            doc = await self.get(company, number)
            rev = doc.pop("rev")
            new = await change(copy.deepcopy(doc))
            new = {k: v for k, v in new.items() if v is not None}
            stored = await self.store.replace(TASKS, new, expected_rev=rev)
            if stored is not None:
                return stored
        raise ApiError(E.RESOURCE_CONFLICT, text="Too many concurrent writes; try again.")

    async def update(self, company: str, number: int, data: dict) -> dict:
        if data.get("project_id") is not None:
            raise field_error("project_id", f'Invalid pk "{data["project_id"]}" - object does not exist.')
        if data.get("organization_id") is not None:
            raise field_error("organization_id", f'Invalid pk "{data["organization_id"]}" - object does not exist.')
        owner = assignee = None
        if data.get("owner_id") is not None:
            owner = await self._user(company, data["owner_id"], "owner_id")
        if data.get("assignee_id") is not None:
            assignee = await self._user(company, data["assignee_id"], "assignee_id")
        if "owner_id" in data and data["owner_id"] is None:
            raise field_error("owner_id", "A task must have an owner.")
        for name in ("name", "bug_tracker", "subset"):
            if name in data and data[name] is None:
                raise field_error(name, "This field may not be null.")
        target = _storage(data.get("target_storage"), "target_storage") if "target_storage" in data else None
        source = _storage(data.get("source_storage"), "source_storage") if "source_storage" in data else None

        async def change(doc: dict) -> dict:
            now = now_iso()
            for name in ("name", "bug_tracker", "subset"):
                if name in data:
                    doc[name] = data[name]
            if owner is not None:
                doc.update(owner=user_summary(owner), owner_name=owner["username"])
            if "assignee_id" in data:
                before = (doc.get("assignee") or {}).get("number")
                if assignee is None:
                    doc.pop("assignee", None)
                    doc.pop("assignee_name", None)
                else:
                    doc.update(assignee=user_summary(assignee), assignee_name=assignee["username"])
                if before != data["assignee_id"]:
                    doc["assignee_updated_date"] = now
            if "target_storage" in data:
                doc["target_storage"] = target
            if "source_storage" in data:
                doc["source_storage"] = source
            if data.get("labels"):
                doc["labels"] = await patch_labels(self.store, company, doc.get("labels") or [], data["labels"])
            doc["updated_date"] = now
            return doc

        return await self.modify(company, number, change)

    async def delete(self, company: str, number: int) -> None:
        if not await self.store.delete(TASKS, self.doc_id(company, number), companies=[company]):
            raise not_found()


def _order(sort: str) -> list[tuple[str, bool]]:
    order = []
    for part in (p.strip() for p in sort.split(",")):
        if not part:
            continue
        descending, name = part.startswith("-"), part.lstrip("-")
        if name not in SORTABLE:
            raise field_error("sort", f"Unsupported sort field '{name}' (one of {', '.join(SORTABLE)}).")
        order.append((SORTABLE[name], descending))
    return order or [("number", True)]
