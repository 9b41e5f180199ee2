"""X-Api-Async: a call answered at once with 202 and its id, run in the background, fetched with async.result."""

from __future__ import annotations

import time

import pytest

from .conftest import Api, running_server


def wait_for(api: Api, call_id: str, timeout: float = 15.0) -> dict:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        outcome = api.ok("async.result", id=call_id)
        if outcome["status"] != "pending":
            return outcome
        time.sleep(0.1)
    raise AssertionError(f"async call {call_id} still pending after {timeout}s")


def call_async(api: Api, endpoint: str, header: str = "X-Api-Async", **data) -> tuple[int, dict]:
    return api.raw("POST", f"/v{api.version}/{endpoint}", json=data,
                   headers={"Authorization": f"Bearer {api.token}", header: "1"})  # fmt: skip


@pytest.mark.parametrize("header", ["X-Api-Async", "X-ClearML-Async"])
def test_async_call_answers_202_then_its_result(api, header) -> None:
    status, body = call_async(api, "tasks.create", header, name="async task", type="training")
    assert status == 202 and body["meta"]["result_code"] == 202
    call_id = body["data"]["id"]
    assert call_id == body["meta"]["id"]
    outcome = wait_for(api, call_id)
    assert outcome["status"] == "done" and outcome["endpoint"] == "tasks.create"
    task = outcome["data"]["id"]
    assert api.ok("tasks.get_by_id", task=task)["task"]["name"] == "async task"


def test_failure_in_the_background_is_reported_with_its_code(api) -> None:
    status, body = call_async(api, "tasks.get_by_id", task="no-such-task")
    assert status == 202
    outcome = wait_for(api, body["data"]["id"])
    assert outcome["status"] == "failed"
    assert (outcome["error"]["code"], outcome["error"]["subcode"]) == (400, 101)
    assert "no-such-task" in outcome["error"]["msg"]


def test_invalid_call_fails_at_once_not_in_the_background(api) -> None:
    status, body = call_async(api, "tasks.create", name="x")  # too short: a validation error
    assert (status, body["meta"]["result_subcode"]) == (400, 12)


def test_results_expire_and_unknown_ids_are_refused(tmp_path) -> None:
    with running_server(tmp_path, async_result_ttl=1) as info:
        api = Api(info)
        try:
            status, body = call_async(api, "projects.create", name="expiring project", description="d")
            assert status == 202
            assert wait_for(api, body["data"]["id"])["status"] == "done"
            time.sleep(2.2)
            status, gone = api.call("async.result", id=body["data"]["id"])
            assert (status, gone["meta"]["result_subcode"]) == (400, 10)
            assert "expired" in gone["meta"]["result_msg"]
        finally:
            api.close()
