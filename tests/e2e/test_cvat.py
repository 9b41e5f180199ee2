"""The official ``cvat-sdk`` client (2.80.0), unmodified, against the gateway's CVAT dialect
(shared/docs/dialects.md §1): the about handshake, password login (session cookies) and token mode,
the task lifecycle (create, list across pages, retrieve, partial update, attach data as a background
request polled through /api/requests, delete), logout — and the client's own exception types for
unknown ids, bad bodies and missing or bad credentials. Data stays per company."""

from __future__ import annotations

import json
import time
import uuid

import httpx
import pytest
from cvat_sdk import make_client
from cvat_sdk.api_client import exceptions, models
from cvat_sdk.core.client import Client, Config
from cvat_sdk.core.proxies.tasks import ResourceType


from .test_tasks_support import second_company

FRAMES = ["http://example.invalid/frames/img_10.jpg", "http://example.invalid/frames/img_2.jpg",
          "http://example.invalid/frames/img_1.jpg"]  # fmt: skip


def fast(client: Client) -> Client:
    client.config.status_check_period = 0.05  # the default 5 s poll would make the test slow
    return client


@pytest.fixture(scope="module")
def client(server):
    c = fast(make_client(server.url, credentials=(server.access_key, server.secret_key)))
    yield c
    c.close()


@pytest.fixture(scope="module")
def http(server):
    c = httpx.Client(base_url=server.url, timeout=30)
    yield c
    c.close()


def body(error: exceptions.ApiException) -> dict:
    return json.loads(error.body)


def name() -> str:
    return f"cvat-{uuid.uuid4().hex[:10]}"


# --- handshake and authentication --------------------------------------------------------------------


def test_about_is_anonymous_and_reports_a_version_the_client_supports(server, http) -> None:
    r = http.get("/api/server/about")
    assert r.status_code == 200, r.text
    assert set(r.json()) >= {"name", "description", "version", "logo_url", "subtitle"}
    # the client raises here if the server's version is not one it supports
    with Client(server.url, config=Config(allow_unsupported_server=False)) as c:
        assert str(c.get_server_version()) == "2.80.0"


def test_password_login_sets_session_cookies(client) -> None:
    cookies = client.api_client.cookies
    assert cookies["sessionid"].value and cookies["csrftoken"].value
    assert client.tasks.list() is not None


def test_bad_password_is_a_400_with_non_field_errors(server) -> None:
    with pytest.raises(exceptions.ApiException) as raised:
        make_client(server.url, credentials=(server.access_key, "wrong"))
    assert raised.value.status == 400
    assert list(body(raised.value)) == ["non_field_errors"]


def test_missing_or_bad_credentials_give_the_unauthorized_exception(server) -> None:
    with Client(server.url) as anonymous:
        with pytest.raises(exceptions.UnauthorizedException):
            anonymous.tasks.list()
    with make_client(server.url, access_token="not-a-token") as bad:
        with pytest.raises(exceptions.UnauthorizedException):
            bad.tasks.list()


def test_token_mode_with_an_api_token(server, api) -> None:
    status, body = api.call("auth.create_api_token", label="cvat")
    assert status == 200, body
    with make_client(server.url, access_token=body["data"]["token"]) as c:
        task = c.tasks.create({"name": name()})
        assert c.tasks.retrieve(task.id).name == task.name
        task.remove()


def test_the_session_token_and_basic_credentials_work_as_well(server, http) -> None:
    r = http.post("/api/auth/login", json={"username": server.access_key, "password": server.secret_key})
    assert r.status_code == 200, r.text
    assert 0 < len(r.json()["key"]) <= 40
    session = r.cookies["sessionid"]
    http.cookies.clear()
    assert http.get("/api/tasks", headers={"Authorization": f"Bearer {session}"}).status_code == 200
    assert http.get("/api/tasks", headers={"Cookie": f"sessionid={session}"}).status_code == 200
    assert http.get("/api/tasks", auth=(server.access_key, server.secret_key)).status_code == 200


def test_logout_ends_the_session(server) -> None:
    c = make_client(server.url, credentials=(server.access_key, server.secret_key))
    session = c.api_client.cookies["sessionid"].value
    c.logout()
    with httpx.Client(base_url=server.url, timeout=30) as h:
        r = h.get("/api/tasks", headers={"Cookie": f"sessionid={session}"})
    assert r.status_code == 401 and "detail" in r.json()
    c.close()


# --- the task lifecycle ---------------------------------------------------------------------------------


def test_task_lifecycle(client) -> None:
    spec = models.TaskWriteRequest(
        name=name(),
        labels=[models.PatchedLabelRequest(name="car", color="#ff0000"), models.PatchedLabelRequest(name="person")],
        subset="train",
        bug_tracker="https://example.invalid/issues/1",
    )
    task = client.tasks.create(spec)
    assert isinstance(task.id, int) and task.id > 0
    assert task.name == spec.name and task.size == 0 and task.organization is None
    assert task.jobs.completed == 0 and task.jobs.validation == 0 and task.labels.url.endswith(f"task_id={task.id}")
    assert task.owner.username and isinstance(task.owner.id, int)
    assert task.created_date.tzinfo is not None and task.updated_date >= task.created_date
    assert task.subset == "train" and task.status == "annotation" and task.assignee is None

    again = client.tasks.retrieve(task.id)
    assert again.name == task.name and again.url.endswith(f"/api/tasks/{task.id}")

    task.update({"name": spec.name + " renamed", "assignee_id": task.owner.id})
    assert task.name == spec.name + " renamed" and task.assignee.id == task.owner.id
    assert task.assignee_updated_date is not None
    task.update({"assignee_id": None})  # null clears; the other fields keep their values
    assert task.assignee is None and task.name == spec.name + " renamed" and task.subset == "train"

    task.upload_data(FRAMES, resource_type=ResourceType.REMOTE, params={"sorting_method": "natural"})
    assert task.size == 3 and task.data is not None and task.mode == "annotation"
    assert task.jobs.count == 1 and task.segment_size == 3

    found = client.tasks.list(name=task.name)
    assert [t.id for t in found] == [task.id]

    task.remove()
    with pytest.raises(exceptions.NotFoundException):
        client.tasks.retrieve(task.id)
    client.tasks.remove_by_ids([task.id])  # a 404 here is tolerated by the client


def test_list_follows_pages_and_sorts(client, http) -> None:
    prefix = name()
    made = [client.tasks.create({"name": f"{prefix}-{i:02d}", "subset": prefix}) for i in range(12)]
    listed = client.tasks.list(subset=prefix)  # page_size defaults to 10: the client asks for page 2
    assert sorted(t.id for t in listed) == sorted(t.id for t in made)
    assert [t.id for t in listed] == sorted((t.id for t in made), reverse=True)  # newest first
    by_name = client.tasks.list(subset=prefix, sort="name", page_size=5)
    assert [t.name for t in by_name] == sorted(t.name for t in made)
    searched = client.tasks.list(search=prefix.upper() + "-1")
    assert sorted(t.name for t in searched) == [f"{prefix}-10", f"{prefix}-11"]

    session = {"Cookie": f"sessionid={client.api_client.cookies['sessionid'].value}"}
    page = http.get("/api/tasks", params={"subset": prefix, "page": 2, "page_size": 5}, headers=session).json()
    assert page["count"] == 12 and len(page["results"]) == 5
    assert page["next"].startswith("http") and "page=3" in page["next"] and "page=1" in page["previous"]
    past = http.get("/api/tasks", params={"subset": prefix, "page": 4, "page_size": 5}, headers=session)
    assert past.status_code == 404 and past.json() == {"detail": "Invalid page."}
    client.tasks.remove_by_ids([t.id for t in made])


def test_background_request_moves_through_its_states(client) -> None:
    task = client.tasks.create({"name": name(), "segment_size": 2})
    result, _ = task.api.create_data(task.id, data_request=models.DataRequest(remote_files=FRAMES, frame_filter="step=1"))
    seen: list[str] = []
    deadline = time.monotonic() + 30
    while not seen or seen[-1] not in ("finished", "failed"):
        assert time.monotonic() < deadline, seen
        request, _ = client.api_client.requests_api.retrieve(result.rq_id)
        assert request.operation.type == "create:task" and request.operation.task_id == task.id
        assert isinstance(request.message, str)
        if not seen or seen[-1] != request.status.value:
            seen.append(request.status.value)
        time.sleep(0.03)
    # polled every 30 ms while each step waits 0.3 s: every state is seen, in order
    assert seen == ["queued", "started", "finished"]
    assert request.started_date <= request.finished_date < request.expiry_date
    task.fetch()
    assert task.size == 3 and task.jobs.count == 2 and task.segment_size == 2

    with pytest.raises(exceptions.ApiException) as raised:  # data can be attached once
        task.api.create_data(task.id, data_request=models.DataRequest(remote_files=FRAMES))
    assert raised.value.status == 400
    with pytest.raises(exceptions.NotFoundException):
        client.api_client.requests_api.retrieve(str(uuid.uuid4()))
    task.remove()


# --- errors ------------------------------------------------------------------------------------------


def test_unknown_ids_give_the_not_found_exception(client) -> None:
    with pytest.raises(exceptions.NotFoundException) as raised:
        client.tasks.retrieve(987654321)
    assert body(raised.value) == {"detail": "Not found."}
    with pytest.raises(exceptions.NotFoundException):
        client.api_client.tasks_api.partial_update(987654321, patched_task_write_request={"name": "x"})
    with pytest.raises(exceptions.NotFoundException):
        client.api_client.tasks_api.destroy(987654321)


def test_bad_bodies_are_400_field_maps(client, http) -> None:
    with pytest.raises(exceptions.ApiException) as raised:
        client.tasks.create({"name": name(), "assignee_id": 987654})
    assert raised.value.status == 400 and list(body(raised.value)) == ["assignee_id"]

    cookies = client.api_client.cookies
    headers = {"Cookie": f"sessionid={cookies['sessionid'].value}; csrftoken={cookies['csrftoken'].value}",
               "X-CSRFToken": cookies["csrftoken"].value}  # fmt: skip
    r = http.post("/api/tasks", json={"labels": []}, headers=headers)
    assert r.status_code == 400 and list(r.json()) == ["name"] and isinstance(r.json()["name"], list)
    r = http.post("/api/tasks", json={"name": ""}, headers=headers)
    assert r.status_code == 400 and "name" in r.json()
    task = client.tasks.create({"name": name()})
    r = http.patch(f"/api/tasks/{task.id}", json={"name": None}, headers=headers)
    assert r.status_code == 400 and "name" in r.json()
    r = http.post(f"/api/tasks/{task.id}/data/", json={"image_quality": 70}, headers=headers)
    assert r.status_code == 400 and "remote_files" in r.json()
    task.remove()


# --- tenancy -----------------------------------------------------------------------------------------


def test_tasks_stay_within_their_company(server, client) -> None:
    mine = client.tasks.create({"name": name()})
    other_api = second_company(server)
    try:
        other = fast(make_client(server.url, credentials=(other_api.server.access_key, other_api.server.secret_key)))
        with other:
            assert other.tasks.list() == []
            with pytest.raises(exceptions.NotFoundException):
                other.tasks.retrieve(mine.id)
            theirs = other.tasks.create({"name": name()})
            assert theirs.id == 1  # numbering is per company
            theirs.upload_data(FRAMES[:1], resource_type=ResourceType.REMOTE)
            assert theirs.size == 1
            assert [t.id for t in other.tasks.list()] == [1]
        assert client.tasks.retrieve(mine.id).name == mine.name
        assert all(t.name != theirs.name for t in client.tasks.list())
    finally:
        other_api.close()
        mine.remove()
