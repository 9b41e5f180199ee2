"""Workers: the registry of agents (entries in Redis, see adapters/redis_workers.py) and their statistics.

An entry lives ``register_timeout`` seconds (600 by default) after its last registration or status
report, so an agent that stops reporting drops out by itself. Worker ids are chosen by the agents and
are unique within a company. A status report from an unknown worker registers it (ClearML's
``auto_register``); unregistering an unknown worker is not an error (``auto_unregister``).

A status report naming a task records it on the task (``last_worker``, ``last_worker_report``,
``last_update``; contract §5.4). An unknown task, or another company's, is 400/101, after the report
itself has been recorded, as ClearML does.

Every report also leaves a statistics sample (its machine statistics and whether a task ran), from
which ``get_metric_keys``, ``get_stats`` and ``get_activity_report`` are answered.
"""

from __future__ import annotations

import fnmatch
import math
import time
from datetime import datetime, timezone
from typing import Any, Protocol, Sequence

from specgate._generated import errors as E
from specgate.adapters.ports import DocumentStore, In, QueueBackend
from specgate.core.clock import now_iso
from specgate.core.errors import ApiError

from .identity import Identity
from .task_access import PROJECTS, TASKS, modify

QUEUES = "queues"
DEFAULT_TIMEOUT = 600
MAX_TIMEOUT = 365 * 24 * 3600  # seconds a registration may last at most
MAX_INTERVALS = 10_000  # sample points one statistics answer may have
INCOMPLETE_TOLERANCE = 0.9  # the last interval is left out unless 90% of it has passed (as ClearML)
AGGREGATIONS = ("avg", "min", "max")


class WorkerRegistry(Protocol):
    """What the domain needs from the registry adapter (``RedisWorkers``)."""

    async def save(self, company: str, worker: str, entry: dict, timeout: int) -> None: ...

    async def load(self, company: str, worker: str) -> dict | None: ...

    async def delete(self, company: str, worker: str) -> bool: ...

    async def all(self, company: str) -> list[dict]: ...

    async def add_sample(self, company: str, worker: str, sample: dict, at_ms: int) -> None: ...

    async def samples(
        self, company: str, workers: Sequence[str] | None, from_ms: float, to_ms: float
    ) -> dict[str, list[dict]]: ...

    async def metric_keys(self, company: str, workers: Sequence[str] | None) -> set[str]: ...


def _ref(id_: str, name: str | None) -> dict:
    return {"id": id_, "name": name} if name else {"id": id_}


def _set(entry: dict, key: str, value: Any) -> None:
    if value:
        entry[key] = value
    else:
        entry.pop(key, None)


def _tags_match(have: Sequence[str] | None, wanted: Sequence[str] | None) -> bool:
    """ClearML's worker tag filter: any of the plain tags, none of the ``-``-prefixed ones."""
    if not wanted:
        return True
    have = set(have or ())
    include = {t for t in wanted if not t.startswith("-")}
    exclude = {t[1:] for t in wanted if t.startswith("-")}
    return (not include or bool(have & include)) and not (have & exclude)


class Workers:
    def __init__(self, store: DocumentStore, registry: WorkerRegistry, queues: QueueBackend):
        self.store, self.registry, self.queues = store, registry, queues

    # --- registration --------------------------------------------------------------------------

    def _new_entry(self, caller: Identity, worker: str, ip: str, timeout: int, now: str) -> dict:
        return {
            "id": worker,
            "key": f"worker_{caller.company}_{worker}",
            "user": _ref(caller.user, caller.user_name),
            "company": _ref(caller.company, caller.company_name),
            "ip": ip,
            "register_time": now,
            "register_timeout": timeout,
            "last_activity_time": now,
            "queues": [],
        }

    async def register(self, caller: Identity, ip: str, data: dict) -> None:
        worker, timeout = data["worker"], data.get("timeout", DEFAULT_TIMEOUT)
        if timeout <= 0 or timeout > MAX_TIMEOUT:  # Redis refuses an expiry past 2^63 ms (a 500 before)
            raise ApiError(E.VALIDATION_ERROR, "invalid timeout", timeout=timeout, worker=worker)
        queues = list(dict.fromkeys(data.get("queues") or ()))
        if queues:
            found = await self.store.find(
                QUEUES, companies=[caller.company], where=In("id", tuple(queues)), fields=["id"]
            )
            missing = sorted(set(queues) - {q["id"] for q in found})
            if missing:
                raise ApiError(E.INVALID_QUEUE_ID, ids=missing)
        entry = self._new_entry(caller, worker, ip, timeout, now_iso())
        entry["queues"] = queues
        for field in ("tags", "system_tags"):
            if data.get(field) is not None:
                entry[field] = list(data[field])
        await self.registry.save(caller.company, worker, entry, timeout)

    async def unregister(self, caller: Identity, worker: str) -> None:
        await self.registry.delete(caller.company, worker)

    async def status_report(self, caller: Identity, ip: str, data: dict) -> None:
        worker, now = data["worker"], now_iso()
        entry = await self.registry.load(caller.company, worker)
        if entry is None:
            entry = self._new_entry(caller, worker, ip, DEFAULT_TIMEOUT, now)
        entry.update(ip=ip, last_activity_time=now)
        for field in ("tags", "system_tags"):
            if data.get(field) is not None:
                entry[field] = list(data[field])
        _set(entry, "queue", data.get("queue"))
        if data.get("queues"):
            entry["queues"] = list(data["queues"])
        if data.get("machine_stats") is not None:
            entry["machine_stats"] = data["machine_stats"]
        sample: dict[str, Any] = {"ts": data.get("timestamp")}
        if data.get("machine_stats"):
            sample["stats"] = data["machine_stats"]
        try:
            task, project = None, None
            if data.get("task"):
                task, project = await self._record_on_task(caller, worker, data["task"], now)
                sample["task"] = task["id"]  # a refused task does not make the worker active
            _set(entry, "task", task)
            _set(entry, "project", project)
            entry["last_report_time"] = now
        finally:  # the report is recorded even when its task is refused, as ClearML does
            timeout = entry.get("register_timeout") or DEFAULT_TIMEOUT
            await self.registry.save(caller.company, worker, entry, timeout)
            await self.registry.add_sample(caller.company, worker, sample, int(time.time() * 1000))

    async def _record_on_task(self, caller: Identity, worker: str, task_id: str, now: str) -> tuple[dict, dict | None]:
        """Write the report on the caller's task; its (id, name) reference and its project's."""
        task = await self.store.get(TASKS, task_id, companies=[caller.company])
        if task is None:
            raise ApiError(E.INVALID_TASK_ID, id=task_id, company=caller.company)

        def record(doc: dict) -> None:
            doc.update(last_worker=worker, last_worker_report=now, last_update=now)

        task = await modify(self.store, task, record)
        project = None
        if task.get("project"):
            found = await self.store.get(PROJECTS, task["project"], companies=[caller.company, ""], fields=["name"])
            project = _ref(found["id"], found.get("name")) if found else None
        return _ref(task["id"], task.get("name")), project

    # --- listing -------------------------------------------------------------------------------

    async def get_all(self, caller: Identity, data: dict) -> dict:
        entries = await self.registry.all(caller.company)
        last_seen = data.get("last_seen")
        if last_seen:
            now = time.time()  # a window longer than the epoch means every worker (and no year before 1)
            cutoff = datetime.fromtimestamp(now - min(max(1, last_seen), now), timezone.utc)
            entries = [e for e in entries if datetime.fromisoformat(e["last_activity_time"]) >= cutoff]
        pattern = data.get("worker_pattern")  # not in the spec; the agent sends it for dynamic GPUs
        if isinstance(pattern, str) and pattern:
            entries = [e for e in entries if fnmatch.fnmatchcase(e["id"], pattern)]
        entries = [
            e for e in entries
            if _tags_match(e.get("tags"), data.get("tags"))
            and _tags_match(e.get("system_tags"), data.get("system_tags"))
        ]
        return {"workers": await self._render(caller.company, entries)}

    async def _render(self, company: str, entries: list[dict]) -> list[dict]:
        queue_ids = {q for e in entries for q in (e.get("queues") or [])}
        queue_ids |= {e["queue"] for e in entries if e.get("queue")}
        queues: dict[str, dict] = {}
        heads: dict[str, str] = {}  # queue -> the task at its head
        if queue_ids:
            where = In("id", tuple(sorted(queue_ids)))
            for doc in await self.store.find(QUEUES, companies=[company], where=where, fields=["name"]):
                size = await self.queues.length(doc["id"])
                queues[doc["id"]] = {"id": doc["id"], "name": doc.get("name"), "num_tasks": size}
                head = await self.queues.entries(doc["id"], 1) if size else []
                if head:
                    heads[doc["id"]] = head[0][0]
        task_ids = {e["task"]["id"] for e in entries if e.get("task")} | set(heads.values())
        tasks: dict[str, dict] = {}
        if task_ids:
            found = await self.store.find(
                TASKS, companies=[company, ""], where=In("id", tuple(sorted(task_ids))),
                fields=["name", "started", "last_iteration", "status"],
            )
            tasks = {t["id"]: t for t in found}

        def queue_entry(queue_id: str) -> dict:
            out = dict(queues.get(queue_id) or {"id": queue_id})
            head = heads.get(queue_id)
            if head:
                out["next_task"] = _ref(head, (tasks.get(head) or {}).get("name"))
            return {k: v for k, v in out.items() if v is not None}

        now = time.time()
        out = []
        for entry in entries:
            worker = {k: v for k, v in entry.items() if k not in ("machine_stats", "queue", "queues", "task")}
            if entry.get("task"):
                current = dict(entry["task"])
                task = tasks.get(current["id"])
                if task is not None:
                    started = task.get("started")
                    current["running_time"] = (
                        int((now - datetime.fromisoformat(started).timestamp()) * 1000) if started else 0
                    )
                    current["last_iteration"] = task.get("last_iteration", 0)
                worker["task"] = current
            if entry.get("queue"):
                worker["queue"] = queue_entry(entry["queue"])
            worker["queues"] = [queue_entry(q) for q in entry.get("queues") or []]
            out.append(worker)
        return out

    # --- statistics ----------------------------------------------------------------------------

    async def metric_keys(self, caller: Identity, worker_ids: Sequence[str] | None) -> dict:
        found = await self.registry.metric_keys(caller.company, list(worker_ids) if worker_ids else None)
        categories: dict[str, list[str]] = {}
        for key in sorted(found):
            categories.setdefault(key.partition("_")[0], []).append(key)
        return {"categories": [{"name": n, "metric_keys": keys} for n, keys in sorted(categories.items())]}

    @staticmethod
    def _range(data: dict) -> tuple[float, float, int]:
        start, end, interval = data["from_date"], data["to_date"], data["interval"]
        if start >= end:
            raise ApiError(E.FIELDS_VALUE_ERROR, "from_date must be less than to_date", from_date=start, to_date=end)
        if interval < 1:
            raise ApiError(E.VALIDATION_ERROR, "interval must be at least 1", field="interval")
        if (end - start) / interval > MAX_INTERVALS:
            raise ApiError(E.FIELDS_VALUE_ERROR, f"at most {MAX_INTERVALS} intervals per answer", interval=interval)
        return start, end, interval

    async def stats(self, caller: Identity, data: dict) -> dict:
        start, end, interval = self._range(data)
        wanted: dict[str, list[str]] = {}
        for item in data["items"]:
            if not item.get("key"):
                continue
            aggregation = item.get("category") or item.get("aggregation") or "avg"
            if aggregation not in AGGREGATIONS:
                raise ApiError(E.VALIDATION_ERROR, f"unknown aggregation {aggregation}", field="items.category")
            aggs = wanted.setdefault(item["key"], [])
            if aggregation not in aggs:
                aggs.append(aggregation)
        split = bool(data.get("split_by_variant"))
        cutoff = end - INCOMPLETE_TOLERANCE * interval
        only = list(data["worker_ids"]) if data.get("worker_ids") else None
        found = await self.registry.samples(caller.company, only, start * 1000, end * 1000)
        workers = []
        for worker, samples in found.items():
            # (metric, variant or None) -> bucket start -> values
            series: dict[tuple[str, str | None], dict[int, list[float]]] = {}
            for sample in samples:
                bucket = int(math.floor(sample["_at"] / 1000 / interval) * interval)
                if bucket > cutoff:
                    continue
                for metric, value in (sample.get("stats") or {}).items():
                    if metric not in wanted or value in (None, []):
                        continue
                    values = list(enumerate(value)) if isinstance(value, list) else [("total", value)]
                    for variant, v in values:
                        if not isinstance(v, (int, float)) or isinstance(v, bool):
                            continue
                        key = (metric, str(variant) if split else None)
                        series.setdefault(key, {}).setdefault(bucket, []).append(float(v))
            metrics = []
            for (metric, variant), buckets in sorted(series.items(), key=_series_order):
                dates = sorted(buckets)
                stats = [
                    {"aggregation": agg, "values": [_aggregate(agg, buckets[d]) for d in dates]}
                    for agg in wanted[metric]
                ]
                entry: dict[str, Any] = {"metric": metric, "dates": dates, "stats": stats}
                if variant is not None:
                    entry["variant"] = variant
                metrics.append(entry)
            if metrics:
                workers.append({"worker": worker, "metrics": metrics})
        return {"workers": workers}

    async def activity(self, caller: Identity, data: dict) -> dict:
        start, end, interval = self._range(data)
        found = await self.registry.samples(caller.company, None, start * 1000, end * 1000)
        first = int(math.floor(start / interval) * interval)
        dates = list(range(first, int(end) + 1, interval))
        while dates and dates[-1] > end - INCOMPLETE_TOLERANCE * interval:
            dates.pop()
        total: dict[int, set[str]] = {d: set() for d in dates}
        active: dict[int, set[str]] = {d: set() for d in dates}
        for worker, samples in found.items():
            for sample in samples:
                bucket = int(math.floor(sample["_at"] / 1000 / interval) * interval)
                if bucket in total:
                    total[bucket].add(worker)
                    if sample.get("task"):
                        active[bucket].add(worker)
        return {
            "total": {"dates": dates, "counts": [len(total[d]) for d in dates]},
            "active": {"dates": dates, "counts": [len(active[d]) for d in dates]},
        }


def _series_order(item: tuple) -> tuple:
    """Metrics by name, their variants (device indexes) numerically."""
    (metric, variant), _ = item
    if variant is None:
        return (metric, 0, 0, "")
    return (metric, 1, int(variant), "") if variant.isdigit() else (metric, 2, 0, variant)


def _aggregate(aggregation: str, values: list[float]) -> float:
    if aggregation == "min":
        return min(values)
    if aggregation == "max":
        return max(values)
    return sum(values) / len(values)
