"""workers.* and events.* over raw HTTP (contract §5.4, §10.3, §10.4, §11, Appendix A).

The worker registry lives in the embedded Valkey with real expiry; events go to the document store and
fold into the task (last_iteration, last_metrics, last_update). Every test runs on the embedded SQLite
store and on MongoDB (nx-27017), since reading logs back uses range and tie-break filters.
"""

from __future__ import annotations

import asyncio
import dataclasses
import hashlib
import time
import uuid

import orjson
import pytest


from specgate.core.clock import now_iso
from specgate.domain.accounts import COMPANIES, CREDENTIALS, USERS
from specgate.domain.identity import SYSTEM_COMPANY

from .conftest import Api, Server, server_on_store
from .test_tasks_support import fails, new_project, new_task, second_company, task


def unversioned(api: Api, endpoint: str, **data) -> tuple[int, dict]:
    """As the agent calls workers.* and events.add_batch: no version in the path (served at the max)."""
    return api.raw("GET", f"/{endpoint}", json=data, headers={"Authorization": f"Bearer {api.token}"})


def batch(api: Api, events: list[dict], method: str = "POST", worker: str | None = None) -> tuple[int, dict]:
    headers = {"Authorization": f"Bearer {api.token}", "Content-Type": "application/json-lines"}
    if worker:
        headers["X-ClearML-Worker"] = worker
    body = b"\n".join(orjson.dumps(e) for e in events)
    return api.raw(method, "/events.add_batch", content=body, headers=headers)


def added(api: Api, events: list[dict], **kwargs) -> dict:
    status, body = batch(api, events, **kwargs)
    assert status == 200, body["meta"]
    return body["data"]


def worker_id() -> str:
    return f"host-{uuid.uuid4().hex[:8]}:0"


def workers(api: Api, **data) -> dict[str, dict]:
    return {w["id"]: w for w in api.ok("workers.get_all", **data)["workers"]}


def log_line(task_id: str, msg: str, timestamp: int, **more) -> dict:
    return {"type": "log", "task": task_id, "timestamp": timestamp, "level": "info", "msg": msg, "method": "get", **more}


def md5(text: str) -> str:
    return hashlib.md5(text.encode()).hexdigest()


@pytest.fixture(scope="module", params=["sqlite", "mongo"])
def server(request, tmp_path_factory: pytest.TempPathFactory):
    """Overrides conftest's server: one per document store."""
    with server_on_store(request.param, tmp_path_factory.mktemp(f"workers-events-{request.param}"), "specgate_workers_events") as info:
        yield info


@pytest.fixture(scope="module")
def other(server: Server):
    """A client of a second company (as test_tasks_support.second_company, whose store writes run on a
    loop of their own, which the server's MongoDB client refuses: there a store of its own is used)."""
    settings = server.app.services.settings
    if not settings.mongo_url:
        client = second_company(server)
    else:
        from specgate.adapters.mongo import MongoStore

        company, user = uuid.uuid4().hex, uuid.uuid4().hex
        key, secret = uuid.uuid4().hex[:30].upper(), uuid.uuid4().hex + uuid.uuid4().hex
        now = now_iso()

        async def provision() -> None:
            store = MongoStore(settings.mongo_url)
            await store.open()
            try:
                await store.insert(COMPANIES, {"id": company, "company": company, "name": "other", "created": now})
                await store.insert(USERS, {"id": user, "company": company, "name": "other", "role": "admin", "created": now})
                await store.insert(CREDENTIALS, {
                    "id": key, "company": SYSTEM_COMPANY, "user": user, "user_company": company,
                    "secret_sha256": hashlib.sha256(secret.encode()).hexdigest(), "label": "test", "created": now,
                })
            finally:
                await store.close()

        asyncio.run(provision())
        client = Api(dataclasses.replace(server, access_key=key, secret_key=secret))
    yield client
    client.close()


# --- workers ---------------------------------------------------------------------------------------


def new_queue(api: Api) -> dict:
    name = f"queue {uuid.uuid4().hex[:8]}"
    return {"id": api.ok("queues.create", name=name)["id"], "name": name}


def test_register_list_and_unregister_without_a_version(api: Api) -> None:
    queue = new_queue(api)
    worker = worker_id()
    status, body = unversioned(api, "workers.register", worker=worker, queues=[queue["id"]], timeout=60, tags=["gpu"])
    assert status == 200 and body["data"] == {}
    entry = workers(api)[worker]
    assert entry["ip"] == "127.0.0.1" and entry["register_timeout"] == 60 and entry["tags"] == ["gpu"]
    assert entry["register_time"] == entry["last_activity_time"]
    assert entry["user"]["id"] and entry["company"]["id"]
    assert entry["queues"] == [{"id": queue["id"], "name": queue["name"], "num_tasks": 0}]
    assert "task" not in entry and "last_report_time" not in entry
    waiting = new_task(api, name="waiting task")
    api.ok("tasks.enqueue", task=waiting, queue=queue["id"])
    assert workers(api)[worker]["queues"] == [
        {"id": queue["id"], "name": queue["name"], "num_tasks": 1, "next_task": {"id": waiting, "name": "waiting task"}}
    ]
    status, body = unversioned(api, "workers.unregister", worker=worker, queues=[])
    assert status == 200 and body["data"] == {}
    assert worker not in workers(api)
    status, body = unversioned(api, "workers.unregister", worker=worker)  # unknown: not an error
    assert status == 200 and body["data"] == {}


def test_register_rejects_unknown_queues_and_bad_timeouts(api: Api) -> None:
    worker = worker_id()
    message = fails(api, "workers.register", 400, 701, worker=worker, queues=["f" * 32])
    assert "f" * 32 in message
    fails(api, "workers.register", 400, 12, worker=worker, timeout=0)
    assert worker not in workers(api)


def test_registration_lapses_after_its_timeout_unless_reports_refresh_it(api: Api) -> None:
    lapsing, kept = worker_id(), worker_id()
    api.ok("workers.register", worker=lapsing, timeout=1, tags=["old"])
    api.ok("workers.register", worker=kept, timeout=2)
    first = workers(api)
    assert {lapsing, kept} <= set(first)
    time.sleep(1.3)
    api.ok("workers.status_report", worker=kept, timestamp=int(time.time() * 1000))
    time.sleep(1.3)  # 2.6 s after registration, 1.3 s after the report
    listed = workers(api)
    assert lapsing not in listed and kept in listed
    assert listed[kept]["register_timeout"] == 2
    time.sleep(2.2)
    assert kept not in workers(api)
    # the lapsed entry is gone, not just hidden: a report registers the worker afresh
    api.ok("workers.status_report", worker=lapsing, timestamp=int(time.time() * 1000))
    again = workers(api)[lapsing]
    assert again["register_time"] > first[lapsing]["register_time"] and again["register_timeout"] == 600
    assert "tags" not in again


def test_status_report_registers_an_unknown_worker(api: Api) -> None:
    queue = new_queue(api)["id"]
    worker = worker_id()
    stamp = int(time.time() * 1000)
    status, body = unversioned(
        api, "workers.status_report", worker=worker, queue=queue, queues=[queue], timestamp=stamp,
        machine_stats=None, tags=None, is_daemon=True,
    )
    assert status == 200 and body["data"] == {}
    entry = workers(api)[worker]
    assert entry["register_timeout"] == 600
    assert entry["last_report_time"] == entry["last_activity_time"]
    assert entry["queue"]["id"] == queue and [q["id"] for q in entry["queues"]] == [queue]


def test_status_report_with_a_task_records_the_worker_on_the_task(api: Api) -> None:
    project = new_project(api)
    task_id = new_task(api, name="run by a worker", project=project)
    api.ok("tasks.started", task=task_id)
    before = task(api, task_id)
    worker = worker_id()
    api.ok("workers.register", worker=worker)
    status, body = unversioned(api, "workers.status_report", worker=worker, task=task_id, timestamp=int(time.time() * 1000))
    assert status == 200, body["meta"]
    after = task(api, task_id)
    assert after["last_worker"] == worker
    assert after["last_worker_report"] == after["last_update"] > before["last_update"]
    entry = workers(api)[worker]
    assert entry["task"]["id"] == task_id and entry["task"]["name"] == "run by a worker"
    assert entry["task"]["last_iteration"] == 0 and entry["task"]["running_time"] >= 0
    assert entry["project"]["id"] == project
    # a report without a task clears it from the entry
    api.ok("workers.status_report", worker=worker, timestamp=int(time.time() * 1000))
    assert "task" not in workers(api)[worker] and "project" not in workers(api)[worker]


def test_status_report_for_an_unknown_task_is_400_101_but_still_recorded(api: Api, other: Api) -> None:
    worker = worker_id()
    missing = uuid.uuid4().hex
    message = fails(api, "workers.status_report", 400, 101, worker=worker, task=missing, timestamp=1)
    assert missing in message
    entry = workers(api)[worker]  # registered by the report even though the task was refused
    assert "task" not in entry and "last_report_time" not in entry
    foreign = new_task(other, name="their task")
    fails(api, "workers.status_report", 400, 101, worker=worker, task=foreign, timestamp=1)
    assert "last_worker" not in task(other, foreign)


def test_get_all_filters_by_last_seen_and_tags(api: Api) -> None:
    quiet, gpu, cpu = worker_id(), worker_id(), worker_id()
    api.ok("workers.register", worker=quiet, timeout=600)
    time.sleep(1.2)
    api.ok("workers.register", worker=gpu, tags=["gpu", "fast"])
    api.ok("workers.register", worker=cpu, tags=["cpu"])
    recent = workers(api, last_seen=1)
    assert gpu in recent and cpu in recent and quiet not in recent
    assert quiet in workers(api, last_seen=0) and quiet in workers(api)
    tagged = workers(api, tags=["gpu"])
    assert gpu in tagged and cpu not in tagged and quiet not in tagged
    untagged = workers(api, tags=["-gpu"])
    assert gpu not in untagged and cpu in untagged and quiet in untagged
    # worker_pattern is not in the spec, but the agent sends it (dynamic GPUs) and ClearML honours it
    assert set(workers(api, worker_pattern=gpu.split(":")[0] + ":*")) == {gpu}


def test_workers_are_per_company(api: Api, other: Api) -> None:
    worker = worker_id()
    api.ok("workers.register", worker=worker)
    assert worker not in workers(other)
    other.ok("workers.unregister", worker=worker)  # the other company's unregister cannot remove ours
    assert worker in workers(api)
    other.ok("workers.register", worker=worker, tags=["theirs"])  # same id, separate entry
    assert "tags" not in workers(api)[worker] and workers(other)[worker]["tags"] == ["theirs"]


def test_runtime_properties_are_an_empty_list(api: Api) -> None:
    status, body = unversioned(api, "workers.get_runtime_properties", worker=worker_id())
    assert status == 200 and body["data"] == {"runtime_properties": []}


def test_machine_statistics_and_activity(api: Api) -> None:
    busy, idle = worker_id(), worker_id()
    task_id = new_task(api, name="measured task")
    now = time.time()
    for cpu, memory in (([10.0, 30.0], 100), ([50.0, 70.0], 300)):
        api.ok("workers.status_report", worker=busy, task=task_id, timestamp=int(now * 1000),
               machine_stats={"cpu_usage": cpu, "memory_used": memory})
    api.ok("workers.status_report", worker=idle, timestamp=int(now * 1000), machine_stats={"memory_used": 50})
    keys = {c["name"]: c["metric_keys"] for c in api.ok("workers.get_metric_keys", worker_ids=[busy])["categories"]}
    assert keys == {"cpu": ["cpu_usage"], "memory": ["memory_used"]}
    span = {"from_date": now - 120, "to_date": now + 60, "interval": 60}
    items = [{"key": "cpu_usage", "category": "avg"}, {"key": "cpu_usage", "category": "max"},
             {"key": "memory_used", "category": "min"}]
    stats = {w["worker"]: w["metrics"] for w in api.ok("workers.get_stats", worker_ids=[busy], items=items, **span)["workers"]}
    assert list(stats) == [busy]
    by_metric = {m["metric"]: m for m in stats[busy]}
    bucket = int(now // 60 * 60)
    assert by_metric["cpu_usage"]["dates"] == [bucket]
    assert by_metric["cpu_usage"]["stats"] == [{"aggregation": "avg", "values": [40.0]}, {"aggregation": "max", "values": [70.0]}]
    assert by_metric["memory_used"]["stats"] == [{"aggregation": "min", "values": [100.0]}]
    split = api.ok("workers.get_stats", worker_ids=[busy], items=items[:1], split_by_variant=True, **span)["workers"][0]
    assert [(m["variant"], m["stats"][0]["values"]) for m in split["metrics"]] == [("0", [30.0]), ("1", [50.0])]
    report = api.ok("workers.get_activity_report", **span)
    at = report["total"]["dates"].index(bucket)
    assert report["total"]["counts"][at] >= 2 and report["active"]["counts"][at] >= 1
    assert report["total"]["dates"] == report["active"]["dates"] == sorted(report["total"]["dates"])
    assert all(d <= span["to_date"] - 54 for d in report["total"]["dates"])  # the incomplete interval is left out
    fails(api, "workers.get_activity_report", 400, 16, from_date=now, to_date=now - 1, interval=60)


# --- events: logs ----------------------------------------------------------------------------------


def test_add_batch_stores_log_lines_and_get_task_log_returns_them(api: Api) -> None:
    task_id = new_task(api, name="chatty task")
    before = task(api, task_id)["last_update"]
    lines = [log_line(task_id, f"line {i}", 1_700_000_000_000 + i) for i in range(5)]
    lines.append(log_line(task_id, "line 5 (same ms)", 1_700_000_000_004))  # ties keep the order sent
    result = added(api, lines, method="GET", worker="laptop")
    assert result == {"added": 6, "errors": 0, "errors_info": {}}
    assert task(api, task_id)["last_update"] > before
    newest_first = api.ok("events.get_task_log", task=task_id)
    assert newest_first["returned"] == newest_first["total"] == 6
    msgs = [e["msg"] for e in newest_first["events"]]
    assert msgs == ["line 5 (same ms)", "line 4", "line 3", "line 2", "line 1", "line 0"]
    first = newest_first["events"][-1]
    assert first["worker"] == "laptop" and first["task"] == task_id and first["type"] == "log"
    assert first["timestamp"] == 1_700_000_000_000 and first["level"] == "info"
    assert not {"id", "company", "rev", "method"} & set(first)
    ascending = api.ok("events.get_task_log", task=task_id, order="asc")
    assert [e["msg"] for e in ascending["events"]] == msgs[::-1]


def test_sdk_console_output_read_is_the_newest_lines_ascending(api: Api) -> None:
    """Task.get_reported_console_output: order asc, navigate_earlier true, batch_size n."""
    task_id = new_task(api, name="console task")
    added(api, [log_line(task_id, f"out {i}", 1_000 + i, worker="w") for i in range(4)])
    result = api.ok("events.get_task_log", task=task_id, order="asc", navigate_earlier=True, batch_size=2)
    assert [e["msg"] for e in result["events"]] == ["out 2", "out 3"]
    assert result["returned"] == 2 and result["total"] == 4


def test_navigating_by_timestamp_loses_no_line_at_a_batch_boundary(api: Api) -> None:
    task_id = new_task(api, name="paged log")
    stamps = [100, 200, 200, 200, 300]
    added(api, [log_line(task_id, f"{t}-{i}", t) for i, t in enumerate(stamps)])
    page = api.ok("events.get_task_log", task=task_id, batch_size=2)
    assert [e["msg"] for e in page["events"]] == ["300-4", "200-3", "200-2", "200-1"]
    older = api.ok("events.get_task_log", task=task_id, batch_size=2, from_timestamp=page["events"][-1]["timestamp"])
    assert [e["msg"] for e in older["events"]] == ["100-0"] and older["total"] == 1
    forward = api.ok("events.get_task_log", task=task_id, batch_size=2, navigate_earlier=False, from_timestamp=100)
    assert [e["msg"] for e in forward["events"]] == ["200-1", "200-2", "200-3"]
    assert forward["total"] == 4
    newest_down = api.ok("events.get_task_log", task=task_id, navigate_earlier=False, order="desc")
    assert [e["msg"] for e in newest_down["events"]] == ["300-4", "200-3", "200-2", "200-1", "100-0"]


def test_get_task_log_before_2_9_scrolls(api: Api) -> None:
    task_id = new_task(api, name="scrolled log")
    added(api, [log_line(task_id, f"s{i}", 5_000 + i // 2) for i in range(5)])  # pairs share a timestamp
    seen, scroll = [], None
    for _ in range(4):
        page = api.ok("events.get_task_log", version="2.1", task=task_id, batch_size=2, **({"scroll_id": scroll} if scroll else {}))
        assert page["total"] == 5 and page["returned"] == len(page["events"])
        seen += [e["msg"] for e in page["events"]]
        scroll = page["scroll_id"]
    assert seen == ["s0", "s1", "s2", "s3", "s4"]  # then empty pages
    tail = api.ok("events.get_task_log", version="2.1", task=task_id, batch_size=2, **{"from": "tail"})
    assert [e["msg"] for e in tail["events"]] == ["s3", "s4"]
    tail_desc = api.ok("events.get_task_log", version="2.1", task=task_id, batch_size=3, order="desc", **{"from": "tail"})
    assert [e["msg"] for e in tail_desc["events"]] == ["s4", "s3", "s2"]
    fails(api, "events.get_task_log", 400, 12, version="2.1", task=new_task(api, name="other log"), scroll_id=scroll)


def test_add_batch_without_items_is_400_17(api: Api) -> None:
    status, body = api.raw(
        "POST", "/events.add_batch", content=b"",
        headers={"Authorization": f"Bearer {api.token}", "Content-Type": "application/json-lines"},
    )
    meta = body["meta"]
    assert (status, meta["result_code"], meta["result_subcode"]) == (400, 400, 17) and body["data"] == {}
    assert meta["result_msg"] == "Batch request contains no items"


def test_a_bad_item_is_400_12_naming_the_item(api: Api) -> None:
    task_id = new_task(api, name="bad batch")
    status, body = batch(api, [log_line(task_id, "fine", 1), log_line(task_id, 5, 2)])
    meta = body["meta"]
    assert (status, meta["result_subcode"]) == (400, 12) and body["data"] == {}
    assert "in batch item #1" in meta["result_msg"]
    assert api.ok("events.get_task_log", task=task_id)["total"] == 0  # nothing of the batch was stored


def test_a_bad_item_error_names_the_field(api: Api) -> None:
    task_id = new_task(api, name="bad field")
    status, body = batch(api, [log_line(task_id, "fine", 1), log_line(task_id, 5, 2)])
    assert status == 400 and "'msg'" in body["meta"]["result_msg"] and "batch item #1" in body["meta"]["result_msg"]


def test_events_for_unknown_or_foreign_tasks_are_counted_as_errors(api: Api, other: Api) -> None:
    task_id = new_task(api, name="mixed batch")
    missing = uuid.uuid4().hex
    foreign = new_task(other, name="their events")
    result = added(api, [log_line(task_id, "ok", 1), log_line(missing, "lost", 2), log_line(foreign, "theirs", 3),
                         {"task": task_id, "values": [1.0]}])  # fits a vector event, which may omit its type
    assert result["added"] == 1 and result["errors"] == 3
    assert result["errors_info"] == {f"Invalid task id {missing}": 1, f"Invalid task id {foreign}": 1,
                                     "Event must have a 'type' field": 1}
    status, body = batch(api, [log_line(missing, "lost", 2)])
    assert (status, body["meta"]["result_subcode"]) == (400, 131)
    assert other.ok("events.get_task_log", task=foreign)["total"] == 0


def test_another_company_cannot_read_a_task_log(api: Api, other: Api) -> None:
    task_id = new_task(api, name="private log")
    added(api, [log_line(task_id, "secret", 1)])
    message = fails(other, "events.get_task_log", 400, 101, task=task_id)
    assert task_id in message
    fails(other, "events.get_task_log", 400, 101, version="2.1", task=task_id)
    assert api.ok("events.get_task_log", task=task_id)["total"] == 1


def test_a_public_task_log_is_readable_by_every_company(api: Api, other: Api) -> None:
    task_id = new_task(api, name="shared log")
    added(api, [log_line(task_id, "for everyone", 1)])
    assert api.ok("tasks.make_public", ids=[task_id]) == {"updated": 1}
    assert [e["msg"] for e in other.ok("events.get_task_log", task=task_id)["events"]] == ["for everyone"]
    status, body = batch(other, [log_line(task_id, "not theirs to write", 2)])
    assert (status, body["meta"]["result_subcode"]) == (400, 131)


def test_published_tasks_take_events_only_with_allow_locked(api: Api) -> None:
    task_id = new_task(api, name="finished work")
    api.ok("tasks.started", task=task_id)
    api.ok("tasks.completed", task=task_id, publish=True)
    status, body = batch(api, [log_line(task_id, "late", 1)])
    assert (status, body["meta"]["result_subcode"]) == (400, 131)
    assert added(api, [log_line(task_id, "late", 1, allow_locked=True)])["added"] == 1


# --- events: metrics -------------------------------------------------------------------------------


def scalar(task_id: str, metric: str, variant: str, iteration: int, value: float, timestamp: int) -> dict:
    return {"type": "training_stats_scalar", "task": task_id, "metric": metric, "variant": variant,
            "iter": iteration, "value": value, "timestamp": timestamp}


def test_scalar_events_fold_into_last_metrics_and_last_iteration(api: Api) -> None:
    task_id = new_task(api, name="learning task")
    api.ok("tasks.started", task=task_id)
    before = task(api, task_id)
    first = [scalar(task_id, "loss", "train", i, v, 10 + i) for i, v in enumerate([5.0, 3.0, 4.0])]
    first.append(log_line(task_id, "epoch done", 20, iter=7))  # any event's iteration counts
    assert added(api, first)["added"] == 4
    found = task(api, task_id)
    assert found["last_iteration"] == 7 and found["last_update"] > before["last_update"]
    assert found["last_change"] == found["last_update"] and found["last_changed_by"] == before["last_changed_by"]
    entry = found["last_metrics"][md5("loss")][md5("train")]
    assert entry == {
        "metric": "loss", "variant": "train", "value": 4.0,
        "min_value": 3.0, "min_value_iteration": 1, "max_value": 5.0, "max_value_iteration": 0,
        "first_value": 5.0, "first_value_iteration": 0, "count": 3, "mean_value": 4.0,
    }
    second = [scalar(task_id, "loss", "train", 3, 1.0, 30), scalar(task_id, "loss", "eval", 3, 2.5, 30)]
    api.ok("events.add", **second[1])  # one event, at the newest version
    added(api, second[:1])
    found = task(api, task_id)
    assert found["last_iteration"] == 7
    entry = found["last_metrics"][md5("loss")][md5("train")]
    assert (entry["value"], entry["min_value"], entry["min_value_iteration"]) == (1.0, 1.0, 3)
    assert (entry["first_value"], entry["count"], entry["mean_value"]) == (5.0, 4, 3.25)
    assert found["last_metrics"][md5("loss")][md5("eval")]["value"] == 2.5
    added(api, [scalar(task_id, "acc", "val", 12, 0.5, 40)])
    assert task(api, task_id)["last_iteration"] == 12
    listed = api.ok("tasks.get_all", id=[task_id], only_fields=["unique_metrics", "metric_stats"])["tasks"][0]
    assert sorted(listed["unique_metrics"]) == ["acc/val", "loss/eval", "loss/train"]
    assert listed["metric_stats"][md5("loss")]["event_stats_by_type"]["training_stats_scalar"]["last_update"] == 30
