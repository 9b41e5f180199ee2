"""DataRobot custom tasks and their versions (docs/dialects.md §3), per company, over the document store.

A task document (collection ``datarobot_custom_tasks``): ``{id, company, user, name, description,
language, targetType, calibratePredictions?, created, updated, createdBy, latest?}`` where ``latest``
is ``{id, major, minor}`` of the newest version. A version document (``datarobot_custom_task_versions``):
``{id, company, customTaskId, versionMajor, versionMinor, label, description, created, isFrozen,
items, baseEnvironmentId, maximumMemory?, outboundNetworkPolicy, dependencies, requiredMetadataValues?,
arguments}``. Keys are the wire's camelCase, so answers are the documents minus ``company``, ``user``,
``rev`` and ``latest``.

Uploaded files are not kept: a version records each file's metadata (``fileName``, ``filePath``,
``size``, ``sha256``), which is all the lifecycle reads, and the store stays small whatever the upload.

Version numbers are claimed through the task document: a new version is inserted, then the task's
``latest`` is moved to it with a compare-and-swap; a create that loses the race removes its version
and tries again with the new numbers, so two concurrent uploads never share a number.
"""

from __future__ import annotations

import hashlib
import json
import os
import re
import secrets
import threading
import time
from typing import Any, Sequence

from specgate._generated import errors as E
from specgate.adapters.ports import DocumentStore, Eq, In, Index, Or, Regex
from specgate.core.clock import now_iso
from specgate.core.errors import ApiError

from .identity import Identity

TASKS, VERSIONS = "datarobot_custom_tasks", "datarobot_custom_task_versions"
HIDDEN = ("company", "user", "rev", "latest")
ORDERS = {"created": ("created", False), "-created": ("created", True),
          "updated": ("updated", False), "-updated": ("updated", True)}  # fmt: skip
MAX_FILES = 1000
ISOLATED = "ISOLATED"
_RETRIES = 20
_INDEXES = {
    TASKS: [Index(("created",)), Index(("updated",))],
    VERSIONS: [Index(("customTaskId",))],
}
_INDEXED: set[tuple[int, str]] = set()

# --- ids and times ---------------------------------------------------------------------------------

_counter = secrets.randbelow(1 << 24)
_counter_lock = threading.Lock()
_PROCESS = secrets.token_hex(5)


def object_id() -> str:
    """A fresh 24-hex ObjectId: 4 bytes of seconds, 5 bytes per process, a 3-byte counter."""
    global _counter
    with _counter_lock:
        _counter = (_counter + 1) % (1 << 24)
        count = _counter
    return f"{int(time.time()) & 0xFFFFFFFF:08x}{_PROCESS}{count:06x}"


def stamp() -> str:
    """Now as DataRobot writes times: ISO-8601 UTC with a ``Z`` (fixed width, so it sorts)."""
    return now_iso().replace("+00:00", "Z")


def invalid(field: str, message: str) -> ApiError:
    return ApiError(E.VALIDATION_ERROR, text=message, field=field)


def not_found(what: str) -> ApiError:
    return ApiError(E.RESOURCE_NOT_FOUND, text=f"{what} not found")


# --- answers ---------------------------------------------------------------------------------------


def present_version(doc: dict[str, Any]) -> dict[str, Any]:
    out = {k: v for k, v in doc.items() if k not in HIDDEN}
    values = doc.get("requiredMetadataValues")
    if values:
        out["requiredMetadata"] = {v["fieldName"]: v["value"] for v in values}
    return out


def present_task(doc: dict[str, Any], latest: dict[str, Any] | None) -> dict[str, Any]:
    out = {k: v for k, v in doc.items() if k not in HIDDEN}
    out["latestVersion"] = present_version(latest) if latest is not None else None
    return out


# --- upload parsing ----------------------------------------------------------------------------------

_REQUIREMENT = re.compile(r"^\s*([A-Za-z0-9][A-Za-z0-9._-]*)\s*(\[[^\]]*\])?\s*(.*)$")
_CONSTRAINT = re.compile(r"^\s*(~=|==|!=|<=|>=|<|>)\s*([^\s,;]+)\s*$")


def parse_requirements(text: str) -> list[dict[str, Any]]:
    """The dependencies DataRobot shows for a requirements.txt: one entry per package line (options,
    URLs and lines it cannot read are left out)."""
    out = []
    for number, raw in enumerate(text.splitlines(), start=1):
        line = raw.split("#", 1)[0].strip()
        if not line or line.startswith("-") or "://" in line:
            continue
        m = _REQUIREMENT.match(line.split(";", 1)[0])
        if m is None:
            continue
        constraints = []
        for part in filter(None, (p.strip() for p in m[3].split(","))):
            c = _CONSTRAINT.match(part)
            if c is None:
                constraints = None
                break
            constraints.append({"constraintType": c[1], "version": c[2]})
        if constraints is not None:
            out.append({"packageName": m[1], "constraints": constraints, "line": line, "lineNumber": number})
    return out


def normalize_path(path: str) -> str:
    """A file's path inside a version: relative, ``/``-separated, without ``.`` or ``..`` parts."""
    parts = [p for p in path.replace("\\", "/").split("/") if p not in ("", ".")]
    if not parts or path.startswith(("/", "\\")) or ".." in parts or "\x00" in path:
        raise invalid("filePath", f"filePath {path!r} must be a relative path inside the version")
    return "/".join(parts)


def uploads(files: Sequence[tuple[str, str, bytes]], paths: Sequence[str]) -> list[tuple[str, str, bytes]]:
    """(filePath, fileName, content) per uploaded ``file`` part, paired with ``filePath`` by position
    (a file without a path keeps its own name)."""
    if len(files) > MAX_FILES:
        raise invalid("file", f"at most {MAX_FILES} files per version")
    if len(paths) > len(files):
        raise invalid("filePath", "more filePath values than uploaded files")
    out, seen = [], set()
    for i, (field, filename, content) in enumerate(files):
        if field != "file":
            raise invalid(field, f"unexpected file field {field!r} (files are sent as 'file')")
        path = normalize_path(paths[i] if i < len(paths) else filename)
        if path in seen:
            raise invalid("filePath", f"filePath {path!r} is given twice")
        seen.add(path)
        out.append((path, os.path.basename(filename) or path.rsplit("/", 1)[-1], content))
    return out


def metadata_values(raw: str | None) -> list[dict[str, str]] | None:
    if raw is None:
        return None
    try:
        values = json.loads(raw)
    except ValueError:
        raise invalid("requiredMetadataValues", "requiredMetadataValues must be a JSON list") from None
    ok = isinstance(values, list) and all(
        isinstance(v, dict) and isinstance(v.get("fieldName"), str) and isinstance(v.get("value"), str) for v in values
    )
    if not ok:
        raise invalid("requiredMetadataValues", "requiredMetadataValues must be a list of {fieldName, value} strings")
    return [{"fieldName": v["fieldName"], "value": v["value"]} for v in values]


# --- the domain -------------------------------------------------------------------------------------


class CustomTasks:
    def __init__(self, store: DocumentStore):
        self.store = store

    async def _indexes(self) -> None:
        for collection, indexes in _INDEXES.items():
            key = (id(self.store), collection)
            if key not in _INDEXED:
                await self.store.ensure_indexes(collection, indexes)
                _INDEXED.add(key)

    async def _task(self, company: str, task_id: str) -> dict[str, Any]:
        doc = await self.store.get(TASKS, task_id, companies=[company])
        if doc is None:
            raise not_found("Custom task")
        return doc

    async def _latest(self, company: str, task: dict[str, Any]) -> dict[str, Any] | None:
        latest = task.get("latest")
        if not latest:
            return None
        return await self.store.get(VERSIONS, latest["id"], companies=[company])

    # tasks

    async def create(self, identity: Identity, data: dict[str, Any]) -> dict[str, Any]:
        await self._indexes()
        now = stamp()
        doc = {
            "id": object_id(),
            "company": identity.company,
            "user": identity.user,
            "name": data["name"],
            "description": data.get("description") or "",
            "language": data.get("language") or "",
            "targetType": data["targetType"],
            "created": now,
            "updated": now,
            "createdBy": identity.user_name or identity.user,
        }
        if data["targetType"] == "Anomaly":
            doc["calibratePredictions"] = data.get("calibratePredictions", True)
        elif "calibratePredictions" in data:
            doc["calibratePredictions"] = data["calibratePredictions"]
        stored = await self.store.insert(TASKS, doc)
        return present_task(stored, None)

    async def get(self, company: str, task_id: str) -> dict[str, Any]:
        task = await self._task(company, task_id)
        return present_task(task, await self._latest(company, task))

    async def list(self, company: str, data: dict[str, Any]) -> dict[str, Any]:
        await self._indexes()
        where = None
        if data.get("searchFor"):
            pattern = re.escape(data["searchFor"])
            where = Or((Regex("name", pattern, ignore_case=True), Regex("description", pattern, ignore_case=True)))
        page = data["_page"]
        order = [ORDERS[data.get("orderBy") or "-created"]]
        docs = await self.store.find(TASKS, companies=[company], where=where, order=order,
                                     skip=page["offset"], limit=page["limit"])  # fmt: skip
        total = await self.store.count(TASKS, companies=[company], where=where)
        ids = tuple(d["latest"]["id"] for d in docs if d.get("latest"))
        latest = {}
        if ids:
            latest = {v["id"]: v for v in await self.store.find(VERSIONS, companies=[company], where=In("id", ids))}
        items = [present_task(d, latest.get((d.get("latest") or {}).get("id", ""))) for d in docs]
        return {"items": items, "total": total}

    async def update(self, company: str, task_id: str, data: dict[str, Any]) -> dict[str, Any]:
        for _ in range(_RETRIES):
            task = await self._task(company, task_id)
            changed = dict(task)
            if "name" in data:
                if data["name"] is None:
                    raise invalid("name", "name cannot be null")
                changed["name"] = data["name"]
            for key in ("language", "description"):
                if key in data:
                    changed[key] = data[key] or ""
            changed["updated"] = stamp()
            changed.pop("rev", None)
            stored = await self.store.replace(TASKS, changed, expected_rev=task["rev"])
            if stored is not None:
                return present_task(stored, await self._latest(company, stored))
        raise ApiError(E.RESOURCE_CONFLICT, text="Custom task changed concurrently; retry")

    async def delete(self, company: str, task_id: str) -> None:
        if not await self.store.delete(TASKS, task_id, companies=[company]):
            raise not_found("Custom task")
        await self.store.delete_many(VERSIONS, companies=[company], where=Eq("customTaskId", task_id))

    # versions

    async def create_version(
        self, company: str, task_id: str, data: dict[str, Any], files: Sequence[tuple[str, str, bytes]], *, from_previous: bool
    ) -> dict[str, Any]:
        await self._indexes()
        uploaded = uploads(files, data.get("filePath") or [])
        metadata = metadata_values(data.get("requiredMetadataValues"))
        for _ in range(_RETRIES):
            task = await self._task(company, task_id)
            previous = await self._latest(company, task) if from_previous else None
            doc = self._version(company, task, previous, data, uploaded, metadata)
            await self.store.insert(VERSIONS, doc)
            claimed = {k: v for k, v in task.items() if k != "rev"}
            claimed["latest"] = {"id": doc["id"], "major": doc["versionMajor"], "minor": doc["versionMinor"]}
            claimed["updated"] = doc["created"]
            if await self.store.replace(TASKS, claimed, expected_rev=task["rev"]) is not None:
                return present_version(doc)
            await self.store.delete(VERSIONS, doc["id"], companies=[company])  # lost the race for the number
        raise ApiError(E.RESOURCE_CONFLICT, text="Custom task changed concurrently; retry")

    @staticmethod
    def _version(
        company: str,
        task: dict[str, Any],
        previous: dict[str, Any] | None,
        data: dict[str, Any],
        uploaded: list[tuple[str, str, bytes]],
        metadata: list[dict[str, str]] | None,
    ) -> dict[str, Any]:
        now = stamp()
        latest = task.get("latest")
        if not latest:
            major, minor = 1, 0
        elif data.get("isMajorUpdate", True):
            major, minor = latest["major"] + 1, 0
        else:
            major, minor = latest["major"], latest["minor"] + 1
        base = list((previous or {}).get("items") or [])
        doomed = set(data.get("filesToDelete") or [])
        unknown = doomed - {item["id"] for item in base}
        if unknown:
            raise invalid("filesToDelete", f"not files of the latest version: {', '.join(sorted(unknown))}")
        replaced = {path for path, _, _ in uploaded}
        items = [item for item in base if item["id"] not in doomed and item["filePath"] not in replaced]
        dependencies = None
        for path, name, content in uploaded:
            items.append({"id": object_id(), "fileName": name, "filePath": path, "fileSource": "local", "created": now,
                          "size": len(content), "sha256": hashlib.sha256(content).hexdigest()})  # fmt: skip
            if path == "requirements.txt":
                dependencies = parse_requirements(content.decode("utf-8", errors="replace"))
        if dependencies is None:
            kept = any(item["filePath"] == "requirements.txt" for item in items)
            dependencies = list((previous or {}).get("dependencies") or []) if kept else []
        inherit = previous or {}
        doc: dict[str, Any] = {
            "id": object_id(),
            "company": company,
            "customTaskId": task["id"],
            "versionMajor": major,
            "versionMinor": minor,
            "label": f"v{major}.{minor}",
            "description": "",
            "created": now,
            "isFrozen": False,
            "items": sorted(items, key=lambda item: item["filePath"]),
            "baseEnvironmentId": data["baseEnvironmentId"],
            "outboundNetworkPolicy": data.get("outboundNetworkPolicy") or inherit.get("outboundNetworkPolicy") or ISOLATED,
            "dependencies": dependencies,
            "arguments": [],
        }
        memory = data.get("maximumMemory") or inherit.get("maximumMemory")
        if memory:
            doc["maximumMemory"] = memory
        values = metadata if metadata is not None else inherit.get("requiredMetadataValues")
        if values:
            doc["requiredMetadataValues"] = values
        return doc

    async def list_versions(self, company: str, task_id: str, page: dict[str, int]) -> dict[str, Any]:
        await self._task(company, task_id)
        where = Eq("customTaskId", task_id)
        docs = await self.store.find(VERSIONS, companies=[company], where=where,
                                     order=[("versionMajor", True), ("versionMinor", True)],
                                     skip=page["offset"], limit=page["limit"])  # fmt: skip
        total = await self.store.count(VERSIONS, companies=[company], where=where)
        return {"items": [present_version(d) for d in docs], "total": total}

    async def get_version(self, company: str, task_id: str, version_id: str) -> dict[str, Any]:
        await self._task(company, task_id)
        doc = await self.store.get(VERSIONS, version_id, companies=[company])
        if doc is None or doc.get("customTaskId") != task_id:
            raise not_found("Custom task version")
        return present_version(doc)
