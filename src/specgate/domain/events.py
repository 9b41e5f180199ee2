"""Events: what running tasks report (console lines, scalars, vectors, plots, debug images).

Events are stored one per document in collection ``events`` (``id``, ``company``, ``task``, ``type``,
``timestamp`` in epoch ms, ``iter``, ``metric``, ``variant``, ``value``, ``msg``, ``level``, ``worker``,
``model_event``, ``@timestamp`` = time written, ...), under the company of the task they belong to.
Ids sort by the time they were written, so lines that share a timestamp keep the order they were sent in.

Adding events follows ClearML's ``EventBLL.add_events``: events that name no task, an unknown task,
another company's or a published one (unless ``allow_locked``), or have an unknown type are counted
in ``errors``/``errors_info`` and skipped; the rest are stored, and each task they touch gets, in one
compare-and-swap write, its ``last_iteration`` (the maximum ``iter``), ``last_metrics`` (per
md5(metric)/md5(variant): last value, min/max with their iterations, first value, count, mean),
``unique_metrics``, ``metric_stats``, ``last_update``/``last_change``/``last_changed_by`` and, while
running, ``active_duration`` (contract §5.1, §5.4). Model events (``model_event``) go the same way to
collection ``models``. A batch of which nothing could be stored is an error.
"""

from __future__ import annotations

import asyncio
import base64
import binascii
import hashlib
import itertools
import os
import time
from datetime import datetime
from typing import Any, Callable, Sequence

import orjson

from specgate._generated import errors as E
from specgate.adapters.ports import And, DocumentStore, Eq, Filter, In, Or, Range
from specgate.core.clock import now_iso
from specgate.core.errors import ApiError

from .identity import Identity
from .task_access import TASKS, load_readable, modify
from .task_states import IN_PROGRESS

EVENTS, MODELS = "events", "models"
LOG, SCALAR = "log", "training_stats_scalar"
EVENT_TYPES = frozenset((SCALAR, "training_stats_vector", "training_debug_image", "plot", LOG))
LOCKED_STATUSES = ("publishing", "published")
STORED_FIELDS = (
    "task", "type", "timestamp", "iter", "metric", "variant", "value", "msg", "level", "worker",
    "key", "url", "plot_str", "model_event",
)
MAX_LONG, MIN_LONG = 2**63 - 1, -(2**63)
MAX_LAST_METRICS = 2000  # metric/variant pairs tracked per task (ClearML's services.tasks.max_last_metrics)
DEFAULT_LOG_BATCH = 500
MAX_LOG_BATCH = 10_000
INSERT_CONCURRENCY = 64
HIDDEN = ("id", "company", "rev")  # store bookkeeping, not part of an event on the wire

_sequence = itertools.count()
_process_tag = os.urandom(3).hex()


def event_id() -> str:
    """32 hex characters that sort by creation: nanoseconds, a per-process counter, a process tag."""
    return f"{time.time_ns():016x}{next(_sequence) % 0x10000:04x}{_process_tag}{os.urandom(3).hex()}"


def hash_name(name: str) -> str:
    return hashlib.md5(name.encode()).hexdigest()


def now_ms() -> int:
    return int(time.time() * 1000)


class Events:
    def __init__(self, store: DocumentStore):
        self.store = store

    # --- adding --------------------------------------------------------------------------------

    async def add(self, caller: Identity, events: Sequence[dict], worker: str) -> dict:
        events = [dict(e) for e in events]
        task_ids, model_ids = _targets(events)
        valid_tasks = await self._valid(TASKS, caller.company, task_ids, lambda d: d.get("status") in LOCKED_STATUSES)
        valid_models = await self._valid(MODELS, caller.company, model_ids, lambda d: bool(d.get("ready")))

        errors: dict[str, int] = {}
        docs: list[dict] = []
        stats: dict[tuple[str, str], _Stats] = {}  # (collection, id) -> what the batch changes there
        written = now_iso()
        for event in events:
            problem = _check(event, valid_tasks, valid_models)
            if problem:
                errors[problem] = errors.get(problem, 0) + 1
                continue
            doc = _stored(event, caller.company, worker, written)
            collection = MODELS if doc["model_event"] else TASKS
            stats.setdefault((collection, doc["task"]), _Stats()).add(doc, event.get("x_axis_label"))
            docs.append(doc)

        added = 0
        for start in range(0, len(docs), INSERT_CONCURRENCY):
            chunk = docs[start : start + INSERT_CONCURRENCY]
            await asyncio.gather(*(self.store.insert(EVENTS, doc) for doc in chunk))
            added += len(chunk)
        for (collection, entity_id), change in stats.items():
            entity = (valid_tasks if collection == TASKS else valid_models)[entity_id]
            await self._update(collection, caller, entity, change)
        if not added:
            raise ApiError(E.EVENTS_NOT_ADDED, **errors)
        return {"added": added, "errors": sum(errors.values()), "errors_info": errors}

    async def _valid(
        self, collection: str, company: str, wanted: dict[str, bool], locked: Callable[[dict], bool]
    ) -> dict[str, dict]:
        """The documents events may be added to: the caller's own, and not locked unless allowed."""
        if not wanted:
            return {}
        found = await self.store.find(collection, companies=[company], where=In("id", tuple(wanted)))
        return {d["id"]: d for d in found if wanted[d["id"]] or not locked(d)}

    async def _update(self, collection: str, caller: Identity, doc: dict, change: "_Stats") -> None:
        def mutate(d: dict) -> None:
            now = now_iso()
            change.apply(d, with_metric_stats=collection == TASKS)
            d["last_update"] = now
            if collection == TASKS:
                d["last_change"], d["last_changed_by"] = now, caller.user
                if d.get("status") == IN_PROGRESS and d.get("started"):
                    elapsed = datetime.fromisoformat(now) - datetime.fromisoformat(d["started"])
                    d["active_duration"] = int(elapsed.total_seconds())

        try:
            if collection == TASKS:
                await modify(self.store, doc, mutate)
            else:
                await modify(self.store, doc, mutate, collection)
        except ApiError as error:  # deleted meanwhile: its events are stored, there is nothing to update
            if error.code is not E.INVALID_TASK_ID:
                raise

    # --- reading logs --------------------------------------------------------------------------

    async def _log_task(self, company: str, task_id: str) -> tuple[list[str], Filter]:
        """The companies to read a task's log in (a public task's events stay with the company that
        published it, ``company_origin``) and the filter of its log lines; 400/101 for a task the
        caller cannot read."""
        task = await load_readable(self.store, company, task_id)
        owner = task["company"] or task.get("company_origin") or ""
        return [owner], And((Eq("task", task_id), Eq("type", LOG)))

    async def log_by_time(self, company: str, data: dict) -> dict:
        """events.get_task_log from 2.9: a batch of lines next to ``from_timestamp`` (by default the
        newest, or with ``navigate_earlier: false`` the oldest), walking towards older or newer lines.
        Lines sharing the boundary timestamp are all included, so the next call's ``from_timestamp``
        (the last line's) loses none."""
        companies, base = await self._log_task(company, data["task"])
        size = _batch_size(data)
        earlier = data.get("navigate_earlier", True)
        where = base
        start = data.get("from_timestamp")
        if start is not None:
            where = And((base, Range("timestamp", lt=start) if earlier else Range("timestamp", gt=start)))
        order = [("timestamp", earlier), ("id", earlier)]
        total = await self.store.count(EVENTS, companies=companies, where=where)
        docs = await self.store.find(EVENTS, companies=companies, where=where, order=order, limit=size)
        if len(docs) == size:
            last = docs[-1]
            beyond = Range("id", lt=last["id"]) if earlier else Range("id", gt=last["id"])
            same_time = And((base, Eq("timestamp", last["timestamp"]), beyond))
            docs += await self.store.find(EVENTS, companies=companies, where=same_time, order=order, limit=MAX_LOG_BATCH)
        wanted = data.get("order")
        if (earlier and wanted == "asc") or (not earlier and wanted == "desc"):
            docs.reverse()
        events = [_wire(d) for d in docs]
        return {"events": events, "returned": len(events), "total": total}

    async def log_by_scroll(self, company: str, data: dict) -> dict:
        """events.get_task_log before 2.9: read from the ``head`` (oldest first) or the ``tail`` of the
        log, ``batch_size`` lines per call, continuing after the position ``scroll_id`` names; the lines
        are returned in ``order`` (ascending by default)."""
        companies, base = await self._log_task(company, data["task"])
        task_id = data["task"]
        size = _batch_size(data)
        descending = (data.get("from") or "head") == "tail"
        where = base
        scroll = data.get("scroll_id")
        position = _read_scroll(scroll, task_id, descending) if scroll else None
        if position is not None:
            timestamp, last_id = position
            after = (lambda f, v: Range(f, lt=v)) if descending else (lambda f, v: Range(f, gt=v))
            later = Or((after("timestamp", timestamp), And((Eq("timestamp", timestamp), after("id", last_id)))))
            where = And((base, later))
        order = [("timestamp", descending), ("id", descending)]
        docs = await self.store.find(EVENTS, companies=companies, where=where, order=order, limit=size)
        total = await self.store.count(EVENTS, companies=companies, where=base)
        if docs:
            scroll = _make_scroll(task_id, descending, docs[-1])
        elif not scroll:
            scroll = _make_scroll(task_id, descending, None)
        if descending != (data.get("order") == "desc"):
            docs.reverse()
        events = [_wire(d) for d in docs]
        return {"events": events, "returned": len(events), "total": total, "scroll_id": scroll}

    # --- clean-up ------------------------------------------------------------------------------

    async def delete_for_tasks(self, company: str, task_ids: Sequence[str]) -> int:
        """Drop the events of deleted or reset tasks (for tasks.delete / tasks.reset)."""
        if not task_ids:
            return 0
        return await self.store.delete_many(EVENTS, companies=[company], where=In("task", tuple(task_ids)))


# --- helpers ---------------------------------------------------------------------------------------


def _targets(events: list[dict]) -> tuple[dict[str, bool], dict[str, bool]]:
    """Task ids and model ids named by the events, each with its ``allow_locked`` setting."""
    tasks: dict[str, bool] = {}
    models: dict[str, bool] = {}
    for event in events:
        if event.get("model_event"):
            if event.get("model") is not None:
                event["task"] = event.pop("model")
            targets = models
        else:
            event["model_event"] = False
            targets = tasks
        target, allow = event.get("task"), bool(event.pop("allow_locked", False))
        if not target:
            continue
        if targets.setdefault(target, allow) != allow:
            raise ApiError(E.VALIDATION_ERROR, f"Inconsistent allow_locked setting in the passed events for {target}")
    both = sorted(set(tasks) & set(models))
    if both:
        raise ApiError(E.VALIDATION_ERROR, "Inconsistent model_event setting in the passed events", tasks=both)
    return tasks, models


def _check(event: dict, tasks: dict, models: dict) -> str:
    """Why the event cannot be stored, or "" (ClearML's ``errors_info`` wording)."""
    kind = event.get("type")
    if kind is None:
        return "Event must have a 'type' field"
    kind = event["type"] = kind.replace(" ", "_")
    if kind not in EVENT_TYPES:
        return f"Invalid event type {kind}"
    if event["model_event"] and kind == LOG:
        return "Task log events are not supported for models"
    target = event.get("task")
    if target is None:
        return "Event must have a 'task' field"
    if target not in (models if event["model_event"] else tasks):
        return f"Invalid {'model' if event['model_event'] else 'task'} id {target}"
    if event.get("iter") is not None and not MIN_LONG <= int(event["iter"]) <= MAX_LONG:
        return f"Iteration number should not exceed {MAX_LONG}"
    return ""


def _stored(event: dict, company: str, worker: str, written: str) -> dict:
    if "ts" in event:
        event["timestamp"] = event.pop("ts")
    if "values" in event:
        event["value"] = event.pop("values")
    doc = {k: event[k] for k in STORED_FIELDS if event.get(k) is not None}
    doc.update(id=event_id(), company=company, **{"@timestamp": written})
    doc.setdefault("timestamp", now_ms())
    doc.setdefault("worker", worker)
    if doc.get("iter") is not None:
        doc["iter"] = int(doc["iter"])
    doc["metric"] = event.get("metric") or ""
    doc["variant"] = event.get("variant") or ""
    return doc


class _Stats:
    """What one batch reports for one task or model, folded as ClearML folds it."""

    def __init__(self) -> None:
        self.iteration: int | None = None
        self.scalars: dict[str, dict[str, dict]] = {}  # md5(metric) -> md5(variant) -> summary
        self.last_by_type: dict[str, dict[str, Any]] = {}  # metric -> event type -> latest timestamp

    def add(self, doc: dict, x_axis_label: str | None) -> None:
        if doc.get("iter") is not None:
            self.iteration = max(doc["iter"], self.iteration if self.iteration is not None else doc["iter"])
        latest = self.last_by_type.setdefault(doc["metric"], {})
        if doc["type"] not in latest or latest[doc["type"]] < doc["timestamp"]:
            latest[doc["type"]] = doc["timestamp"]
        value = doc.get("value")
        if doc["type"] != SCALAR or not isinstance(value, (int, float)) or isinstance(value, bool):
            return
        summary = self.scalars.setdefault(hash_name(doc["metric"]), {}).setdefault(hash_name(doc["variant"]), {})
        summary.update(metric=doc["metric"], variant=doc["variant"])
        summary["count"] = summary.get("count", 0) + 1
        summary["total"] = summary.get("total", 0) + value
        iteration, timestamp = doc.get("iter", 0), doc["timestamp"]
        if (iteration, timestamp) >= (summary.get("iter", iteration), summary.get("timestamp", timestamp)):
            summary.update(value=value, iter=iteration, timestamp=timestamp)
            if x_axis_label is not None:
                summary["x_axis_label"] = x_axis_label
        if summary.get("first_value_iteration") is None or iteration < summary["first_value_iteration"]:
            summary.update(first_value=value, first_value_iteration=iteration)
        if summary.get("min_value") is None or value < summary["min_value"]:
            summary.update(min_value=value, min_value_iteration=iteration)
        if summary.get("max_value") is None or value > summary["max_value"]:
            summary.update(max_value=value, max_value_iteration=iteration)

    def apply(self, doc: dict, *, with_metric_stats: bool) -> None:
        """Fold this batch into a stored task or model (ClearML's ``update_statistics``)."""
        if self.iteration is not None:
            doc["last_iteration"] = max(doc.get("last_iteration") or 0, self.iteration)
        if self.scalars:
            self._apply_scalars(doc)
        if with_metric_stats and self.last_by_type:
            stats = doc["metric_stats"] = dict(doc.get("metric_stats") or {})
            for metric, by_type in self.last_by_type.items():
                entry = stats.setdefault(hash_name(metric), {"metric": metric, "event_stats_by_type": {}})
                for kind, timestamp in by_type.items():
                    known = entry["event_stats_by_type"].get(kind, {}).get("last_update")
                    if known is None or known < timestamp:
                        entry["event_stats_by_type"][kind] = {"last_update": timestamp}

    def _apply_scalars(self, doc: dict) -> None:
        last = doc["last_metrics"] = dict(doc.get("last_metrics") or {})
        unique = list(doc.get("unique_metrics") or [])
        known = set(unique)
        for metric_hash, variants in self.scalars.items():
            for variant_hash, s in variants.items():
                name = f"{s['metric']}/{s['variant']}"
                if name not in known:
                    if len(known) >= MAX_LAST_METRICS:
                        continue
                    known.add(name)
                    unique.append(name)
                entry = last.setdefault(metric_hash, {}).setdefault(variant_hash, {})
                entry.update(metric=s["metric"], variant=s["variant"], value=s["value"])
                if "x_axis_label" in s:
                    entry["x_axis_label"] = s["x_axis_label"]
                if entry.get("first_value") is None:
                    entry.update(first_value=s["first_value"], first_value_iteration=s["first_value_iteration"])
                if entry.get("min_value") is None or entry["min_value"] > s["min_value"]:
                    entry.update(min_value=s["min_value"], min_value_iteration=s["min_value_iteration"])
                if entry.get("max_value") is None or entry["max_value"] < s["max_value"]:
                    entry.update(max_value=s["max_value"], max_value_iteration=s["max_value_iteration"])
                count = entry.get("count") or 0
                mean = entry.get("mean_value") or 0
                entry["count"] = count + s["count"]
                entry["mean_value"] = round((mean * count + s["total"]) / entry["count"], 2)  # ClearML rounds to 2
        doc["unique_metrics"] = unique


def _batch_size(data: dict) -> int:
    size = data.get("batch_size")
    if size is None:
        return DEFAULT_LOG_BATCH
    if size < 1:
        raise ApiError(E.VALIDATION_ERROR, "batch_size must be at least 1", field="batch_size")
    return min(size, MAX_LOG_BATCH)


def _wire(doc: dict) -> dict:
    return {k: v for k, v in doc.items() if k not in HIDDEN}


def _make_scroll(task_id: str, descending: bool, last: dict | None) -> str:
    position = [last["timestamp"], last["id"]] if last else None
    raw = orjson.dumps({"t": task_id, "d": descending, "p": position})
    return base64.urlsafe_b64encode(raw).decode().rstrip("=")


def _read_scroll(scroll: str, task_id: str, descending: bool) -> tuple[Any, str] | None:
    """The (timestamp, id) of the last line a scroll returned; None if it returned none yet."""
    try:
        state = orjson.loads(base64.urlsafe_b64decode(scroll + "=" * (-len(scroll) % 4)))
    except (binascii.Error, ValueError):
        state = None
    if not isinstance(state, dict) or state.get("t") != task_id or state.get("d") != descending:
        raise ApiError(E.VALIDATION_ERROR, "invalid scroll_id for this task and direction", field="scroll_id")
    position = state.get("p")
    return None if position is None else (position[0], position[1])
