"""Qarnot jobs: named groups of tasks (dialects.md §2.2, §2.4), per company in the document store.

A job document (collection ``qarnot_jobs``): ``{id (a UUID), company, user, name, shortname, state,
previousState?, stateTransitionTime, previousStateTransitionTime?, creationDate, lastModified,
useDependencies, tags, maxWallTime?, autoDeleteOnCompletion, completionTimeToLive}``; the store adds
``rev``. Answers call the id ``uuid`` and never carry ``company``/``user``/``rev``.

States: ``Active`` from creation; ``terminate`` cancels the job's running tasks and moves it to
``Terminating``, then a background step to ``Completed``. Deleting removes the job and its tasks
(a job with running tasks only with ``force``, which cancels them first).
"""

from __future__ import annotations

import uuid as uuidlib
from typing import Any

from specgate._generated import errors as E
from specgate.adapters.ports import DocumentStore, Eq, Index, NotIn
from specgate.core.errors import ApiError
from specgate.domain.identity import Identity

from . import qarnot_common as common
from .qarnot_common import both, compile_filter, mutate, not_found, order_of, set_state, settle_shortname, tag_filter, to_date

JOBS = "qarnot_jobs"
ACTIVE, TERMINATING, COMPLETED = "Active", "Terminating", "Completed"
INDEXES = [Index(("company", "shortname")), Index(("creationDate",))]
FILTER_FIELDS = {
    "Uuid": "id", "Name": "name", "Shortname": "shortname", "State": "state", "Tags": "tags",
    "CreationDate": "creationDate", "LastModified": "lastModified", "UseDependencies": "useDependencies",
}  # fmt: skip
SORTABLE = {"creationDate": "creationDate", "name": "name", "state": "state"}
SETTLE_DELAY = 0.3  # Terminating → Completed
HIDDEN = ("id", "company", "user", "rev")


def present(doc: dict[str, Any]) -> dict[str, Any]:
    out = {k: v for k, v in doc.items() if k not in HIDDEN}
    out["uuid"] = doc["id"]
    out.setdefault("tags", [])
    return out


class Jobs:
    def __init__(self, store: DocumentStore, jobs: Any = None):
        self.store, self.background = store, jobs

    async def create(self, identity: Identity, data: dict[str, Any]) -> dict[str, Any]:
        if data.get("poolUuid"):
            raise ApiError(E.VALIDATION_ERROR, "pools are not served: a job cannot name one", field="poolUuid")
        if "maxWallTime" in data and common.timespan_seconds(data["maxWallTime"]) is None:
            raise ApiError(E.VALIDATION_ERROR, "maxWallTime must be [d.]hh:mm:ss", field="maxWallTime")
        await common.ensure_indexes(self.store, JOBS, INDEXES)
        id, moment = str(uuidlib.uuid4()), common.now()
        stamp = to_date(moment)
        shortname = data.get("shortname") or id
        await self._unique_shortname(identity.company, shortname, id)
        doc = {
            "id": id,
            "company": identity.company,
            "user": identity.user,
            "name": data["name"],
            "shortname": shortname,
            "state": ACTIVE,
            "stateTransitionTime": stamp,
            "creationDate": stamp,
            "lastModified": stamp,
            "useDependencies": bool(data.get("useDependencies", False)),
            "tags": list(data.get("tags") or []),
            "autoDeleteOnCompletion": bool(data.get("autoDeleteOnCompletion", False)),
            "completionTimeToLive": data.get("completionTimeToLive") or "00:00:00",
        }
        if data.get("maxWallTime"):
            doc["maxWallTime"] = data["maxWallTime"]
        await self.store.insert(JOBS, doc)
        if shortname != id:
            await self._settle_shortname(identity.company, doc)
        return doc

    async def _unique_shortname(self, company: str, shortname: str, id: str) -> None:
        clash = await self.store.find(JOBS, companies=[company], where=Eq("shortname", shortname), limit=1, fields=["id"])
        if clash and clash[0]["id"] != id:
            raise ApiError(E.RESOURCE_CONFLICT, f"a job named {shortname!r} exists", field="shortname")

    async def _settle_shortname(self, company: str, doc: dict[str, Any]) -> None:
        await settle_shortname(self.store, JOBS, "job", company, doc)

    async def get(self, company: str, id: str) -> dict[str, Any]:
        doc = await self.store.get(JOBS, id, companies=[company])
        if doc is None:
            raise not_found("job", id)
        return doc

    async def list(self, company: str, tags: list[str] | None) -> list[dict[str, Any]]:
        return await self.store.find(JOBS, companies=[company], where=tag_filter(tags), order=[("creationDate", False)])

    async def page(self, company: str, data: dict[str, Any]) -> dict[str, Any]:
        where = compile_filter(data["filter"], FILTER_FIELDS) if data.get("filter") else None
        window = data.get("_page") or {"offset": 0, "limit": 50}
        items = await self.store.find(
            JOBS, companies=[company], where=where, order=order_of(data, SORTABLE),
            skip=window["offset"], limit=window["limit"],
        )  # fmt: skip
        total = await self.store.count(JOBS, companies=[company], where=where)
        return {"items": items, "total": total}

    async def terminate(self, company: str, id: str) -> None:
        from .qarnot_tasks import Tasks

        def change(doc: dict[str, Any]) -> bool:
            if doc["state"] != ACTIVE:
                raise ApiError(E.FORBIDDEN_STATE, f"job {id} is {doc['state']}, not Active")
            set_state(doc, TERMINATING, common.now())
            return True

        if await mutate(self.store, JOBS, company, id, change) is None:
            raise not_found("job", id)
        await Tasks(self.store, self.background).cancel_all(company, id)
        await self._submit({"kind": "job", "company": company, "id": id, "from": TERMINATING, "to": COMPLETED})

    async def delete(self, company: str, id: str, force: bool) -> None:
        from .qarnot_tasks import ENDED, TASKS, Tasks

        await self.get(company, id)
        running = await self.store.count(TASKS, companies=[company], where=both(Eq("jobUuid", id), NotIn("state", ENDED)))
        if running and not force:
            raise ApiError(E.FORBIDDEN_STATE, f"job {id} still has {running} running task(s); delete with force to abort them")
        await Tasks(self.store, self.background).delete_of_job(company, id)
        await self.store.delete(JOBS, id, companies=[company])

    async def settle(self, company: str, id: str, source: str, target: str) -> None:
        """The background step Terminating → Completed."""

        def change(doc: dict[str, Any]) -> bool:
            if doc["state"] != source:
                return False
            set_state(doc, target, common.now())
            return True

        await mutate(self.store, JOBS, company, id, change)

    async def _submit(self, payload: dict[str, Any]) -> None:
        if self.background is not None:
            await self.background.submit("qarnot.advance", payload, delay=SETTLE_DELAY)
