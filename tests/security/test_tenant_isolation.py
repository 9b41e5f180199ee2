"""Tenant isolation: a caller of company A must not read, list, change, enqueue or dequeue anything of
company B, whatever id, name filter or batch it sends, over RPC and every REST dialect (contract §4.5).

For every case A's call is made twice, once with B's id and once with a random id nobody has: the two
answers must be the same once the id is blanked out (a refusal that differs would tell A the object
exists), the answer must be a refusal or an empty result, and B's object, read back with B's own
credentials, must be unchanged. The set of actions that take an id is derived from the compiled tables,
so an action added to ``schemas/`` fails ``test_every_id_taking_action_is_covered_or_excluded`` until
a case (or a reasoned exclusion) is written for it.
"""

from __future__ import annotations

import asyncio
import json
import re
import time
import uuid
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable

import pytest

from specgate.domain.accounts import new_key_pair

from .conftest import Tenant, add_tenant, add_user, basic

GENERATED = Path(__file__).resolve().parents[2] / "src" / "specgate" / "_generated"

# A request field that names a stored object (by id, or a queue by name). Matched against every
# top-level request property of every action (through $ref/anyOf/oneOf/allOf) and every REST path
# parameter, so new actions are picked up without touching this file.
ID_FIELD = re.compile(
    r"^(ids?|uuid|tasks?|projects?|queues?|queue_name|worker|model|parent|access_key)$"
    r"|_ids?$|Ids?$|Uuid$|^new_task_(project|parent)$"
)

# Actions that take such a field but where "A names B's object" cannot happen. Each says why.
EXCLUDED = {
    # Pools are not served: any poolUuid is refused (400) before anything is looked up, so there is no
    # object of B it could name.
    "qarnot_jobs.create": "poolUuid names a pool; pools are not served and every poolUuid is refused",
}


# --- deriving the id-taking actions from the compiled tables ---------------------------------------


def _fields(schema: dict, definitions: dict, depth: int = 0) -> set[str]:
    if depth > 8 or not isinstance(schema, dict):
        return set()
    ref = schema.get("$ref")
    if isinstance(ref, str) and ref.startswith("#/definitions/"):
        return _fields(definitions.get(ref.rsplit("/", 1)[1], {}), definitions, depth + 1)
    found = set(schema.get("properties") or {})
    for key in ("anyOf", "oneOf", "allOf"):
        for branch in schema.get(key) or ():
            found |= _fields(branch, definitions, depth + 1)
    return found


def id_taking_actions() -> dict[str, set[str]]:
    dispatch = json.loads((GENERATED / "dispatch.json").read_text())
    schemas = json.loads((GENERATED / "validators.json").read_text())["schemas"]
    found: dict[str, set[str]] = {}
    for name, endpoint in dispatch["endpoints"].items():
        for version in endpoint["versions"]:
            for key in ("request", "batch_request"):
                schema = schemas.get(version.get(key) or "")
                if schema:
                    ids = {f for f in _fields(schema, schema.get("definitions") or {}) if ID_FIELD.search(f)}
                    if ids:
                        found.setdefault(name, set()).update(ids)
    for profile in dispatch["dialects"].values():
        for route in profile["routes"]:
            for param in re.findall(r"{(\w+):", route["path"]):
                found.setdefault(route["endpoint"], set()).add(param)
    return found


# --- the two companies and B's objects ---------------------------------------------------------------


def uniq(prefix: str) -> str:
    return f"{prefix}-{uuid.uuid4().hex[:12]}"


FRAMES = ["http://example.invalid/f/img_1.jpg", "http://example.invalid/f/img_2.jpg"]
ENVIRONMENT = "5e8c889607389fe0f466c72d"


@dataclass
class World:
    a: Tenant
    b: Tenant
    b2: Tenant  # a second user of B (owns B's CVAT user number 2)
    ids: dict[str, Any] = field(default_factory=dict)  # B's objects by kind
    own: dict[str, Any] = field(default_factory=dict)  # A's own objects by kind
    names: dict[str, str] = field(default_factory=dict)  # B's names and tags
    baseline: dict[str, Any] = field(default_factory=dict)


def rest_ok(tenant: Tenant, method: str, path: str, status: int, **kwargs) -> Any:
    r = tenant.http.request(method, path, headers=tenant.bearer, **kwargs)
    assert r.status_code == status, (method, path, r.status_code, r.text)
    return r.json() if r.content else None


def wait_for(check: Callable[[], bool], what: str, timeout: float = 30) -> None:
    deadline = time.monotonic() + timeout
    while not check():
        assert time.monotonic() < deadline, f"timed out waiting for {what}"
        time.sleep(0.05)


def build_b(w: World) -> None:
    b, n = w.b, w.names
    n.update(project=uniq("b-proj"), task=uniq("b-task"), queue=uniq("b-queue"), tag=uniq("b-tag"),
             model_tag=uniq("b-model-tag"), cvat=uniq("b-cvat"), qjob=uniq("b-job"), qtask=uniq("b-qtask"),
             dr=uniq("b-dr"), worker=uniq("b-worker"))  # fmt: skip
    w.ids["project"] = p = b.ok("projects.create", name=n["project"], description="B's")["id"]
    w.ids["task"] = t = b.ok(
        "tasks.create", name=n["task"], type="testing", project=p, tags=[n["tag"]],
        hyperparams={"Args": {"lr": {"section": "Args", "name": "lr", "value": "0.1"}}},
        configuration={"cfg": {"name": "cfg", "value": "B's secret config"}},
    )["id"]  # fmt: skip
    b.ok("tasks.add_or_update_artifacts", task=t, artifacts=[{"key": "art", "type": "custom", "mode": "input"}])
    b.ok("tasks.add_or_update_model", task=t, name="m", model=uuid.uuid4().hex, type="input")
    w.ids["queue"] = q = b.ok("queues.create", name=n["queue"])["id"]
    w.ids["queued_task"] = tq = b.ok("tasks.create", name=uniq("b-queued"), type="training", project=p)["id"]
    b.ok("tasks.enqueue", task=tq, queue=q)
    w.ids["worker"] = n["worker"]
    b.ok("workers.register", worker=n["worker"], queues=[q])
    b.ok("workers.status_report", worker=n["worker"], task=t, timestamp=int(time.time() * 1000),
         machine_stats={"cpu_usage": [12.0], "memory_used": 1000})  # fmt: skip
    b.ok("events.add", task=t, type="log", msg="B's secret log line", level="info")
    w.ids["model"] = m = uuid.uuid4().hex  # no models.* service: B's model is written into the store
    store = b.api.server.app.services.store
    doc = {"id": m, "company": b.company, "user": b.user, "name": uniq("b-model"), "project": p,
           "tags": [n["model_tag"]], "system_tags": [], "ready": False}  # fmt: skip
    asyncio.run(store.insert("models", doc))
    # an asynchronous call of B, and its kept outcome
    r = b.api.http.post("/v2.23/tasks.get_by_id", json={"task": t}, headers={**b.bearer, "X-Api-Async": "1"})
    assert r.status_code == 202, r.text
    w.ids["async"] = r.json()["data"]["id"]
    wait_for(lambda: b.ok("async.result", id=w.ids["async"])["status"] != "pending", "B's async call")
    w.ids["key"] = b.key
    w.ids["user"] = b.user
    # CVAT: B's task number 1 with data attached (a finished request), user number 2 owns task 2
    w.ids["cvat_task"] = rest_ok(b, "POST", "/api/tasks", 201, json={"name": n["cvat"], "labels": [{"name": "cat"}]})["id"]
    rq = rest_ok(b, "POST", f"/api/tasks/{w.ids['cvat_task']}/data/", 202, json={"remote_files": FRAMES, "image_quality": 70})
    w.ids["cvat_request"] = rq["rq_id"]
    wait_for(lambda: rest_ok(b, "GET", f"/api/requests/{rq['rq_id']}", 200)["status"] in ("finished", "failed"), "B's CVAT request")
    second = rest_ok(w.b2, "POST", "/api/tasks", 201, json={"name": uniq("b2-cvat"), "labels": []})
    w.ids["cvat_user"] = second["owner"]["id"]
    assert (w.ids["cvat_task"], w.ids["cvat_user"]) == (1, 2)  # numbers are per company: A has neither
    # Qarnot: a job with one long-running task
    w.ids["qarnot_job"] = rest_ok(b, "POST", "/jobs/", 201, json={"name": n["qjob"], "tags": [n["tag"]]})["uuid"]
    w.ids["qarnot_task"] = rest_ok(b, "POST", "/tasks", 201, json={
        "name": n["qtask"], "profile": "docker-batch", "instanceCount": 1, "jobUuid": w.ids["qarnot_job"],
        "tags": [n["tag"]], "constants": [{"key": "SPECGATE_RUN_SECONDS", "value": "600"}],
    })["uuid"]  # fmt: skip
    wait_for(lambda: rest_ok(b, "GET", f"/tasks/{w.ids['qarnot_task']}", 200)["state"] == "FullyExecuting", "B's Qarnot task")
    # DataRobot: a custom task with one version
    w.ids["dr_task"] = ct = rest_ok(b, "POST", "/api/v2/customTasks/", 201, json={
        "name": n["dr"], "targetType": "Binary", "language": "python"})["id"]  # fmt: skip
    files = [("baseEnvironmentId", (None, ENVIRONMENT)), ("file", ("main.py", b"X = 1")), ("filePath", (None, "main.py"))]
    w.ids["dr_version"] = rest_ok(b, "POST", f"/api/v2/customTasks/{ct}/versions/", 201, files=files)["id"]


def build_a(w: World) -> None:
    a = w.a
    w.own["project"] = a.ok("projects.create", name=uniq("a-proj"), description="A's")["id"]
    w.own["task"] = a.ok("tasks.create", name=uniq("a-task"), type="training", project=w.own["project"])["id"]
    w.own["queue"] = a.ok("queues.create", name=uniq("a-queue"))["id"]
    w.own["worker"] = uniq("a-worker")
    w.own["dr_task"] = rest_ok(a, "POST", "/api/v2/customTasks/", 201, json={"name": uniq("a-dr"), "targetType": "Binary"})["id"]
    w.own["qarnot_job"] = rest_ok(a, "POST", "/jobs/", 201, json={"name": uniq("a-job"), "useDependencies": True})["uuid"]


# --- reading B's objects back, with B's credentials -------------------------------------------------

QARNOT_STABLE = ("uuid", "name", "shortname", "tags", "constants", "state", "jobUuid")


def _worker(w: World) -> Any:
    found = [x for x in w.b.ok("workers.get_all")["workers"] if x["id"] == w.ids["worker"]]
    for x in found:
        (x.get("task") or {}).pop("running_time", None)
    return found


def _key(w: World) -> Any:
    r = w.b.http.get("/auth.login", headers={"Authorization": basic(w.b.key, w.b.secret)})
    labels = {c["access_key"]: c.get("label") for c in w.b.ok("auth.get_credentials")["credentials"]}
    return r.status_code, labels


def _qarnot(w: World, path: str) -> Any:
    doc = rest_ok(w.b, "GET", path, 200)
    return {k: doc.get(k) for k in QARNOT_STABLE}


SNAPSHOTS: dict[str, Callable[[World], Any]] = {
    "task": lambda w: w.b.ok("tasks.get_by_id", task=w.ids["task"])["task"],
    "queued_task": lambda w: w.b.ok("tasks.get_by_id", task=w.ids["queued_task"])["task"],
    "project": lambda w: w.b.ok("projects.get_by_id", project=w.ids["project"])["project"],
    "queue": lambda w: w.b.ok("queues.get_by_id", queue=w.ids["queue"])["queue"],
    "worker": _worker,
    "events": lambda w: w.b.ok("events.get_task_log", task=w.ids["task"])["events"],
    "model": lambda w: asyncio.run(w.b.api.server.app.services.store.get("models", w.ids["model"], companies=[w.b.company])),
    "async": lambda w: w.b.ok("async.result", id=w.ids["async"]),
    "key": _key,
    "user": lambda w: w.b.ok("users.get_current_user")["user"],
    "cvat_task": lambda w: rest_ok(w.b, "GET", f"/api/tasks/{w.ids['cvat_task']}", 200),
    "cvat_user": lambda w: rest_ok(w.b, "GET", "/api/tasks/2", 200)["owner"],
    "cvat_request": lambda w: rest_ok(w.b, "GET", f"/api/requests/{w.ids['cvat_request']}", 200),
    "qarnot_job": lambda w: _qarnot(w, f"/jobs/{w.ids['qarnot_job']}"),
    "qarnot_task": lambda w: _qarnot(w, f"/tasks/{w.ids['qarnot_task']}"),
    "dr_task": lambda w: rest_ok(w.b, "GET", f"/api/v2/customTasks/{w.ids['dr_task']}/", 200),
    "dr_version": lambda w: rest_ok(w.b, "GET", f"/api/v2/customTasks/{w.ids['dr_task']}/versions/{w.ids['dr_version']}/", 200),
}

# a stand-in nobody has, shaped like B's id of that kind
RANDOM: dict[str, Callable[[], Any]] = {
    "cvat_task": lambda: 987654,
    "cvat_user": lambda: 98765,
    "cvat_request": lambda: str(uuid.uuid4()),
    "qarnot_job": lambda: str(uuid.uuid4()),
    "qarnot_task": lambda: str(uuid.uuid4()),
    "dr_task": lambda: uuid.uuid4().hex[:24],
    "dr_version": lambda: uuid.uuid4().hex[:24],
    "key": lambda: new_key_pair()[0],
    "worker": lambda: uniq("b-worker"),
    "queue_name": lambda: uniq("b-queue"),
    "task_name": lambda: uniq("b-task"),
    "project_name": lambda: uniq("b-proj"),
    "tag": lambda: uniq("b-tag"),
    "cvat_name": lambda: uniq("b-cvat"),
    "dr_name": lambda: uniq("b-dr"),
}
# kinds whose "B value" is a name rather than an id, and the object they name
NAMED = {"queue_name": ("queue", "queue"), "task_name": ("task", "task"), "project_name": ("project", "project"),
         "tag": ("tag", "task"), "cvat_name": ("cvat", "cvat_task"), "dr_name": ("dr", "dr_task")}  # fmt: skip


@pytest.fixture(scope="module")
def world(server):
    w = World(add_tenant(server, "alpha"), add_tenant(server, "beta"), None)  # type: ignore[arg-type]
    w.b2 = add_user(server, w.b, "beta-two")
    try:
        build_b(w)
        build_a(w)
        w.baseline = {kind: snap(w) for kind, snap in SNAPSHOTS.items()}
        yield w
    finally:
        for t in (w.a, w.b, w.b2):
            t.close()


# --- cases -------------------------------------------------------------------------------------------

B = "\0B"  # stands for B's object (or the random stand-in) in a request template


def own(kind: str) -> str:
    return f"\0A:{kind}"


def fill(template: Any, value: Any, w: World) -> Any:
    if isinstance(template, str):
        if template == B:
            return value
        if template.startswith("\0A:") and template[3:] in w.own:
            return w.own[template[3:]]
        return re.sub(r"\0A:([a-z_]+)", lambda m: str(w.own[m[1]]), template).replace(B, str(value))
    if isinstance(template, list):
        return [fill(x, value, w) for x in template]
    if isinstance(template, dict):
        return {k: fill(v, value, w) for k, v in template.items()}
    return template


Answer = tuple[int, Any]


@dataclass(frozen=True)
class Case:
    action: str
    label: str
    target: str  # the kind of B's object named (a key of World.ids, or of NAMED)
    send: Callable[[World, Any], Answer]
    expect: Callable[[Answer], bool]
    check: tuple[str, ...] = ()  # further snapshots of B to compare (the target's is always compared)

    @property
    def id(self) -> str:
        return f"{self.action}[{self.label}]"


def rpc(action: str, target: str, expect, label: str = "", check: tuple[str, ...] = (), version: str | None = None,
        **template) -> Case:  # fmt: skip
    def send(w: World, value: Any) -> Answer:
        status, body = w.a.api.call(action, version, **fill(template, value, w))
        meta = body["meta"]
        assert meta["result_code"] == status and isinstance(body["data"], dict)
        return status, {"subcode": meta["result_subcode"], "msg": meta["result_msg"], "data": body["data"]}

    return Case(action, label or ",".join(f"{k}" for k in template), target, send, expect, check)


def rpc_lines(action: str, target: str, expect, items: list[dict], label: str = "lines") -> Case:
    def send(w: World, value: Any) -> Answer:
        lines = "\n".join(json.dumps(fill(item, value, w)) for item in items)
        r = w.a.api.http.post(f"/v2.23/{action}", content=lines.encode(),
                              headers={**w.a.bearer, "Content-Type": "application/json-lines"})  # fmt: skip
        body = r.json()
        return r.status_code, {"subcode": body["meta"]["result_subcode"], "msg": body["meta"]["result_msg"], "data": body["data"]}

    return Case(action, label, target, send, expect)


def rest(action: str, target: str, method: str, path: str, expect=None, label: str = "", check: tuple[str, ...] = (),
         **kwargs) -> Case:  # fmt: skip
    def send(w: World, value: Any) -> Answer:
        r = w.a.http.request(method, fill(path, value, w), headers=w.a.bearer, **fill(kwargs, value, w))
        return r.status_code, (r.json() if r.content else None)

    return Case(action, label or f"{method} {path.replace(B, '{B}')}", target, send, expect or http(404), check)


def err(status: int, subcode: int) -> Callable[[Answer], bool]:
    return lambda answer: (answer[0], answer[1]["subcode"]) == (status, subcode)


def http(status: int) -> Callable[[Answer], bool]:
    return lambda answer: answer[0] == status


def ok_with(predicate: Callable[[dict], bool]) -> Callable[[Answer], bool]:
    return lambda answer: answer[0] == 200 and predicate(answer[1]["data"])


def empty(key: str) -> Callable[[Answer], bool]:
    return ok_with(lambda data: data.get(key) in ([], {}, None, 0))


def failed_only(status: int, subcode: int) -> Callable[[Answer], bool]:
    """A *_many answer where the one id failed with the given code and nothing succeeded."""
    return ok_with(lambda d: d["succeeded"] == [] and [f["error"]["codes"] for f in d["failed"]] == [[status, subcode]])


TASK_NOT_FOUND, PROJECT_NOT_FOUND, QUEUE_NOT_FOUND = err(400, 101), err(400, 401), err(400, 701)
EVENTS_NOT_ADDED = err(400, 131)
REST_PAGE_EMPTY = lambda a: a[0] == 200 and a[1]["data"] == [] and a[1]["total"] == 0  # noqa: E731
REST_LIST_EMPTY = lambda a: a[0] == 200 and (a[1] == [] or a[1].get("count", a[1].get("totalCount", 1)) == 0)  # noqa: E731


def status_ops() -> list[Case]:
    cases = []
    for action in ("tasks.started", "tasks.stopped", "tasks.failed", "tasks.completed", "tasks.close", "tasks.publish"):
        cases.append(rpc(action, "task", TASK_NOT_FOUND, task=B, force=True))
    for action in ("tasks.stop", "tasks.reset", "tasks.delete"):
        cases.append(rpc(action, "queued_task", TASK_NOT_FOUND, check=("queue",), task=B, force=True))
    for action in ("tasks.stop_many", "tasks.reset_many", "tasks.delete_many", "tasks.publish_many"):
        cases.append(rpc(action, "queued_task", failed_only(400, 101), check=("queue",), ids=[B], force=True))
    for action in ("tasks.archive_many", "tasks.unarchive_many"):
        cases.append(rpc(action, "queued_task", failed_only(400, 101), check=("queue",), ids=[B]))
    cases.append(rpc("tasks.archive", "queued_task", TASK_NOT_FOUND, check=("queue",), tasks=[B]))
    return cases


CASES: list[Case] = [
    # --- tasks: reads ---
    rpc("tasks.get_by_id", "task", TASK_NOT_FOUND, task=B),
    rpc("tasks.get_all", "task", empty("tasks"), label="id", id=[B]),
    rpc("tasks.get_all", "task_name", empty("tasks"), label="name", name=f"^{B}$"),
    rpc("tasks.get_all", "project", empty("tasks"), label="project", project=[B]),
    rpc("tasks.get_all", "task", empty("tasks"), label="parent", parent=B),
    rpc("tasks.get_all", "user", empty("tasks"), label="user", user=[B]),
    rpc("tasks.get_all", "tag", empty("tasks"), label="tags", tags=[B]),
    rpc("tasks.get_all", "task_name", empty("tasks"), label="_any_ pattern", _any_={"pattern": B, "fields": ["name", "comment"]}),
    rpc("tasks.get_all", "task_name", empty("tasks"), label="search_text", search_text=B),
    rpc("tasks.get_all_ex", "task", empty("tasks"), label="id", id=[B]),
    rpc("tasks.get_all_ex", "task_name", empty("tasks"), label="name", name=B),
    rpc("tasks.get_all_ex", "project", empty("tasks"), label="project", project=[B], include_subprojects=True),
    rpc("tasks.get_by_id_ex", "task", empty("tasks"), id=[B]),
    rpc("tasks.get_types", "project", empty("types"), projects=[B]),
    rpc("tasks.get_hyper_params", "task", TASK_NOT_FOUND, tasks=[B]),
    rpc("tasks.get_configurations", "task", TASK_NOT_FOUND, tasks=[B]),
    rpc("tasks.get_configuration_names", "task", empty("configurations"), tasks=[B]),
    # --- tasks: writes ---
    rpc("tasks.edit", "task", TASK_NOT_FOUND, task=B, name="renamed by A", force=True),
    rpc("tasks.edit", "project", PROJECT_NOT_FOUND, label="own task,project", task=own("task"), project=B),
    rpc("tasks.edit", "task", TASK_NOT_FOUND, label="own task,parent", task=own("task"), parent=B),
    rpc("tasks.update", "task", TASK_NOT_FOUND, task=B, name="renamed by A"),
    rpc("tasks.update", "project", PROJECT_NOT_FOUND, label="own task,project", task=own("task"), project=B),
    rpc_lines("tasks.update_batch", "task", TASK_NOT_FOUND, [{"task": B, "name": "renamed by A"}]),
    rpc_lines("tasks.update_batch", "task", TASK_NOT_FOUND, [{"task": own("task"), "comment": "a"}, {"task": B, "comment": "b"}],
              label="own and B's"),  # fmt: skip
    rpc("tasks.create", "project", PROJECT_NOT_FOUND, label="project", name="a-new", type="training", project=B),
    rpc("tasks.create", "task", TASK_NOT_FOUND, label="parent", name="a-new", type="training", parent=B),
    rpc("tasks.validate", "project", PROJECT_NOT_FOUND, label="project", name="a-new", type="training", project=B),
    rpc("tasks.validate", "task", TASK_NOT_FOUND, label="parent", name="a-new", type="training", parent=B),
    rpc("tasks.clone", "task", TASK_NOT_FOUND, task=B),
    rpc("tasks.clone", "project", PROJECT_NOT_FOUND, label="own task,new_task_project", task=own("task"), new_task_project=B),
    rpc("tasks.clone", "task", TASK_NOT_FOUND, label="own task,new_task_parent", task=own("task"), new_task_parent=B),
    rpc("tasks.move", "task", TASK_NOT_FOUND, label="ids", ids=[B], project=own("project")),
    rpc("tasks.move", "project", PROJECT_NOT_FOUND, label="own ids,project", ids=[own("task")], project=B),
    rpc("tasks.update_tags", "task", TASK_NOT_FOUND, version="2.26", ids=[B], add_tags=["by-a"]),  # a draft-only action
    rpc("tasks.make_public", "task", TASK_NOT_FOUND, ids=[B]),
    rpc("tasks.make_private", "task", TASK_NOT_FOUND, ids=[B]),
    rpc("tasks.set_requirements", "task", TASK_NOT_FOUND, task=B, requirements={"pip": "evil==1"}),
    rpc("tasks.edit_hyper_params", "task", TASK_NOT_FOUND, task=B, hyperparams=[{"section": "Args", "name": "lr", "value": "9"}]),
    rpc("tasks.delete_hyper_params", "task", TASK_NOT_FOUND, task=B, hyperparams=[{"section": "Args", "name": "lr"}]),
    rpc("tasks.edit_configuration", "task", TASK_NOT_FOUND, task=B, configuration=[{"name": "cfg", "value": "x"}]),
    rpc("tasks.delete_configuration", "task", TASK_NOT_FOUND, task=B, configuration=["cfg"]),
    rpc("tasks.add_or_update_artifacts", "task", TASK_NOT_FOUND, task=B, artifacts=[{"key": "art", "type": "x", "mode": "input"}]),
    rpc("tasks.delete_artifacts", "task", TASK_NOT_FOUND, task=B, artifacts=[{"key": "art", "mode": "input"}]),
    rpc("tasks.add_or_update_model", "task", TASK_NOT_FOUND, task=B, name="m", model=uuid.uuid4().hex, type="input"),
    rpc("tasks.delete_models", "task", TASK_NOT_FOUND, task=B, models=[{"name": "m", "type": "input"}]),
    rpc("tasks.ping", "task", ok_with(lambda d: d == {}), task=B),
    *status_ops(),
    # --- tasks: queueing ---
    rpc("tasks.enqueue", "task", TASK_NOT_FOUND, label="task", task=B, queue=own("queue")),
    rpc("tasks.enqueue", "queue", QUEUE_NOT_FOUND, label="own task,queue", task=own("task"), queue=B),
    rpc("tasks.enqueue_many", "task", failed_only(400, 101), label="ids", ids=[B], queue=own("queue")),
    rpc("tasks.enqueue_many", "queue", failed_only(400, 701), label="own ids,queue", ids=[own("task")], queue=B),
    rpc("tasks.dequeue", "queued_task", ok_with(lambda d: d.get("updated") == 0), check=("queue",), task=B),
    rpc("tasks.dequeue", "queued_task", ok_with(lambda d: d.get("updated") == 0), check=("queue",),
        label="all queues", task=B, remove_from_all_queues=True),  # fmt: skip
    rpc("tasks.dequeue_many", "queued_task", ok_with(lambda d: all(not s.get("updated") for s in d["succeeded"])),
        check=("queue",), ids=[B]),  # fmt: skip
    # --- queues ---
    rpc("queues.get_by_id", "queue", QUEUE_NOT_FOUND, queue=B),
    rpc("queues.get_all", "queue", empty("queues"), label="id", id=[B]),
    rpc("queues.get_all", "queue_name", empty("queues"), label="name", name=f"^{B}$"),
    rpc("queues.get_all_ex", "queue", empty("queues"), label="id", id=[B]),
    rpc("queues.get_all_ex", "queue_name", empty("queues"), label="name", name=B),
    rpc("queues.update", "queue", QUEUE_NOT_FOUND, queue=B, name="renamed-by-a"),
    rpc("queues.delete", "queue", QUEUE_NOT_FOUND, check=("queued_task",), queue=B, force=True),
    rpc("queues.get_num_entries", "queue", QUEUE_NOT_FOUND, queue=B),
    rpc("queues.peek_task", "queue", QUEUE_NOT_FOUND, queue=B),
    rpc("queues.get_next_task", "queue", QUEUE_NOT_FOUND, check=("queued_task",), queue=B),
    rpc("queues.get_next_task", "queue", QUEUE_NOT_FOUND, check=("queued_task",), label="queue,get_task_info",
        queue=B, get_task_info=True),  # fmt: skip
    rpc("queues.get_next_task", "queued_task", ok_with(lambda d: d == {}), check=("queue",), label="own queue,task",
        queue=own("queue"), task=B),  # fmt: skip
    rpc("queues.add_task", "queue", QUEUE_NOT_FOUND, label="queue,own task", queue=B, task=own("task")),
    rpc("queues.add_task", "task", TASK_NOT_FOUND, label="own queue,task", queue=own("queue"), task=B),
    rpc("queues.remove_task", "queue", QUEUE_NOT_FOUND, check=("queued_task",), label="queue", queue=B, task=own("task")),
    rpc("queues.remove_task", "queued_task", err(400, 703), check=("queue",), label="own queue,task", queue=own("queue"), task=B),
    *[
        rpc(f"queues.{move}", "queue", QUEUE_NOT_FOUND, label="queue", queue=B, task=own("task"))
        for move in ("move_task_forward", "move_task_backward", "move_task_to_front", "move_task_to_back")
    ],
    *[
        rpc(f"queues.{move}", "queued_task", err(400, 703), check=("queue",), label="own queue,task", queue=own("queue"), task=B)
        for move in ("move_task_forward", "move_task_backward", "move_task_to_front", "move_task_to_back")
    ],
    rpc("queues.get_queue_metrics", "queue", empty("queues"), queue_ids=[B], from_date=int(time.time()) - 3600,
        to_date=int(time.time()), interval=60),  # fmt: skip
    # --- projects ---
    rpc("projects.get_by_id", "project", PROJECT_NOT_FOUND, project=B),
    rpc("projects.get_all", "project", empty("projects"), label="id", id=[B]),
    rpc("projects.get_all", "project_name", empty("projects"), label="name", name=f"^{B}$"),
    rpc("projects.get_all_ex", "project", empty("projects"), label="id", id=[B], include_stats=True),
    rpc("projects.get_all_ex", "project_name", empty("projects"), label="name", name=B),
    rpc("projects.update", "project", PROJECT_NOT_FOUND, project=B, description="changed by A"),
    rpc("projects.delete", "project", PROJECT_NOT_FOUND, check=("task",), project=B, force=True),
    rpc("projects.make_public", "project", PROJECT_NOT_FOUND, ids=[B]),
    rpc("projects.make_private", "project", PROJECT_NOT_FOUND, ids=[B]),
    rpc("projects.get_hyper_parameters", "project", empty("parameters"), project=B),
    rpc("projects.get_unique_metric_variants", "project", empty("metrics"), project=B),
    rpc("projects.get_task_tags", "project", ok_with(lambda d: not d.get("tags")), projects=[B]),
    rpc("projects.get_model_tags", "project", ok_with(lambda d: not d.get("tags")), check=("model",), projects=[B]),
    # --- events ---
    rpc("events.add", "task", EVENTS_NOT_ADDED, check=("events",), task=B, type="log", msg="by A"),
    rpc("events.add", "model", EVENTS_NOT_ADDED, label="model_event", task=B, type="training_stats_scalar",
        metric="loss", variant="total", value=1.0, iter=1, model_event=True),  # fmt: skip
    rpc_lines("events.add_batch", "task", EVENTS_NOT_ADDED, [{"task": B, "type": "log", "msg": "by A"}]),
    rpc_lines("events.add_batch", "task", EVENTS_NOT_ADDED, [{"task": B, "type": "training_stats_scalar", "metric": "m",
              "variant": "v", "value": 1.0, "iter": 1}], label="scalar"),  # fmt: skip
    rpc("events.get_task_log", "task", TASK_NOT_FOUND, task=B),
    # --- workers ---
    rpc("workers.get_metric_keys", "worker", empty("categories"), worker_ids=[B]),
    rpc("workers.get_stats", "worker", empty("workers"), worker_ids=[B], from_date=int(time.time()) - 3600,
        to_date=int(time.time()) + 3600, interval=60, items=[{"key": "cpu_usage", "category": "avg"}]),  # fmt: skip
    rpc("workers.get_runtime_properties", "worker", empty("runtime_properties"), worker=B),
    rpc("workers.register", "queue", QUEUE_NOT_FOUND, label="own worker,queues", worker=own("worker"), queues=[B]),
    rpc("workers.register", "worker", ok_with(lambda d: d == {}), label="B's worker name", worker=B),
    rpc("workers.status_report", "task", TASK_NOT_FOUND, label="own worker,task", worker=own("worker"), task=B,
        timestamp=int(time.time() * 1000)),  # fmt: skip
    rpc("workers.unregister", "worker", ok_with(lambda d: d == {}), worker=B),
    # --- auth and asynchronous calls ---
    rpc("async.result", "async", err(400, 10), id=B),
    rpc("auth.revoke_credentials", "key", ok_with(lambda d: d == {"revoked": 0}), access_key=B),
    rpc("auth.edit_credentials", "key", err(400, 75), access_key=B, label="renamed by A"),
    # --- CVAT (ids are per-company numbers: B's 1 and 2 do not exist for A) ---
    rest("cvat_tasks.retrieve", "cvat_task", "GET", f"/api/tasks/{B}"),
    rest("cvat_tasks.partial_update", "cvat_task", "PATCH", f"/api/tasks/{B}", json={"name": "renamed by A"}),
    rest("cvat_tasks.delete", "cvat_task", "DELETE", f"/api/tasks/{B}"),
    rest("cvat_tasks.create_data", "cvat_task", "POST", f"/api/tasks/{B}/data/", json={"remote_files": FRAMES, "image_quality": 70}),
    rest("cvat_requests.retrieve", "cvat_request", "GET", f"/api/requests/{B}"),
    rest("cvat_tasks.list", "cvat_name", "GET", "/api/tasks", REST_LIST_EMPTY, label="name", params={"name": B}),
    rest("cvat_tasks.list", "cvat_name", "GET", "/api/tasks", REST_LIST_EMPTY, label="search", params={"search": B}),
    # --- Qarnot ---
    rest("qarnot_jobs.get", "qarnot_job", "GET", f"/jobs/{B}"),
    rest("qarnot_jobs.delete", "qarnot_job", "DELETE", f"/jobs/{B}", check=("qarnot_task",)),
    rest("qarnot_jobs.terminate", "qarnot_job", "POST", f"/jobs/{B}/terminate", check=("qarnot_task",)),
    rest("qarnot_tasks.of_job", "qarnot_job", "GET", f"/jobs/{B}/tasks"),
    rest("qarnot_tasks.get", "qarnot_task", "GET", f"/tasks/{B}"),
    rest("qarnot_tasks.update", "qarnot_task", "PUT", f"/tasks/{B}", json={"constants": [{"key": "BY_A", "value": "1"}]}),
    rest("qarnot_tasks.update_resources", "qarnot_task", "PATCH", f"/tasks/{B}"),
    rest("qarnot_tasks.abort", "qarnot_task", "POST", f"/tasks/{B}/abort"),
    rest("qarnot_tasks.delete", "qarnot_task", "DELETE", f"/tasks/{B}"),
    rest("qarnot_tasks.create", "qarnot_job", "POST", "/tasks", http(400), label="jobUuid",
         json={"name": "a-task", "profile": "docker-batch", "instanceCount": 1, "jobUuid": B}),  # fmt: skip
    rest("qarnot_tasks.create", "qarnot_task", "POST", "/tasks", http(400), label="own job,dependsOn",
         json={"name": "a-task", "profile": "docker-batch", "instanceCount": 1, "jobUuid": own("qarnot_job"),
               "dependencies": {"dependsOn": [B]}}),  # fmt: skip
    rest("qarnot_tasks.paginate", "qarnot_task", "POST", "/tasks/paginate", REST_PAGE_EMPTY, label="filter uuid",
         json={"filter": {"field": "Uuid", "operator": "Equal", "value": B}, "maximumResults": 10}),  # fmt: skip
    rest("qarnot_tasks.paginate_summaries", "qarnot_task", "POST", "/tasks/summaries/paginate", REST_PAGE_EMPTY,
         label="filter uuid", json={"filter": {"field": "Uuid", "operator": "Equal", "value": B}, "maximumResults": 10}),
    rest("qarnot_jobs.paginate", "qarnot_job", "POST", "/jobs/paginate", REST_PAGE_EMPTY, label="filter uuid",
         json={"filter": {"field": "Uuid", "operator": "Equal", "value": B}, "maximumResults": 10}),  # fmt: skip
    rest("qarnot_tasks.list", "tag", "GET", "/tasks", REST_LIST_EMPTY, label="tag", params={"tag": B}),
    rest("qarnot_tasks.summaries", "tag", "GET", "/tasks/summaries", REST_LIST_EMPTY, label="tag", params={"tag": B}),
    rest("qarnot_jobs.list", "tag", "GET", "/jobs", REST_LIST_EMPTY, label="tag", params={"tag": B}),
    # --- DataRobot ---
    rest("datarobot_custom_tasks.get", "dr_task", "GET", f"/api/v2/customTasks/{B}/"),
    rest("datarobot_custom_tasks.update", "dr_task", "PATCH", f"/api/v2/customTasks/{B}/", json={"name": "renamed by A"}),
    rest("datarobot_custom_tasks.delete", "dr_task", "DELETE", f"/api/v2/customTasks/{B}/", check=("dr_version",)),
    rest("datarobot_custom_tasks.versions_list", "dr_task", "GET", f"/api/v2/customTasks/{B}/versions/"),
    rest("datarobot_custom_tasks.versions_get", "dr_version", "GET", f"/api/v2/customTasks/{B}/versions/{B}/",
         label="B's task and version"),  # fmt: skip
    rest("datarobot_custom_tasks.versions_get", "dr_version", "GET", f"/api/v2/customTasks/{own('dr_task')}/versions/{B}/",
         label="own task, B's version"),  # fmt: skip
    rest("datarobot_custom_tasks.versions_create", "dr_task", "POST", f"/api/v2/customTasks/{B}/versions/",
         files=[("baseEnvironmentId", (None, ENVIRONMENT)), ("file", ("x.py", b"Y = 2")), ("filePath", (None, "x.py"))]),
    rest("datarobot_custom_tasks.versions_create_from_previous", "dr_task", "PATCH", f"/api/v2/customTasks/{B}/versions/",
         files=[("baseEnvironmentId", (None, ENVIRONMENT)), ("file", ("x.py", b"Y = 2")), ("filePath", (None, "x.py"))]),
    rest("datarobot_custom_tasks.list", "dr_name", "GET", "/api/v2/customTasks/", REST_LIST_EMPTY, label="searchFor",
         params={"searchFor": B}),  # fmt: skip
    # creating CVAT tasks last: a refused create must not leave A a task numbered like B's
    rest("cvat_tasks.create", "cvat_user", "POST", "/api/tasks", http(400), label="owner_id",
         json={"name": "a-cvat", "labels": [], "owner_id": B}),  # fmt: skip
    rest("cvat_tasks.create", "cvat_user", "POST", "/api/tasks", http(400), label="assignee_id",
         json={"name": "a-cvat", "labels": [], "assignee_id": B}),  # fmt: skip
]


def _blank(answer: Answer, value: Any) -> str:
    text = json.dumps(answer, sort_keys=True)
    if isinstance(value, int):
        return re.sub(rf"(?<![0-9]){value}(?![0-9])", "<ID>", text)
    return text.replace(str(value), "<ID>")


def _b_value(w: World, target: str) -> Any:
    if target in NAMED:
        return w.names[NAMED[target][0]]
    return w.ids[target]


@pytest.mark.parametrize("case", CASES, ids=lambda c: c.id)
def test_a_cannot_reach_bs_object(world: World, case: Case) -> None:
    """A's call naming B's object is refused exactly as one naming nothing, and B's object stays as it was."""
    theirs = _b_value(world, case.target)
    stand_in = RANDOM.get(case.target, lambda: uuid.uuid4().hex)()
    answer = case.send(world, theirs)
    nothing = case.send(world, stand_in)
    assert _blank(answer, theirs) == _blank(nothing, stand_in), "B's object is answered differently from a missing one"
    assert case.expect(answer), f"not refused: {answer}"
    kind = NAMED[case.target][1] if case.target in NAMED else case.target
    for k in (kind, *case.check):
        assert SNAPSHOTS[k](world) == world.baseline[k], f"A's call changed B's {k}"


def test_every_id_taking_action_is_covered_or_excluded() -> None:
    """New actions that take an id fail here until they get a case (or a reasoned exclusion)."""
    taking = set(id_taking_actions())
    covered = {c.action for c in CASES}
    assert not sorted(taking - covered - set(EXCLUDED)), "id-taking actions without an isolation case"
    assert not sorted(set(EXCLUDED) & covered), "excluded and covered at once"
    assert not sorted(set(EXCLUDED) - taking), "stale exclusions"


def test_b_still_sees_all_of_its_objects_unchanged(world: World) -> None:
    """After every case ran (module order), nothing of B moved: the full snapshot is the baseline."""
    assert {kind: snap(world) for kind, snap in SNAPSHOTS.items()} == world.baseline
    assert rest_ok(world.a, "GET", "/api/tasks", 200)["count"] == 0


def test_a_listings_never_mention_b(world: World) -> None:
    """Unfiltered lists and aggregates A can ask for (tasks, projects, queues, workers, tags, types,
    statistics, credentials, every dialect's lists) contain no id, name or tag of B."""
    a, now = world.a, int(time.time())
    window = {"from_date": now - 3600, "to_date": now + 60, "interval": 60}
    answers = [
        a.ok("tasks.get_all"), a.ok("tasks.get_all_ex"), a.ok("projects.get_all_ex", include_stats=True),
        a.ok("queues.get_all", max_task_entries=10), a.ok("workers.get_all"), a.ok("projects.get_task_tags"),
        a.ok("projects.get_model_tags"), a.ok("tasks.get_types"), a.ok("queues.get_queue_metrics", **window),
        a.ok("workers.get_metric_keys"), a.ok("workers.get_activity_report", **window),
        a.ok("workers.get_stats", items=[{"key": "cpu_usage", "category": "max"}], **window),
        a.ok("auth.get_credentials"), a.ok("users.get_current_user"),
        rest_ok(a, "GET", "/api/tasks", 200), rest_ok(a, "GET", "/tasks", 200), rest_ok(a, "GET", "/jobs", 200),
        rest_ok(a, "GET", "/tasks/summaries", 200), rest_ok(a, "POST", "/tasks/paginate", 200, json={}),
        rest_ok(a, "POST", "/jobs/paginate", 200, json={}), rest_ok(a, "GET", "/api/v2/customTasks/", 200),
    ]  # fmt: skip
    text = json.dumps(answers)
    secrets = [v for v in (*world.ids.values(), *world.names.values()) if isinstance(v, str)]
    assert [v for v in secrets if v in text] == []
    assert "testing" not in a.ok("tasks.get_types")["types"]  # only B has a task of that type
    assert a.ok("workers.get_stats", items=[{"key": "cpu_usage", "category": "max"}], **window)["workers"] == []
    assert rest_ok(a, "GET", "/info", 200)["taskCount"] == 0


def test_bs_names_are_free_for_a(world: World) -> None:
    """Unique names are per company: A creating a project, queue or Qarnot job under B's name is not told
    the name is taken (that would reveal B's object)."""
    a, n = world.a, world.names
    assert a.ok("projects.create", name=n["project"], description="A's")["id"] != world.ids["project"]
    assert a.ok("queues.create", name=n["queue"])["id"] != world.ids["queue"]
    status, body = a.rpc("queues.create", name=n["queue"])
    assert (status, body["meta"]["result_subcode"]) == (400, 801)  # the check itself works within A
    b_job = rest_ok(world.b, "GET", f"/jobs/{world.ids['qarnot_job']}", 200)
    job = rest_ok(a, "POST", "/jobs/", 201, json={"name": n["qjob"], "shortname": b_job["shortname"]})
    assert job["uuid"] != world.ids["qarnot_job"]
    for kind in ("project", "queue", "qarnot_job"):
        assert SNAPSHOTS[kind](world) == world.baseline[kind]


def test_bs_public_task_is_readable_but_not_writable_by_a(world: World) -> None:
    """A task B made public (contract §4.5) is readable by A, but A cannot change it, take it private or
    run it; B's own copy of the facts stays as it was."""
    a, b = world.a, world.b
    public = b.ok("tasks.create", name=uniq("b-public"), type="training")["id"]
    assert b.ok("tasks.make_public", ids=[public])["updated"] == 1
    before = b.ok("tasks.get_by_id", task=public)["task"]
    assert a.ok("tasks.get_by_id", task=public)["task"]["id"] == public
    for endpoint, data in (
        ("tasks.edit", {"name": "by A"}), ("tasks.enqueue", {"queue": world.own["queue"]}), ("tasks.delete", {"force": True}),
        ("tasks.started", {"force": True}), ("tasks.update", {"name": "by A"}),
    ):  # fmt: skip
        status, body = a.rpc(endpoint, task=public, **data)
        assert (status, body["meta"]["result_subcode"]) == (403, 21), (endpoint, body["meta"])
    status, body = a.rpc("tasks.make_private", ids=[public])
    assert (status, body["meta"]["result_subcode"]) == (400, 101)
    assert b.ok("tasks.get_by_id", task=public)["task"] == before


def test_enqueue_by_bs_queue_name_makes_a_queue_of_a_own(world: World) -> None:
    """Queue names are per company: A enqueueing into "B's queue name" gets a new queue of its own."""
    a = world.a
    task = a.ok("tasks.create", name=uniq("a-named"), type="training")["id"]
    a.ok("tasks.enqueue", task=task, queue_name=world.names["queue"])
    mine = a.ok("queues.get_all", name=f"^{world.names['queue']}$")["queues"]
    assert len(mine) == 1 and mine[0]["id"] != world.ids["queue"] and [e["task"] for e in mine[0]["entries"]] == [task]
    assert SNAPSHOTS["queue"](world) == world.baseline["queue"]
    a.ok("tasks.dequeue", task=task)


def test_a_status_report_naming_bs_queue_shows_a_nothing_of_it(world: World) -> None:
    """A worker's report may name any queue id; listing it must not reveal B's queue (name, size, head)."""
    a = world.a

    def listed(queue: str) -> str:
        worker = uniq("a-reporter")
        a.ok("workers.status_report", worker=worker, queue=queue, queues=[queue], timestamp=int(time.time() * 1000))
        entry = next(x for x in a.ok("workers.get_all")["workers"] if x["id"] == worker)
        a.ok("workers.unregister", worker=worker)
        return json.dumps([entry.get("queue"), entry.get("queues")]).replace(queue, "<ID>")

    assert listed(world.ids["queue"]) == listed(uuid.uuid4().hex)
    assert SNAPSHOTS["queue"](world) == world.baseline["queue"]
