"""Qarnot tasks (dialects.md §2.2–§2.5), per company in the document store, executed by background steps.

A task document (collection ``qarnot_tasks``) keeps the submitted fields under their API names
(``name``, ``shortname``, ``profile``, ``jobUuid``, ``instanceCount`` or ``advancedRanges``, ``constants``,
``constraints``, ``tags``, ``dependencies``, ...), labels as a ``[{key, value}]`` list (label keys are
free text, which not every document store takes as field names), the state bookkeeping (``state``,
``previousState``, ``stateTransitionTime``, ``previousStateTransitionTime``, ``creationDate``,
``lastModified``, ``endDate``), the outcome (``errors``, ``completedInstances``, ``resultsCount``) and a
private ``sim`` block that drives the execution. Answers call the id ``uuid`` and never carry a ``null``
in a list or object field: the official client iterates those without a check.

Execution. No code runs: a submitted task is moved by background jobs (``qarnot.advance``, through the
Redis queue machinery, in whichever gateway process picks them up) along
``Submitted → FullyDispatched → FullyExecuting → UploadingResults → Success`` (or ``Failure``). Each step
only applies if the task is still in the state the step expects, so a step that lost a race with an
abort or a delete does nothing. The constant ``SPECGATE_RUN_SECONDS`` (0 to 3600, default 1) is how long
the task stays ``FullyExecuting``; ``SPECGATE_FAIL=1`` makes it end in ``Failure``. A task of a job with
``useDependencies`` waits in ``Submitted`` until the tasks it depends on succeed (and fails when one of
them ends otherwise). Abort: any running state → ``PendingCancel`` → ``Cancelled``; a task that has ended
cannot be aborted or updated (403). Delete removes the task at once (a running one needs no separate
abort: its pending steps find nothing).
"""

from __future__ import annotations

import uuid as uuidlib
from datetime import datetime
from typing import Any, Sequence

from specgate._generated import errors as E
from specgate.adapters.ports import DocumentStore, Eq, In, Index, NotIn
from specgate.core.errors import ApiError
from specgate.domain.identity import Identity

from . import qarnot_common as common
from .qarnot_common import (
    both,
    settle_shortname,
    compile_filter,
    from_date,
    mutate,
    not_found,
    order_of,
    set_state,
    tag_filter,
    to_date,
    to_timespan,
)

TASKS = "qarnot_tasks"
INDEXES = [Index(("company", "shortname")), Index(("jobUuid",)), Index(("state",)), Index(("creationDate",))]

SUBMITTED, DISPATCHED, EXECUTING, UPLOADING = "Submitted", "FullyDispatched", "FullyExecuting", "UploadingResults"
SUCCESS, FAILURE, PENDING_CANCEL, CANCELLED = "Success", "Failure", "PendingCancel", "Cancelled"
RUNNING = (SUBMITTED, "PartiallyDispatched", DISPATCHED, "PartiallyExecuting", EXECUTING, UPLOADING, "DownloadingResults")
ENDED = (SUCCESS, FAILURE, CANCELLED)

STEP_DELAY = 0.3  # seconds between the bookkeeping states
DEPENDENCY_POLL = 1.0  # how often a task waiting on others looks again
RUN_CONSTANT, FAIL_CONSTANT = "SPECGATE_RUN_SECONDS", "SPECGATE_FAIL"
DEFAULT_RUN_SECONDS, MAX_RUN_SECONDS = 1.0, 3600.0
MAX_INSTANCES = 2048
CORES_PER_INSTANCE = 1

FILTER_FIELDS = {
    "Uuid": "id", "Name": "name", "Shortname": "shortname", "State": "state", "Tags": "tags", "JobUuid": "jobUuid",
    "Profile": "profile", "CreationDate": "creationDate", "LastModified": "lastModified", "EndDate": "endDate",
    "PreviousState": "previousState", "InstanceCount": "instanceCount",
}  # fmt: skip
SORTABLE = {"creationDate": "creationDate", "name": "name", "state": "state", "executionTime": "sim.executedSeconds"}
HIDDEN = ("id", "company", "user", "rev", "sim", "labels")
SUMMARY = (
    "uuid", "name", "shortname", "profile", "jobUuid", "instanceCount", "advancedRanges", "state", "previousState",
    "stateTransitionTime", "previousStateTransitionTime", "creationDate", "lastModified", "endDate", "progress",
    "runningInstanceCount", "runningCoreCount", "executionTime", "wallTime", "tags", "labels",
)  # fmt: skip
# what an answer always carries, so that the client never meets a null or a missing list
COLLECTIONS: dict[str, Any] = {
    "constants": [], "constraints": [], "forcedConstants": [], "tags": [], "errors": [], "completedInstances": [],
    "hardwareConstraints": [], "forcedNetworkRules": [], "resourceBuckets": [], "advancedResourceBuckets": [],
}  # fmt: skip


# --- instances -------------------------------------------------------------------------------------


def parse_ranges(text: str) -> list[int]:
    """``"0-3,7"`` → [0, 1, 2, 3, 7] (at most MAX_INSTANCES ids, ascending, without repeats)."""
    ids: set[int] = set()
    for part in text.split(","):
        low, _, high = part.strip().partition("-")
        start, end = int(low), int(high or low)
        if end < start:
            raise ApiError(E.VALIDATION_ERROR, f"range {part!r} runs backwards", field="advancedRanges")
        if end - start + 1 + len(ids) > MAX_INSTANCES:
            raise ApiError(E.VALIDATION_ERROR, f"at most {MAX_INSTANCES} instances", field="advancedRanges")
        ids.update(range(start, end + 1))
    return sorted(ids)


def instance_ids(doc: dict[str, Any]) -> list[int]:
    if doc.get("advancedRanges"):
        return parse_ranges(doc["advancedRanges"])
    return list(range(int(doc.get("instanceCount") or 1)))


def format_ranges(ids: Sequence[int]) -> str:
    parts, i = [], 0
    while i < len(ids):
        j = i
        while j + 1 < len(ids) and ids[j + 1] == ids[j] + 1:
            j += 1
        parts.append(str(ids[i]) if i == j else f"{ids[i]}-{ids[j]}")
        i = j + 1
    return ",".join(parts)


# --- answers ---------------------------------------------------------------------------------------


def present(doc: dict[str, Any], moment: datetime | None = None) -> dict[str, Any]:
    """The task as the client reads it, with the execution figures computed for ``moment``."""
    moment = moment or common.now()
    out = {k: v for k, v in doc.items() if k not in HIDDEN}
    out["uuid"] = doc["id"]
    for key, empty in COLLECTIONS.items():
        if not isinstance(out.get(key), list):
            out[key] = list(empty)
    out["labels"] = {item["key"]: item.get("value", "") for item in doc.get("labels") or []}
    deps = dict(doc.get("dependencies") or {})
    deps["dependsOn"] = list(deps.get("dependsOn") or [])
    out["dependencies"] = deps
    out.setdefault("privileges", {"exportApiAndStorageCredentialsInEnvironment": False})
    out.setdefault("retrySettings", {})
    out.setdefault("schedulingType", "Flex")
    out.setdefault("resultsCount", 0)
    out.setdefault("autoDeleteOnCompletion", False)
    out.setdefault("completionTimeToLive", "00:00:00")
    out.update(_figures(doc, moment))
    return out


def summary(doc: dict[str, Any], moment: datetime | None = None) -> dict[str, Any]:
    full = present(doc, moment)
    return {k: full[k] for k in SUMMARY if k in full}


def _figures(doc: dict[str, Any], moment: datetime) -> dict[str, Any]:
    sim, state = doc.get("sim") or {}, doc.get("state")
    ids = instance_ids(doc)
    run = float(sim.get("runSeconds", DEFAULT_RUN_SECONDS))
    executing_at = from_date(sim.get("executingAt"))
    if "executedSeconds" in sim:
        executed = float(sim["executedSeconds"])
    elif state == EXECUTING and executing_at is not None:
        executed = max(0.0, (moment - executing_at).total_seconds())
    else:
        executed = 0.0
    if state in (UPLOADING, SUCCESS, FAILURE):
        progress = 100.0
    elif run > 0:
        progress = round(min(100.0, 100.0 * executed / run), 2)
    else:
        progress = 0.0
    dispatched_at, end_at = from_date(sim.get("dispatchedAt")), from_date(doc.get("endDate"))
    wall = ((end_at or moment) - dispatched_at).total_seconds() if dispatched_at else 0.0
    running = len(ids) if state == EXECUTING else 0
    execution = executed * len(ids)
    executed_range = format_ranges(ids) if executed > 0 or state in (UPLOADING, SUCCESS, FAILURE) else ""
    return {
        "progress": progress,
        "runningInstanceCount": running,
        "runningCoreCount": running * CORES_PER_INSTANCE,
        "executionTime": to_timespan(execution),
        "wallTime": to_timespan(wall),
        "status": {
            "downloadProgress": 100.0 if dispatched_at else 0.0,
            "executionProgress": progress,
            "uploadProgress": 100.0 if state in (SUCCESS, FAILURE) else 0.0,
            "instanceCount": len(ids),
            "downloadTime": "00:00:00",
            "downloadTimeSec": 0.0,
            "environmentTime": "00:00:00",
            "environmentTimeSec": 0.0,
            "executionTime": to_timespan(execution),
            "executionTimeSec": execution,
            "uploadTime": "00:00:00",
            "uploadTimeSec": 0.0,
            "wallTime": to_timespan(wall),
            "wallTimeSec": wall,
            "succeededRange": format_ranges(ids) if state == SUCCESS else "",
            "executedRange": executed_range,
            "failedRange": format_ranges(ids) if state == FAILURE else "",
            "executionTimeByCpuModel": [],
            "executionTimeGhzByCpuModel": [],
        },
    }


# --- the domain ------------------------------------------------------------------------------------


class Tasks:
    def __init__(self, store: DocumentStore, background: Any = None):
        self.store, self.background = store, background

    # creation

    async def create(self, identity: Identity, data: dict[str, Any]) -> dict[str, Any]:
        from .qarnot_jobs import ACTIVE, JOBS

        await common.ensure_indexes(self.store, TASKS, INDEXES)
        company = identity.company
        if data.get("poolUuid"):
            raise ApiError(E.VALIDATION_ERROR, "pools are not served: a task cannot name one", field="poolUuid")
        if not data.get("profile"):
            raise ApiError(E.VALIDATION_ERROR, "a task needs a profile", field="profile")
        if data.get("resourceBuckets") or data.get("advancedResourceBuckets") or data.get("resultBucket"):
            raise ApiError(E.RESOURCE_NOT_FOUND, "bucket storage is not available on this server")
        if "instanceCount" not in data and not data.get("advancedRanges"):
            raise ApiError(E.VALIDATION_ERROR, "a task needs instanceCount or advancedRanges", field="instanceCount")
        if data.get("advancedRanges"):
            parse_ranges(data["advancedRanges"])
        constants = _key_values(data.get("constants"))
        sim = _simulation(constants)

        job = None
        if data.get("jobUuid"):
            job = await self.store.get(JOBS, data["jobUuid"], companies=[company])
            if job is None:
                raise ApiError(E.VALIDATION_ERROR, f"no job {data['jobUuid']}", field="jobUuid")
            if job["state"] != ACTIVE:
                raise ApiError(E.FORBIDDEN_STATE, f"job {job['id']} is {job['state']}: it takes no more tasks")
        dependencies = data.get("dependencies") or {}
        if dependencies.get("advancedDependsOn"):
            raise ApiError(E.VALIDATION_ERROR, "advanced dependencies are not supported", field="dependencies")
        depends_on = list(dict.fromkeys(dependencies.get("dependsOn") or []))
        if depends_on:
            await self._check_dependencies(company, job, depends_on)

        id, moment = str(uuidlib.uuid4()), common.now()
        stamp = to_date(moment)
        shortname = data.get("shortname") or id
        await self._unique_shortname(company, shortname)
        doc: dict[str, Any] = {
            "id": id,
            "company": company,
            "user": identity.user,
            "name": data["name"],
            "shortname": shortname,
            "profile": data["profile"],
            "constants": constants,
            "constraints": _key_values(data.get("constraints")),
            "forcedConstants": list(data.get("forcedConstants") or []),
            "tags": list(data.get("tags") or []),
            "labels": [{"key": k, "value": v} for k, v in (data.get("labels") or {}).items()],
            "dependencies": {"dependsOn": depends_on, **({"state": "waiting"} if depends_on else {})},
            "hardwareConstraints": list(data.get("hardwareConstraints") or []),
            "forcedNetworkRules": list(data.get("forcedNetworkRules") or []),
            "privileges": dict(data.get("privileges") or {"exportApiAndStorageCredentialsInEnvironment": False}),
            "retrySettings": dict(data.get("retrySettings") or {}),
            "schedulingType": data.get("schedulingType") or "Flex",
            "autoDeleteOnCompletion": bool(data.get("autoDeleteOnCompletion", False)),
            "completionTimeToLive": data.get("completionTimeToLive") or "00:00:00",
            "state": SUBMITTED,
            "stateTransitionTime": stamp,
            "creationDate": stamp,
            "lastModified": stamp,
            "errors": [],
            "completedInstances": [],
            "resultsCount": 0,
            "sim": sim,
        }
        if data.get("advancedRanges"):
            doc["advancedRanges"] = data["advancedRanges"]
        else:
            doc["instanceCount"] = int(data["instanceCount"])
        for key in ("jobUuid", "projectUuid", "secretsAccessRights", "waitForPoolResourcesSynchronization",
                    "uploadResultsOnCancellation", "defaultResourcesCacheTTLSec", "maxTimeQueueSeconds",
                    "snapshotWhitelist", "snapshotBlacklist", "resultsWhitelist", "resultsBlacklist"):  # fmt: skip
            if data.get(key) is not None:
                doc[key] = data[key]
        await self.store.insert(TASKS, doc)
        if shortname != id:
            await self._settle_shortname(company, doc)
        await self._submit({"kind": "task", "company": company, "id": id, "from": SUBMITTED, "to": DISPATCHED}, STEP_DELAY)
        return doc

    async def _check_dependencies(self, company: str, job: dict[str, Any] | None, depends_on: list[str]) -> None:
        if job is None or not job.get("useDependencies"):
            raise ApiError(E.VALIDATION_ERROR, "dependencies need a job created with useDependencies", field="dependencies")
        found = await self.store.find(TASKS, companies=[company], where=In("id", tuple(depends_on)), fields=["id", "jobUuid"])
        known = {d["id"]: d.get("jobUuid") for d in found}
        for dep in depends_on:
            if known.get(dep, None) != job["id"]:
                raise ApiError(E.VALIDATION_ERROR, f"task {dep} is not a task of job {job['id']}", field="dependencies")

    async def _unique_shortname(self, company: str, shortname: str) -> None:
        if await self.store.find(TASKS, companies=[company], where=Eq("shortname", shortname), limit=1, fields=["id"]):
            raise ApiError(E.RESOURCE_CONFLICT, f"a task named {shortname!r} exists", field="shortname")

    async def _settle_shortname(self, company: str, doc: dict[str, Any]) -> None:
        await settle_shortname(self.store, TASKS, "task", company, doc)

    # reads

    async def get(self, company: str, id: str) -> dict[str, Any]:
        doc = await self.store.get(TASKS, id, companies=[company])
        if doc is None:
            raise not_found("task", id)
        return doc

    async def list(self, company: str, tags: list[str] | None = None, job: str | None = None) -> list[dict[str, Any]]:
        where = both(tag_filter(tags), Eq("jobUuid", job) if job else None)
        return await self.store.find(TASKS, companies=[company], where=where, order=[("creationDate", False)])

    async def page(self, company: str, data: dict[str, Any]) -> dict[str, Any]:
        where = compile_filter(data["filter"], FILTER_FIELDS) if data.get("filter") else None
        window = data.get("_page") or {"offset": 0, "limit": 50}
        items = await self.store.find(
            TASKS, companies=[company], where=where, order=order_of(data, SORTABLE),
            skip=window["offset"], limit=window["limit"],
        )  # fmt: skip
        total = await self.store.count(TASKS, companies=[company], where=where)
        return {"items": items, "total": total}

    async def counts(self, company: str) -> dict[str, int]:
        running = await self.store.find(TASKS, companies=[company], where=Eq("state", EXECUTING),
                                        fields=["instanceCount", "advancedRanges"])  # fmt: skip
        instances = sum(len(instance_ids(d)) for d in running)
        return {
            "taskCount": await self.store.count(TASKS, companies=[company]),
            "runningTaskCount": await self.store.count(TASKS, companies=[company], where=NotIn("state", ENDED)),
            "runningInstanceCount": instances,
            "runningCoreCount": instances * CORES_PER_INSTANCE,
        }

    # changes

    async def update(self, company: str, id: str, data: dict[str, Any]) -> None:
        def change(doc: dict[str, Any]) -> bool:
            _refuse_ended(doc, "updated")
            if "constants" in data:
                constants = _key_values(data["constants"])
                doc["sim"] = {**_simulation(constants), **{k: v for k, v in (doc.get("sim") or {}).items()
                                                           if k not in ("runSeconds", "fail")}}  # fmt: skip
                doc["constants"] = constants
            if "constraints" in data:
                doc["constraints"] = _key_values(data["constraints"])
            if "tags" in data:
                doc["tags"] = list(data["tags"])
            doc["lastModified"] = to_date(common.now())
            return True

        if await mutate(self.store, TASKS, company, id, change) is None:
            raise not_found("task", id)

    async def update_resources(self, company: str, id: str) -> None:
        _refuse_ended(await self.get(company, id), "updated")

    async def abort(self, company: str, id: str) -> None:
        def change(doc: dict[str, Any]) -> bool:
            if doc["state"] == PENDING_CANCEL:
                return False  # already on its way
            _refuse_ended(doc, "aborted")
            _cancel(doc, common.now())
            return True

        doc = await mutate(self.store, TASKS, company, id, change)
        if doc is None:
            raise not_found("task", id)
        await self._submit({"kind": "task", "company": company, "id": id, "from": PENDING_CANCEL, "to": CANCELLED}, STEP_DELAY)

    async def delete(self, company: str, id: str) -> None:
        if not await self.store.delete(TASKS, id, companies=[company]):
            raise not_found("task", id)

    async def cancel_all(self, company: str, job: str) -> None:
        """Abort the running tasks of a job (those that end meanwhile are left as they are)."""
        for doc in await self.store.find(TASKS, companies=[company], where=both(Eq("jobUuid", job), In("state", RUNNING)),
                                         fields=["id"]):  # fmt: skip
            try:
                await self.abort(company, doc["id"])
            except ApiError as e:
                if e.code not in (E.FORBIDDEN_STATE, E.RESOURCE_NOT_FOUND):
                    raise

    async def delete_of_job(self, company: str, job: str) -> int:
        return await self.store.delete_many(TASKS, companies=[company], where=Eq("jobUuid", job))

    # execution

    async def advance(self, company: str, id: str, source: str, target: str) -> None:
        """One background step: move the task from ``source`` to ``target`` if it is still in ``source``,
        then schedule the step after it."""
        if source == SUBMITTED:
            verdict = await self._dependencies_verdict(company, id)
            if verdict == "stale":
                return
            if verdict == "waiting":
                await self._submit({"kind": "task", "company": company, "id": id, "from": source, "to": target}, DEPENDENCY_POLL)
                return
        else:
            verdict = "none"
        moment = common.now()
        step_target = target

        def change(doc: dict[str, Any]) -> bool:
            nonlocal step_target
            if doc.get("state") != source:
                return False
            sim = dict(doc.get("sim") or {})
            if verdict == "failed":
                doc["dependencies"] = {**(doc.get("dependencies") or {}), "state": "dependencyConditionsNotFulfilled"}
                step_target = FAILURE
                _finish(doc, FAILURE, moment, "dependency-failed", "a task this task depends on did not succeed")
                return True
            if verdict == "fulfilled":
                doc["dependencies"] = {**(doc.get("dependencies") or {}), "state": "dependencyConditionsFulfilled"}
            if target == DISPATCHED:
                sim["dispatchedAt"] = to_date(moment)
            elif target == EXECUTING:
                sim["executingAt"] = to_date(moment)
            elif target == UPLOADING:
                started = from_date(sim.get("executingAt")) or moment
                sim["executedSeconds"] = max(0.0, (moment - started).total_seconds())
            doc["sim"] = sim
            if target in ENDED:
                _finish(doc, target, moment, "simulated-failure", f"the task ended in Failure ({FAIL_CONSTANT} is set)")
            else:
                set_state(doc, target, moment)
            return True

        doc = await mutate(self.store, TASKS, company, id, change)
        if doc is None or doc.get("state") != step_target or step_target in ENDED:
            return
        sim = doc.get("sim") or {}
        if step_target == DISPATCHED:
            following, delay = EXECUTING, STEP_DELAY
        elif step_target == EXECUTING:
            following, delay = UPLOADING, float(sim.get("runSeconds", DEFAULT_RUN_SECONDS))
        elif step_target == UPLOADING:
            following, delay = (FAILURE if sim.get("fail") else SUCCESS), STEP_DELAY
        else:
            return
        await self._submit({"kind": "task", "company": company, "id": id, "from": step_target, "to": following}, delay)

    async def _dependencies_verdict(self, company: str, id: str) -> str:
        """``none`` (no dependencies), ``waiting``, ``fulfilled``, ``failed``, or ``stale`` when the task
        is no longer waiting to start (aborted or deleted meanwhile)."""
        doc = await self.store.get(TASKS, id, companies=[company], fields=["dependencies", "state"])
        if doc is None or doc.get("state") != SUBMITTED:
            return "stale"
        depends_on = (doc.get("dependencies") or {}).get("dependsOn") or []
        if not depends_on:
            return "none"
        found = await self.store.find(TASKS, companies=[company], where=In("id", tuple(depends_on)), fields=["id", "state"])
        states = {d["id"]: d.get("state") for d in found}
        if any(states.get(dep) not in (None, *ENDED) for dep in depends_on):
            return "waiting"
        if all(states.get(dep) == SUCCESS for dep in depends_on):
            return "fulfilled"
        return "failed"  # one ended otherwise, or was deleted

    async def _submit(self, payload: dict[str, Any], delay: float) -> None:
        if self.background is not None:
            await self.background.submit("qarnot.advance", payload, delay=delay)


def _refuse_ended(doc: dict[str, Any], verb: str) -> None:
    if doc.get("state") in ENDED:
        raise ApiError(E.FORBIDDEN_STATE, f"task {doc['id']} is {doc['state']}: it cannot be {verb}")


def _cancel(doc: dict[str, Any], moment: datetime) -> None:
    sim = dict(doc.get("sim") or {})
    if doc.get("state") == EXECUTING and "executedSeconds" not in sim:
        started = from_date(sim.get("executingAt")) or moment
        sim["executedSeconds"] = max(0.0, (moment - started).total_seconds())
    doc["sim"] = sim
    set_state(doc, PENDING_CANCEL, moment)


def _finish(doc: dict[str, Any], state: str, moment: datetime, code: str, message: str) -> None:
    set_state(doc, state, moment)
    doc["endDate"] = to_date(moment)
    if state == CANCELLED:
        return
    sim = doc.get("sim") or {}
    dispatched = from_date(sim.get("dispatchedAt"))
    wall = (moment - dispatched).total_seconds() if dispatched else 0.0
    executed = float(sim.get("executedSeconds", 0.0))
    doc["completedInstances"] = [
        {"instanceId": i, "state": state, "wallTimeSec": wall, "execTimeSec": executed, "execTimeSecGHz": 0.0,
         "peakMemoryMB": 0, "averageGHz": 0.0, "results": [], "executionAttemptCount": 1}
        for i in instance_ids(doc)
    ]  # fmt: skip
    if state == FAILURE:
        doc["errors"] = [{"code": code, "message": message, "debug": ""}]


def _key_values(items: Any) -> list[dict[str, str]]:
    """``[{key, value}]`` with one entry per key (the last one given wins), values never null."""
    out: dict[str, str] = {}
    for item in items or []:
        out[item["key"]] = "" if item.get("value") is None else str(item["value"])
    return [{"key": k, "value": v} for k, v in out.items()]


def _simulation(constants: list[dict[str, str]]) -> dict[str, Any]:
    values = {c["key"]: c["value"] for c in constants}
    run = DEFAULT_RUN_SECONDS
    if RUN_CONSTANT in values:
        try:
            run = float(values[RUN_CONSTANT])
        except ValueError:
            run = -1.0
        if not 0 <= run <= MAX_RUN_SECONDS:
            raise ApiError(E.VALIDATION_ERROR, f"{RUN_CONSTANT} must be a number of seconds from 0 to {MAX_RUN_SECONDS:g}",
                           field="constants")  # fmt: skip
    return {"runSeconds": run, "fail": values.get(FAIL_CONSTANT, "").strip().lower() in ("1", "true", "yes")}
