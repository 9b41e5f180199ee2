"""Status calls over raw HTTP (contract §5.2-§5.4, §9): transitions, force, bookkeeping, batches."""

from __future__ import annotations

from .conftest import Api
from .test_tasks_support import fails, new_project, new_task, task

STATUS_FIELDS = {"status", "status_reason", "status_message", "status_changed", "last_update", "last_change",
                 "last_changed_by"}


def test_invalid_transition_is_400_110_and_force_overrides_it(api: Api) -> None:
    task_id = new_task(api, name="not running")
    message = fails(api, "tasks.stopped", 400, 110, task=task_id)
    assert message == "Invalid task status (Invalid status change): current_status=created, new_status=stopped"
    assert task(api, task_id)["status"] == "created"
    result = api.ok("tasks.stopped", task=task_id, force=True, status_reason="r", status_message="m")
    assert result["updated"] == 1 and result["fields"]["status"] == "stopped"
    found = task(api, task_id)
    assert found["status"] == "stopped" and found["status_reason"] == "r" and found["status_message"] == "m"


def test_started_twice_is_a_same_status_change(api: Api) -> None:
    task_id = new_task(api, name="runner")
    first = api.ok("tasks.started", task=task_id)
    assert first["started"] == 1 and first["updated"] == 1
    assert set(first["fields"]) == STATUS_FIELDS | {"started"}
    second = api.ok("tasks.started", task=task_id, status_reason="again")
    assert second["started"] == 1 and "started" not in second["fields"]
    found = task(api, task_id)
    assert found["started"] == first["fields"]["started"] and found["status_reason"] == "again"
    assert found["status_changed"] == second["fields"]["status_changed"] == found["last_update"]


def test_status_change_moves_the_project_last_update(api: Api) -> None:
    project = new_project(api)
    task_id = new_task(api, name="in a project", project=project)
    before = api.ok("projects.get_by_id", project=project)["project"]["last_update"]
    result = api.ok("tasks.started", task=task_id)
    after = api.ok("projects.get_by_id", project=project)["project"]["last_update"]
    assert after == result["fields"]["last_update"] and after > before


def test_run_to_completion_and_publish(api: Api) -> None:
    task_id = new_task(api, name="full run")
    api.ok("tasks.started", task=task_id)
    done = api.ok("tasks.completed", task=task_id, status_reason="completed", publish=True)
    assert done["updated"] == 1 and done["published"] == 1 and done["fields"]["status"] == "published"
    found = task(api, task_id)
    assert found["status"] == "published" and found["completed"] and found["published"]
    message = fails(api, "tasks.started", 400, 110, task=task_id)
    assert "current_status=published" in message
    fails(api, "tasks.reset", 400, 110, task=task_id)
    fails(api, "tasks.edit", 400, 110, task=task_id, comment="x")


def test_completed_without_publish_and_at_an_old_version(api: Api) -> None:
    task_id = new_task(api, name="plain completion")
    api.ok("tasks.started", task=task_id)
    assert api.ok("tasks.completed", task=task_id)["published"] == 0
    old = new_task(api, name="old completion")
    api.ok("tasks.started", version="2.5", task=old)
    result = api.ok("tasks.completed", version="2.5", task=old, publish=True)
    assert "published" not in result and task(api, old)["status"] == "completed"


def test_failed_and_close(api: Api) -> None:
    task_id = new_task(api, name="will fail")
    api.ok("tasks.started", task=task_id)
    assert api.ok("tasks.failed", task=task_id, status_reason="exit 1")["fields"]["status"] == "failed"
    assert task(api, task_id)["completed"]
    fails(api, "tasks.close", 400, 110, task=task_id)
    api.ok("tasks.stopped", task=task_id)
    assert api.ok("tasks.close", task=task_id)["fields"]["status"] == "closed"


def test_publish_validates_unless_forced(api: Api) -> None:
    task_id = new_task(api, name="publish me")
    assert "new_status=published" in fails(api, "tasks.publish", 400, 110, task=task_id)
    result = api.ok("tasks.publish", task=task_id, force=True)
    assert result["fields"]["status"] == "published" and "published" in result["fields"]


def test_stop_of_a_development_task_is_immediate(api: Api) -> None:
    task_id = new_task(api, name="dev run", system_tags=["development"])
    fails(api, "tasks.stop", 400, 110, task=task_id)
    api.ok("tasks.started", task=task_id)
    result = api.ok("tasks.stop", task=task_id, status_reason="user abort")
    assert result["fields"]["status"] == "stopped" and result["fields"]["status_message"].startswith("Stopped by ")
    assert task(api, task_id)["status_reason"] == "user abort"


def test_stop_of_a_queued_task_clears_its_queue(api: Api) -> None:
    task_id = new_task(api, name="waiting", execution={"queue": "q" * 32})
    api.ok("tasks.edit", task=task_id, status="queued", force=True)
    assert api.ok("tasks.stop", task=task_id)["fields"]["status"] == "stopped"
    assert "queue" not in task(api, task_id).get("execution", {})


def test_reset_clears_the_run(api: Api) -> None:
    task_id = new_task(api, name="to reset", execution={"artifacts": [
        {"key": "in", "type": "t", "mode": "input"}, {"key": "out", "type": "t", "uri": "s3://o"}]})
    api.ok("tasks.started", task=task_id)
    api.ok("tasks.edit", task=task_id, force=True, runtime={"progress": "50"})
    api.ok("tasks.ping", task=task_id)
    api.ok("tasks.stopped", task=task_id)
    result = api.ok("tasks.reset", task=task_id, return_file_urls=True)
    assert result["updated"] == 1 and result["dequeued"] == {} and result["deleted_models"] == 0
    assert result["urls"]["artifact_urls"] == ["s3://o"]
    assert result["fields"]["status_reason"] == "reset" and result["fields"]["status_message"] == "reset"
    found = task(api, task_id)
    assert found["status"] == "created" and found["runtime"] == {} and found["last_iteration"] == 0
    assert "started" not in found and "completed" not in found and "active_duration" not in found
    assert [a["key"] for a in found["execution"]["artifacts"]] == ["in"]


def test_reset_many_reports_per_task(api: Api) -> None:
    one = new_task(api, name="reset one")
    done = new_task(api, name="reset published")
    api.ok("tasks.publish", task=done, force=True)
    result = api.ok("tasks.reset_many", ids=[one, done])
    assert [(s["id"], s["dequeued"], s["updated"]) for s in result["succeeded"]] == [(one, False, 1)]
    [failure] = result["failed"]
    assert failure["id"] == done and failure["error"]["codes"] == [400, 110]
    assert failure["error"]["data"] == {"task_id": done, "status": "published"}
    assert "status=published" in failure["error"]["msg"]


def test_delete_rules(api: Api) -> None:
    fresh = new_task(api, name="fresh")
    result = api.ok("tasks.delete", task=fresh)
    assert result["deleted"] is True and result["updated_children"] == 0
    fails(api, "tasks.get_by_id", 400, 101, task=fresh)
    running = new_task(api, name="running")
    api.ok("tasks.started", task=running)
    message = fails(api, "tasks.delete", 400, 123, task=running)
    assert "expected=created" in message and "current=in_progress" in message
    child = new_task(api, name="child", parent=running)
    assert api.ok("tasks.delete", task=running, force=True)["updated_children"] == 1
    assert task(api, child)["parent"] == f"__DELETED__{running}"


def test_archive_then_delete_without_force(api: Api) -> None:
    task_id = new_task(api, name="old run")
    api.ok("tasks.started", task=task_id)
    assert api.ok("tasks.archive", tasks=[task_id], status_message="archived by test") == {"archived": 1}
    found = task(api, task_id)
    assert "archived" in found["system_tags"] and found["status"] == "stopped"  # aborted run is stopped
    assert found["status_message"] == "archived by test"
    api.ok("tasks.delete", task=task_id)
    fails(api, "tasks.archive", 400, 101, tasks=[task_id])


def test_archive_and_unarchive_many(api: Api) -> None:
    one, two = new_task(api, name="arch one"), new_task(api, name="arch two")
    result = api.ok("tasks.archive_many", ids=[one, two, "7" * 32])
    assert result["succeeded"] == [{"id": one, "archived": True}, {"id": two, "archived": True}]
    assert result["failed"][0]["id"] == "7" * 32 and result["failed"][0]["error"]["codes"] == [400, 101]
    assert "archived" in task(api, two)["system_tags"]
    result = api.ok("tasks.unarchive_many", ids=[one])
    assert result == {"succeeded": [{"id": one, "unarchived": True}], "failed": []}
    assert "archived" not in task(api, one)["system_tags"]


def test_delete_many_keeps_going_after_a_failure(api: Api) -> None:
    deletable = new_task(api, name="deletable")
    busy = new_task(api, name="busy")
    api.ok("tasks.started", task=busy)
    result = api.ok("tasks.delete_many", ids=[busy, deletable])
    assert [s["id"] for s in result["succeeded"]] == [deletable] and result["succeeded"][0]["deleted"] is True
    assert result["failed"][0]["error"]["codes"] == [400, 123]
    assert result["failed"][0]["error"]["data"]["current"] == "in_progress"


def test_publish_many_and_stop_many(api: Api) -> None:
    stopped = new_task(api, name="stopped one")
    api.ok("tasks.started", task=stopped)
    api.ok("tasks.stopped", task=stopped)
    fresh = new_task(api, name="fresh one")
    result = api.ok("tasks.publish_many", ids=[stopped, fresh])
    assert [s["id"] for s in result["succeeded"]] == [stopped]
    assert result["succeeded"][0]["fields"]["status"] == "published"
    assert result["failed"][0]["id"] == fresh and result["failed"][0]["error"]["codes"] == [400, 110]
    running = new_task(api, name="to stop", system_tags=["development"])
    api.ok("tasks.started", task=running)
    result = api.ok("tasks.stop_many", ids=[running, fresh], force=False)
    assert [(s["id"], s["updated"], s["fields"]["status"]) for s in result["succeeded"]] == [(running, 1, "stopped")]
    assert result["failed"][0]["id"] == fresh


def test_ping_moves_last_update(api: Api) -> None:
    task_id = new_task(api, name="pinged")
    before = task(api, task_id)["last_update"]
    assert api.ok("tasks.ping", task=task_id) == {}
    assert task(api, task_id)["last_update"] > before


def test_stopping_message_for_a_task_run_by_a_live_worker(api: Api, server) -> None:
    import asyncio

    task_id = new_task(api, name="on a worker")
    api.ok("tasks.started", task=task_id)
    store = server.app.services.store

    async def report_worker() -> None:  # what workers.status_report records on the task
        doc = await store.get("tasks", task_id, companies=[doc_company])
        doc["last_worker"] = "host:0"
        assert await store.replace("tasks", doc, expected_rev=doc["rev"]) is not None

    doc_company = task(api, task_id)["company"]
    asyncio.run(report_worker())
    result = api.ok("tasks.stop", task=task_id)
    assert result["fields"]["status"] == "in_progress" and result["fields"]["status_message"] == "stopping"
    api.ok("tasks.stopped", task=task_id, status_reason="task was stopped by tasks.stop")
    assert task(api, task_id)["status"] == "stopped"
