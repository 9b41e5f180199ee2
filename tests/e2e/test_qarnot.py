"""The official ``qarnot`` client (2.23.0), unmodified, against the gateway's Qarnot dialect
(shared/docs/dialects.md §2): connect with a token, submit jobs and tasks, wait for them to run through
their states in the background, list and paginate them, update, abort, terminate and delete — and see
the client's own exception types for unknown ids, bad bodies and bad tokens."""

from __future__ import annotations

import time
import uuid

import httpx
import pytest
import qarnot
from qarnot.connection import Connection
from qarnot.exceptions import (
    BucketStorageUnavailableException,
    MissingJobException,
    MissingTaskException,
    QarnotGenericException,
    UnauthorizedException,
)


from .conftest import server_on_store

RUNNING = ("Submitted", "PartiallyDispatched", "FullyDispatched", "PartiallyExecuting", "FullyExecuting",
           "UploadingResults", "DownloadingResults")  # fmt: skip


def connect(url: str, token: str) -> Connection:
    # retry_count=0: a server error should fail the test at once, not after the client's back-off
    return Connection(client_token=token, cluster_url=url, retry_count=0)


@pytest.fixture(scope="module", params=["sqlite", "mongo"])
def server(request, tmp_path_factory: pytest.TempPathFactory):
    """Overrides conftest's server: one per document store."""
    with server_on_store(request.param, tmp_path_factory.mktemp(f"qarnot-{request.param}"), "specgate_qarnot") as info:
        yield info


@pytest.fixture(scope="module")
def token(api) -> str:
    """A long-lived API token of the e2e user (what `specgate token create` prints), sent raw."""
    created = api.ok("auth.create_api_token", label="qarnot e2e")["token"]
    assert created != api.token
    return created


@pytest.fixture(scope="module")
def conn(server, token):
    connection = connect(server.url, token)
    yield connection
    connection._http.close()  # the client has no close()


@pytest.fixture(scope="module")
def http(server):
    client = httpx.Client(base_url=server.url, timeout=30)
    yield client
    client.close()


def tag() -> str:
    return f"t-{uuid.uuid4().hex[:10]}"


def settle(task: qarnot.task.Task, states: tuple[str, ...], timeout: float = 30) -> str:
    """Poll (faster than Task.wait's 10 s naps) until the task reaches one of ``states``."""
    deadline = time.monotonic() + timeout
    while True:
        task.update(True)
        if task._state in states:
            return task._state
        assert time.monotonic() < deadline, f"task stuck in {task._state}, expected one of {states}"
        time.sleep(0.1)


def long_task(conn: Connection, name: str, job=None) -> qarnot.task.Task:
    task = conn.create_task(name, "docker-batch", 1, job=job)
    task.constants["SPECGATE_RUN_SECONDS"] = "120"
    return task


# --- connection -------------------------------------------------------------------------------------


def test_connection_without_storage(conn, server, token) -> None:
    assert conn.s3client is None and conn.s3resource is None  # /settings said "storage": null
    with pytest.raises(BucketStorageUnavailableException):
        conn.buckets()
    info = conn.user_info
    assert isinstance(info.email, str) and info.task_count is not None
    versioned = connect(server.url + "/v1", token)  # the same API under the versioned prefix
    try:
        assert versioned.user_info.task_count == info.task_count
    finally:
        versioned._http.close()


def test_session_token_and_company_scope(server, api, conn) -> None:
    from specgate.domain.identity import Identity

    task = long_task(conn, "scoped")
    task.submit()
    session = connect(server.url, api.token)  # the ClearML session token of the same user works too
    outsider_token, _ = server.app.services.tokens.issue(Identity(user="intruder", company="another-company"))
    outsider = connect(server.url, outsider_token)
    try:
        assert session.retrieve_task(task.uuid).name == "scoped"
        with pytest.raises(MissingTaskException):  # tasks are stored per company
            outsider.retrieve_task(task.uuid)
        assert list(outsider.all_tasks()) == []
        assert outsider.user_info.task_count == 0
    finally:
        session._http.close()
        outsider._http.close()
    task.abort()


def test_settings_and_versions_are_public(http) -> None:
    for path in ("/settings", "/v1/settings"):
        response = http.get(path)
        assert response.status_code == 200 and response.json() == {"storage": None}
    response = http.get("/versions")
    assert response.status_code == 200 and {"version": "v1"} in response.json()


# --- lifecycle --------------------------------------------------------------------------------------


def test_job_and_task_lifecycle(conn) -> None:
    job = conn.create_job("e2e job", useDependencies=False)
    job.submit()
    assert job.uuid and str(uuid.UUID(job.uuid)) == job.uuid
    assert job.state == "Active"

    task = conn.create_task("e2e render", "docker-batch", 2, job=job)
    task.constants["DOCKER_CMD"] = "echo hello"
    task.labels = {"team": "specgate"}
    task.tags = ["e2e", "lifecycle"]
    task.submit()
    assert str(uuid.UUID(task.uuid)) == task.uuid
    assert task.state in RUNNING
    assert task.creation_date.year >= 2024

    assert task.wait(timeout=120) is True  # the client's own polling loop ends
    assert task.state == "Success"
    assert task.previous_state == "UploadingResults"
    assert task.errors == []
    assert sorted(i.instance_id for i in task.completed_instances) == [0, 1]
    assert task.status.execution_progress == 100
    assert task.status.succeeded_range == "0-1"

    again = conn.retrieve_task(task.uuid)
    assert again.name == "e2e render" and again.state == "Success"
    assert again.constants["DOCKER_CMD"] == "echo hello"
    assert again.tags == ["e2e", "lifecycle"] and again.labels == {"team": "specgate"}
    assert again.instancecount == 2 and again.profile == "docker-batch"
    assert [t.uuid for t in job.tasks] == [task.uuid]
    assert conn.retrieve_job(job.uuid).name == "e2e job"

    task.delete()
    with pytest.raises(MissingTaskException):
        conn.retrieve_task(again.uuid)


def test_task_without_job_and_failure(conn) -> None:
    task = conn.create_task("fails", "docker-batch", 1)
    task.constants["SPECGATE_FAIL"] = "1"
    task.constants["SPECGATE_RUN_SECONDS"] = "0"
    task.submit()
    assert settle(task, ("Success", "Failure", "Cancelled")) == "Failure"
    assert task.errors and task.errors[0].message
    assert task.completed_instances[0].state == "Failure"


def test_dependencies_run_in_order(conn) -> None:
    job = conn.create_job("e2e dependencies", useDependencies=True)
    job.submit()
    first = conn.create_task("first", "docker-batch", 1, job=job)
    first.constants["SPECGATE_RUN_SECONDS"] = "3"
    first.submit()
    second = conn.create_task("second", "docker-batch", 1, job=job)
    second.constants["SPECGATE_RUN_SECONDS"] = "0"
    second.set_task_dependencies_from_tasks([first])
    second.submit()
    assert second.dependencies.depends_on == [first.uuid]
    assert settle(first, ("FullyExecuting",)) == "FullyExecuting"
    second.update(True)
    assert second.state == "Submitted"  # it waits for the first one to end
    third = conn.create_task("third", "docker-batch", 1, job=job)
    third.set_task_dependencies_from_tasks([first])
    third.submit()
    third.abort()  # while it waits for the first one
    assert settle(third, ("Cancelled",)) == "Cancelled"
    assert settle(second, ("Success", "Failure", "Cancelled")) == "Success"
    first.update(True)
    assert first.state == "Success"

    failing = conn.create_task("failing", "docker-batch", 1, job=job)
    failing.constants.update({"SPECGATE_FAIL": "1", "SPECGATE_RUN_SECONDS": "0"})
    failing.submit()
    doomed = conn.create_task("doomed", "docker-batch", 1, job=job)
    doomed.set_task_dependencies_from_tasks([failing])
    doomed.submit()
    assert settle(doomed, ("Success", "Failure", "Cancelled")) == "Failure"
    assert "depends on" in doomed.errors[0].message

    plain = conn.create_job("no dependencies")
    plain.submit()
    loose = conn.create_task("in a job without dependencies", "docker-batch", 1, job=plain)
    loose.set_task_dependencies_from_uuids([first.uuid])
    with pytest.raises(QarnotGenericException, match="useDependencies"):  # 400
        loose.submit()


# --- listing and pagination --------------------------------------------------------------------------


def test_list_and_paginate(conn) -> None:
    label, other = tag(), tag()
    job = conn.create_job("e2e listing")
    job.tags = [label]
    job.submit()
    made = []
    for i in range(5):
        task = conn.create_task(f"listed {i}", "docker-batch", 1)
        task.tags = [label, other] if i % 2 else [label]
        task.submit()
        made.append(task.uuid)

    assert [t.uuid for t in conn.all_tasks(tags=[label])] == made
    assert [t.uuid for t in conn.all_tasks(tags=[other])] == made[1::2]
    assert [t.uuid for t in conn.all_tasks(tags_intersect=[label, other])] == made[1::2]
    everything = [t.uuid for t in conn.all_tasks()]  # summaries, no filter
    assert set(made) <= set(everything)
    assert [j.uuid for j in conn.all_jobs(tags=[label])] == [job.uuid]

    first = conn.tasks_page(maximum=2, tags=[label], summary=False)
    assert [t.uuid for t in first.page_data] == made[:2]
    assert first.is_truncated and first.next_token
    second = conn.tasks_page(token=first.next_token, maximum=2, tags=[label], summary=False)
    third = conn.tasks_page(token=second.next_token, maximum=2, tags=[label], summary=False)
    assert [t.uuid for t in second.page_data + third.page_data] == made[2:]
    assert not third.is_truncated and third.next_token is None

    summaries = conn.tasks_page(maximum=1000)
    assert set(made) <= {t.uuid for t in summaries.page_data}
    assert all(t.creation_date is not None for t in summaries.page_data)


def test_paginate_raw_envelope(conn, http, token) -> None:
    label = tag()
    for i in range(3):
        task = conn.create_task(f"raw {i}", "docker-batch", 1)
        task.tags = [label]
        task.submit()
    body = {"filter": {"operator": "Equal", "field": "Tags", "value": label}, "token": None, "maximumResults": 2}
    page = http.post("/tasks/paginate", json=body, headers={"Authorization": token}).json()
    assert (page["count"], page["total"], page["isTruncated"]) == (2, 3, True)
    body["token"] = page["nextToken"]
    rest = http.post("/v1/tasks/paginate", json=body, headers={"Authorization": token}).json()
    assert (rest["count"], rest["isTruncated"], rest["nextToken"]) == (1, False, None)
    listed = http.get("/tasks", params={"tag": label}, headers={"Authorization": token}).json()
    assert len(listed) == 3 and all(t["constants"] == [] and t["errors"] == [] for t in listed)


# --- update, abort, terminate, delete ----------------------------------------------------------------


def test_update_and_abort_running_task(conn) -> None:
    task = long_task(conn, "to abort")
    task.submit()
    assert settle(task, ("FullyExecuting",)) == "FullyExecuting"
    assert task.running_instance_count == 1

    task.tags = ["updated"]
    task.constants["EXTRA"] = "1"
    task.commit()
    again = conn.retrieve_task(task.uuid)
    assert again.tags == ["updated"] and again.constants["EXTRA"] == "1"

    task.abort()
    assert task.state in ("PendingCancel", "Cancelled")
    assert settle(task, ("Cancelled",)) == "Cancelled"
    assert task.wait() is True  # a cancelled task ends the client's loop at once
    with pytest.raises(UnauthorizedException):  # 403: it is not running any more
        task.abort()
    with pytest.raises(UnauthorizedException):
        task.commit()


def test_delete_running_task(conn) -> None:
    task = long_task(conn, "deleted while running")
    task.submit()
    uuid_ = task.uuid
    task.delete()
    assert task.state == "Deleted" and task.uuid is None
    with pytest.raises(MissingTaskException):
        conn.retrieve_task(uuid_)


def test_terminate_and_delete_job(conn) -> None:
    job = conn.create_job("e2e terminate")
    job.submit()
    task = long_task(conn, "in a terminated job", job=job)
    task.submit()
    with pytest.raises(UnauthorizedException):  # 403: the job still has a running task
        job.delete()
    job.terminate()
    assert settle(task, ("Cancelled",)) == "Cancelled"
    deadline = time.monotonic() + 30
    while (state := conn.retrieve_job(job.uuid).state) != "Completed":
        assert state == "Terminating" and time.monotonic() < deadline
        time.sleep(0.1)
    late = conn.create_task("too late", "docker-batch", 1, job=conn.retrieve_job(job.uuid))
    with pytest.raises(UnauthorizedException):  # 403: a completed job takes no more tasks
        late.submit()

    job_uuid = job.uuid
    job.delete()
    with pytest.raises(MissingJobException):
        conn.retrieve_job(job_uuid)
    with pytest.raises(MissingTaskException):
        conn.retrieve_task(task.uuid)


def test_force_delete_job_with_running_task(conn) -> None:
    job = conn.create_job("e2e force delete")
    job.submit()
    task = long_task(conn, "force deleted", job=job)
    task.submit()
    job_uuid = job.uuid
    job.delete(forceAbort=True)
    with pytest.raises(MissingJobException):
        conn.retrieve_job(job_uuid)
    with pytest.raises(MissingTaskException):
        conn.retrieve_task(task.uuid)


# --- the answers match the specs (REST answers are not validated by the server itself) ----------------


def test_answers_match_their_schemas(server, conn, http, token) -> None:
    from specgate.core.versions import parse_key

    rest = server.app.rest

    def check(endpoint: str, answer) -> None:
        entry = rest.tables.endpoints[endpoint].versions[parse_key("1.0")]
        for item in answer if isinstance(answer, list) else [answer]:
            rest.validators.check_response(entry.response, item)

    def get(path: str):
        response = http.get(path, headers={"Authorization": token})
        assert response.status_code == 200, response.text
        return response.json()

    def page(path: str) -> list:
        response = http.post(path, json={"filter": None, "token": None, "maximumResults": 5}, headers={"Authorization": token})
        assert response.status_code == 200, response.text
        return response.json()["data"]

    job = conn.create_job("schema check")
    job.submit()
    running = long_task(conn, "schema check running", job=job)
    running.submit()
    settle(running, ("FullyExecuting",))
    done = conn.create_task("schema check done", "docker-batch", 3, job=job)
    done.constants["SPECGATE_RUN_SECONDS"] = "0"
    done.submit()
    settle(done, ("Success",))
    cancelled = long_task(conn, "schema check cancelled", job=job)
    cancelled.submit()
    cancelled.abort()

    check("qarnot_server.settings", get("/settings"))
    check("qarnot_server.versions", get("/versions"))
    check("qarnot_server.info", get("/info"))
    check("qarnot_jobs.get", get(f"/jobs/{job.uuid}"))
    check("qarnot_jobs.list", get("/jobs"))
    check("qarnot_jobs.paginate", page("/jobs/paginate"))
    for task in (running, done, cancelled):
        check("qarnot_tasks.get", get(f"/tasks/{task.uuid}"))
    check("qarnot_tasks.list", get("/tasks"))
    check("qarnot_tasks.summaries", get("/tasks/summaries"))
    check("qarnot_tasks.of_job", get(f"/jobs/{job.uuid}/tasks"))
    check("qarnot_tasks.paginate", page("/tasks/paginate"))
    check("qarnot_tasks.paginate_summaries", page("/tasks/summaries/paginate"))
    running.abort()


# --- errors ------------------------------------------------------------------------------------------


def test_unknown_ids(conn) -> None:
    with pytest.raises(MissingTaskException):
        conn.retrieve_task(str(uuid.uuid4()))
    with pytest.raises(MissingJobException):
        conn.retrieve_job(str(uuid.uuid4()))
    with pytest.raises(MissingTaskException):
        conn.retrieve_task(str(uuid.uuid4()).upper())  # ids are lower case


def test_malformed_ids_are_not_found(conn) -> None:
    for url in ("/tasks/not-a-uuid", "/v1/tasks/not-a-uuid"):  # routes take UUIDs only
        response = conn._http.get(conn.cluster.rstrip("/") + url)
        assert response.status_code == 404 and "message" in response.json(), (url, response.text)
    with pytest.raises(MissingTaskException):
        conn.retrieve_task("not-a-uuid")
    with pytest.raises(MissingJobException):
        conn.retrieve_job("not-a-uuid")


def test_bad_bodies(conn) -> None:
    bad_count = conn.create_task("no instances", "docker-batch", 0)
    with pytest.raises(QarnotGenericException):
        bad_count.submit()

    bad_constant = conn.create_task("bad constant", "docker-batch", 1)
    bad_constant.constants["SPECGATE_RUN_SECONDS"] = "forever"
    with pytest.raises(QarnotGenericException, match="SPECGATE_RUN_SECONDS"):
        bad_constant.submit()

    orphan = conn.create_task("unknown job", "docker-batch", 1)
    orphan._job_uuid = str(uuid.uuid4())
    with pytest.raises(QarnotGenericException, match="job"):
        orphan.submit()


def test_error_body_shape(http, token) -> None:
    response = http.get(f"/tasks/{uuid.uuid4()}", headers={"Authorization": token})
    assert response.status_code == 404 and set(response.json()) == {"message"}
    response = http.post("/tasks", json={"profile": "docker-batch", "instanceCount": 1}, headers={"Authorization": token})
    assert response.status_code == 400 and "name" in response.json()["message"]
    for path in ("/jobs", "/jobs/"):  # the client posts to /jobs/; both spellings are served
        created = http.post(path, json={"name": "slash"}, headers={"Authorization": token})
        assert created.status_code == 201, created.text
        assert created.headers["location"].endswith("/jobs/" + created.json()["uuid"])


def test_missing_or_invalid_token(server, http) -> None:
    bad = connect(server.url, "not-a-valid-token")  # /settings is public: connecting works
    try:
        with pytest.raises(UnauthorizedException):
            bad.user_info
        with pytest.raises(UnauthorizedException):
            bad.retrieve_task(str(uuid.uuid4()))
        with pytest.raises(UnauthorizedException):
            list(bad.all_tasks())
    finally:
        bad._http.close()
    empty = connect(server.url, "")
    try:
        with pytest.raises(UnauthorizedException):
            empty.create_task("anonymous", "docker-batch", 1).submit()
    finally:
        empty._http.close()
    response = http.get("/tasks")
    assert response.status_code == 401 and set(response.json()) == {"message"}
