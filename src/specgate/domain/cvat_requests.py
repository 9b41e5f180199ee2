"""CVAT background requests (the ``rq_id`` pattern) and the one they run here: attaching data to a task.

A request document (collection ``cvat_requests``, id = the rq_id, a UUID): ``{id, company, status
(queued | started | finished | failed), message, progress, operation {type, target, task_id}, owner
{number, username}, created_date, started_date?, finished_date?, expiry_date?, params}``. ``params``
holds what the step needs (the data request) and is never shown.

Attaching data is two background steps (``start``: queued → started; ``finish``: the task gets its
frames and jobs, the request becomes finished or failed), so a polling client sees each state. While a
request is under way the task carries ``pending_request`` (its rq_id), which refuses a second attach.
Finished and failed requests stay readable for a day (``expiry_date``); expired ones are swept when the
company starts its next request.
"""

from __future__ import annotations

import math
import random
import re
import uuid
from datetime import datetime, timedelta, timezone
from typing import Any

from specgate.adapters.ports import DocumentStore, Range
from specgate.core.clock import now_iso, to_iso
from specgate.core.errors import ApiError

from .cvat_tasks import CvatTasks, bad_request, field_error, next_number, not_found

REQUESTS = "cvat_requests"
EXPIRY = timedelta(days=1)
DEFAULT_CHUNK = 72
DATA_KEYS = (
    "image_quality", "remote_files", "server_files", "server_files_exclude", "chunk_size", "start_frame",
    "stop_frame", "frame_filter", "sorting_method", "use_cache", "copy_data", "use_zip_chunks", "storage_method",
)  # fmt: skip
_FINAL = ("finished", "failed")


def present(doc: dict) -> dict:
    op = doc["operation"]
    return {
        "id": doc["id"],
        "status": doc["status"],
        "message": doc.get("message", ""),
        "progress": doc.get("progress"),
        "operation": {
            "type": op["type"], "target": op["target"], "project_id": None, "task_id": op.get("task_id"),
            "job_id": None, "org_id": None, "format": None, "function_id": None, "lightweight": None,
        },  # fmt: skip
        "created_date": doc["created_date"],
        "started_date": doc.get("started_date"),
        "finished_date": doc.get("finished_date"),
        "expiry_date": doc.get("expiry_date"),
        "owner": {"id": doc["owner"]["number"], "username": doc["owner"]["username"]},
        "result_url": None,
        "result_id": None,
    }


def _natural_key(name: str) -> list[Any]:
    return [int(part) if part.isdigit() else part.lower() for part in re.split(r"(\d+)", name)]


def select_frames(params: dict) -> list[str]:
    """The frames a data request makes: its files (minus exclusions), sorted, then start/stop/step."""
    files = list(params.get("remote_files") or params.get("server_files") or [])
    exclude = set(params.get("server_files_exclude") or [])
    files = [f for f in files if f not in exclude]
    method = params.get("sorting_method", "lexicographical")
    if method == "lexicographical":
        files.sort()
    elif method == "natural":
        files.sort(key=_natural_key)
    elif method == "random":
        random.shuffle(files)
    step = int((params.get("frame_filter") or "step=1").partition("=")[2] or 1)
    start = params.get("start_frame", 0)
    stop = params.get("stop_frame", len(files) - 1)
    return files[start : stop + 1 : step]


class CvatRequests:
    def __init__(self, store: DocumentStore):
        self.store = store
        self.tasks = CvatTasks(store)

    async def get(self, company: str, rq_id: str) -> dict:
        doc = await self.store.get(REQUESTS, rq_id, companies=[company])
        if doc is None:
            raise not_found()
        return doc

    async def start_data(self, identity: Any, number: int, data: dict) -> dict:
        """Check a data request, record it (queued) and mark the task as having one under way.
        The caller then schedules the ``start`` step."""
        company = identity.company
        if not data.get("remote_files") and not data.get("server_files"):
            raise field_error(
                "remote_files", "Give remote_files or server_files: uploading local files is not supported by this server."
            )  # fmt: skip
        if data.get("remote_files") and data.get("server_files"):
            raise field_error("server_files", "Give remote_files or server_files, not both.")
        if data.get("cloud_storage_id") is not None:
            raise field_error("cloud_storage_id", "No cloud storages are configured.")
        params = {k: data[k] for k in DATA_KEYS if k in data}
        if not select_frames({**params, "sorting_method": "predefined"}):
            raise field_error("remote_files", "The request selects no frames.")
        task = await self.tasks.get(company, number)
        owner = await self.tasks.users.of(identity)
        rq_id = str(uuid.uuid4())
        now = now_iso()
        doc = {
            "id": rq_id, "company": company, "status": "queued", "message": "", "progress": 0.0,
            "operation": {"type": "create:task", "target": "task", "task_id": task["number"]},
            "owner": {"number": owner["number"], "username": owner["username"]},
            "created_date": now, "params": params,
        }  # fmt: skip

        async def claim(task_doc: dict) -> dict:
            if task_doc.get("data"):
                raise bad_request("Adding more data is not supported: this task has data already.")
            pending = task_doc.get("pending_request")
            if pending:
                other = await self.store.get(REQUESTS, pending, companies=[company])
                if other is not None and other["status"] not in _FINAL:
                    raise bad_request("Data is being attached to this task already.")
            task_doc["pending_request"] = rq_id
            return task_doc

        # finished and failed requests are kept until they expire, like CVAT's; sweep the company's old ones
        await self.store.delete_many(REQUESTS, companies=[company], where=Range("expiry_date", lt=now))
        await self.store.insert(REQUESTS, doc)
        try:
            await self.tasks.modify(company, number, claim)
        except Exception:
            await self.store.delete(REQUESTS, rq_id, companies=[company])
            raise
        return doc

    async def _update(self, doc: dict, **changes: Any) -> dict | None:
        rev = doc.pop("rev")
        doc.update(changes)
        return await self.store.replace(REQUESTS, {k: v for k, v in doc.items() if v is not None}, expected_rev=rev)

    async def step_start(self, company: str, rq_id: str) -> bool:
        """queued → started; False when there is nothing to do (gone, or already past that)."""
        doc = await self.store.get(REQUESTS, rq_id, companies=[company])
        if doc is None or doc["status"] != "queued":
            return False
        return await self._update(doc, status="started", started_date=now_iso(), message="Attaching data", progress=0.0) is not None

    async def fail(self, company: str, rq_id: str, message: str) -> None:
        for _ in range(10):
            doc = await self.store.get(REQUESTS, rq_id, companies=[company])
            if doc is None or doc["status"] in _FINAL:
                return
            done = datetime.now(timezone.utc)
            if await self._update(doc, status="failed", message=message, finished_date=to_iso(done),
                                  expiry_date=to_iso(done + EXPIRY)) is not None:  # fmt: skip
                await self._release(company, doc["operation"]["task_id"], rq_id)
                return

    async def _release(self, company: str, number: int, rq_id: str) -> None:
        async def drop(task_doc: dict) -> dict:
            if task_doc.get("pending_request") == rq_id:
                task_doc.pop("pending_request")
            return task_doc

        try:
            await self.tasks.modify(company, number, drop)
        except Exception:  # the task is gone: nothing to release
            pass

    async def step_finish(self, company: str, rq_id: str) -> None:
        """started → finished: the task gets its frames, data number and jobs (or the request fails)."""
        doc = await self.store.get(REQUESTS, rq_id, companies=[company])
        if doc is None or doc["status"] != "started":
            return
        number, params = doc["operation"]["task_id"], doc.get("params") or {}
        frames = select_frames(params)
        data_number = await next_number(self.store, company, "data")

        async def attach(task_doc: dict) -> dict:
            if task_doc.get("pending_request") != rq_id or task_doc.get("data"):
                raise bad_request("The task changed while its data was being attached.")
            segment = task_doc.get("segment_size") or len(frames)
            task_doc.pop("pending_request")
            task_doc.update(
                data={
                    "number": data_number, "size": len(frames), "image_quality": params.get("image_quality", 70),
                    "chunk_size": params.get("chunk_size") or DEFAULT_CHUNK, "frames": frames,
                },
                segment_size=segment, jobs_count=math.ceil(len(frames) / segment), mode="annotation",
                updated_date=now_iso(),
            )  # fmt: skip
            return task_doc

        try:
            await self.tasks.modify(company, number, attach)
        except ApiError as e:
            await self.fail(company, rq_id, f"Task {number} was deleted." if e.code.status == 404 else e.message)
            return
        done = datetime.now(timezone.utc)
        for _ in range(10):
            if await self._update(doc, status="finished", message="", progress=1.0, finished_date=to_iso(done),
                                  expiry_date=to_iso(done + EXPIRY)) is not None:  # fmt: skip
                return
            doc = await self.store.get(REQUESTS, rq_id, companies=[company])
            if doc is None:
                return

