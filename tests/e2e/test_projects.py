"""projects.* end to end: the real app over HTTP on the embedded store (contract §7, §8, §4.5).

Tasks and models are put straight into the store (the documents projects.* reads), so these tests do
not depend on the tasks service.
"""

from __future__ import annotations

import asyncio
import dataclasses
import re
import uuid
from datetime import datetime, timedelta, timezone

import pytest

from specgate.core.clock import to_iso
from specgate.domain.accounts import DEFAULT_COMPANY, new_key_pair

from .conftest import Api

MAX_DEPTH = 10


def uniq(prefix: str = "proj") -> str:
    return f"{prefix}-{uuid.uuid4().hex[:8]}"


def run(coro):
    return asyncio.run(coro)


def store(server):
    return server.app.services.store


def put(server, collection: str, company: str = DEFAULT_COMPANY, **fields) -> str:
    doc = {"id": uuid.uuid4().hex, "company": company, **fields}
    run(store(server).insert(collection, doc))
    return doc["id"]


def put_task(server, project: str | None, **fields) -> str:
    base = {"name": uniq("task"), "status": "created", "system_tags": [], "type": "training"}
    if project:
        base["project"] = project
    return put(server, "tasks", **{**base, **fields})


def stored(server, collection: str, id: str, company: str = DEFAULT_COMPANY) -> dict | None:
    return run(store(server).get(collection, id, companies=[company]))


def error(api: Api, endpoint: str, **data) -> tuple[int, int, str]:
    status, body = api.call(endpoint, **data)
    meta = body["meta"]
    assert meta["result_code"] == status and body["data"] == {}
    return status, meta["result_subcode"], meta["result_msg"]


def names(projects: list[dict]) -> set[str]:
    return {p["name"] for p in projects}


def exact(name: str) -> str:
    return f"^{re.escape(name)}$"


# --- create / get_by_id ----------------------------------------------------------------------------


def test_create_then_get_by_id(api: Api):
    name = uniq()
    pid = api.ok("projects.create", name=name, description="about", tags=["b", "a"], system_tags=["s"],
                 default_output_destination="s3://bucket/out", method="get")["id"]
    assert re.fullmatch(r"[0-9a-f]{32}", pid)
    project = api.ok("projects.get_by_id", project=pid)["project"]
    assert project["id"] == pid and project["name"] == name and project["basename"] == name
    assert project["description"] == "about" and project["tags"] == ["a", "b"] and project["system_tags"] == ["s"]
    assert project["default_output_destination"] == "s3://bucket/out"
    assert project["company"] == DEFAULT_COMPANY and project["user"]
    assert project["created"] == project["last_update"]
    assert "path" not in project and "rev" not in project and "parent" not in project


def test_get_by_id_of_an_unknown_project(api: Api):
    missing = uuid.uuid4().hex
    status, sub, msg = error(api, "projects.get_by_id", project=missing)
    assert (status, sub) == (400, 401) and f"id={missing}" in msg


def test_create_normalizes_the_name_and_creates_missing_ancestors(api: Api):
    root = uniq()
    pid = api.ok("projects.create", name=f" {root}// child  /leaf ", description="")["id"]
    project = api.ok("projects.get_by_id", project=pid)["project"]
    assert project["name"] == f"{root}/child/leaf" and project["basename"] == "leaf"
    found = api.ok("projects.get_all", name=f"^{re.escape(root)}(/|$)", only_fields=["id", "name", "parent", "path", "description"])
    by_name = {p["name"]: p for p in found["projects"]}
    assert set(by_name) == {root, f"{root}/child", f"{root}/child/leaf"}
    top, mid, leaf = by_name[root], by_name[f"{root}/child"], by_name[f"{root}/child/leaf"]
    assert top["description"] == "" and "parent" not in top and top["path"] == []
    assert mid["parent"] == top["id"] and mid["path"] == [top["id"]]
    assert leaf["parent"] == mid["id"] and leaf["path"] == [top["id"], mid["id"]] and leaf["id"] == pid


def test_creating_a_child_bumps_the_parent_last_update(api: Api):
    parent = uniq()
    pid = api.ok("projects.create", name=parent, description="")["id"]
    before = api.ok("projects.get_by_id", project=pid)["project"]["last_update"]
    api.ok("projects.create", name=f"{parent}/kid", description="")
    after = api.ok("projects.get_by_id", project=pid)["project"]["last_update"]
    assert after > before
    api.ok("projects.create", name=f"{parent}/new-middle/leaf", description="")  # the middle one is auto-created
    assert api.ok("projects.get_by_id", project=pid)["project"]["last_update"] > after


@pytest.mark.parametrize(
    "name,code,sub,fragment",
    [
        ("", 400, 407, "name="),
        (" / // ", 400, 407, "name= / // "),
        ("{root}/b", 400, 12, "part=b"),
        ("{root}/ab", 400, 12, "part=ab"),
        ("/".join(f"d{i:02d}" for i in range(MAX_DEPTH + 1)), 400, 409, f"max_depth={MAX_DEPTH}"),
    ],
)
def test_create_rejects_bad_names_and_creates_nothing(api: Api, name: str, code: int, sub: int, fragment: str):
    root = uniq()
    name = name.replace("{root}", root)
    status, subcode, msg = error(api, "projects.create", name=name, description="")
    assert (status, subcode) == (code, sub) and fragment in msg
    assert api.ok("projects.get_all", name=f"^{re.escape(root)}")["projects"] == []
    assert api.ok("projects.get_all", name="^d00(/|$)")["projects"] == []


def test_create_without_a_name_is_refused(api: Api):
    status, body = api.call("projects.create", description="x")
    assert status == 400 and body["meta"]["result_subcode"] in (11, 12) and "name" in body["meta"]["result_msg"]


def test_duplicate_names_are_refused(api: Api):
    root = uniq()
    api.ok("projects.create", name=f"{root}/child", description="")
    for again in (f"{root}/child", f" {root} / child ", root):  # the same name, normalized, and an auto-created ancestor
        status, sub, msg = error(api, "projects.create", name=again, description="")
        assert (status, sub) == (400, 801), again
        assert "already exists" in msg and f"name={again.replace(' ', '')}" in msg.replace(" ", "")
    assert len(api.ok("projects.get_all", name=exact(f"{root}/child"))["projects"]) == 1


def test_parallel_creates_under_one_new_parent_share_it(server, api: Api):
    name = uniq()

    async def burst() -> list[int]:
        import httpx

        async with httpx.AsyncClient(base_url=server.url, timeout=30) as client:
            calls = [
                client.post("/v2.23/projects.create", json={"name": f"{name}/leaf{i}", "description": ""},
                            headers={"Authorization": f"Bearer {api.token}"})
                for i in range(8)
            ]
            return [r.status_code for r in await asyncio.gather(*calls)]

    assert run(burst()) == [200] * 8
    found = api.ok("projects.get_all", name=f"^{re.escape(name)}(/|$)", only_fields=["name", "parent"])["projects"]
    roots = [p for p in found if p["name"] == name]
    assert len(roots) == 1 and len(found) == 9
    root_id = api.ok("projects.get_all", name=exact(name), only_fields=["id"])["projects"][0]["id"]
    assert all(p.get("parent") == root_id for p in found if p["name"] != name)


class _Interleaving:
    """A store that yields to the event loop after every call, so racing coroutines interleave
    between any two store operations (each takes effect when called, as the embedded store's do)."""

    def __init__(self, inner):
        self.inner = inner

    def __getattr__(self, name):
        method = getattr(self.inner, name)

        async def call(*args, **kwargs):
            result = await method(*args, **kwargs)
            await asyncio.sleep(0)
            return result

        return call


def test_racing_creates_of_one_name_settle_on_one_project(tmp_path):
    from specgate.adapters.sqlite import SqliteStore
    from specgate.domain.identity import Identity
    from specgate.domain.projects import PROJECTS, Projects

    async def scenario() -> tuple[list, list[dict]]:
        raw = SqliteStore(str(tmp_path / "race.db"))
        await raw.open()
        try:
            projects = Projects(_Interleaving(raw))
            me = Identity("user", "company")
            outcomes = await asyncio.gather(
                *(projects.create(me, {"name": "racer/leaf"}) for _ in range(6)),
                *(projects.create(me, {"name": f"racer/other{i}"}) for i in range(6)),
                return_exceptions=True,
            )
            return outcomes, await raw.find(PROJECTS, companies=["company"])
        finally:
            await raw.close()

    outcomes, docs = run(scenario())
    same = [o for o in outcomes[:6] if isinstance(o, str)]
    refused = [o for o in outcomes[:6] if not isinstance(o, str)]
    assert len(same) == 1 and all(getattr(e, "code", None) and e.code.subcode == 801 for e in refused)
    assert all(isinstance(o, str) for o in outcomes[6:])
    by_name: dict[str, list] = {}
    for doc in docs:
        by_name.setdefault(doc["name"], []).append(doc)
    assert {n: len(d) for n, d in by_name.items()} == {"racer": 1, "racer/leaf": 1, **{f"racer/other{i}": 1 for i in range(6)}}
    root = by_name["racer"][0]["id"]
    assert all(d[0]["parent"] == root for n, d in by_name.items() if n != "racer")


# --- get_all ---------------------------------------------------------------------------------------


def test_get_all_as_the_sdk_looks_a_project_up(api: Api):
    name = f"{uniq('my-proj')}.v1 (x)+y"  # characters re.escape escapes
    pid = api.ok("projects.create", name=name, description="")["id"]
    api.ok("projects.create", name=name + "-other", description="")
    found = api.ok("projects.get_all", name=exact(name), only_fields=["id"], search_hidden=True,
                   shallow_search=False, method="get")
    assert found == {"projects": [{"id": pid}]}


def test_get_all_parent_means_any_ancestor_unless_shallow(api: Api):
    root = uniq()
    rid = api.ok("projects.create", name=root, description="")["id"]
    api.ok("projects.create", name=f"{root}/aaa/bbb", description="")
    api.ok("projects.create", name=f"{root}/ccc", description="")
    deep = api.ok("projects.get_all", parent=[rid], only_fields=["name"])["projects"]
    assert names(deep) == {f"{root}/aaa", f"{root}/aaa/bbb", f"{root}/ccc"}
    shallow = api.ok("projects.get_all", parent=[rid], shallow_search=True, only_fields=["name"])["projects"]
    assert names(shallow) == {f"{root}/aaa", f"{root}/ccc"}
    top = api.ok("projects.get_all", shallow_search=True, name=f"^{re.escape(root)}", only_fields=["name"])["projects"]
    assert names(top) == {root}
    # a client-supplied path is discarded
    ignored = api.ok("projects.get_all", path=[uuid.uuid4().hex], name=f"^{re.escape(root)}/ccc$", only_fields=["name"])
    assert names(ignored["projects"]) == {f"{root}/ccc"}


def test_hidden_projects_need_search_hidden_or_an_id(api: Api):
    name = uniq("hidden")
    pid = api.ok("projects.create", name=name, description="", system_tags=["hidden"])["id"]
    assert api.ok("projects.get_all", name=exact(name))["projects"] == []
    assert [p["id"] for p in api.ok("projects.get_all", name=exact(name), search_hidden=True)["projects"]] == [pid]
    assert [p["id"] for p in api.ok("projects.get_all", id=[pid])["projects"]] == [pid]


def test_get_all_filters_order_paging_and_projection(api: Api):
    root = uniq()
    ids = {}
    for base, tags, desc in (("alpha", ["red", "x"], "first one"), ("beta", ["blue"], "second"), ("gamma", ["red"], "third one")):
        ids[base] = api.ok("projects.create", name=f"{root}/{base}", description=desc, tags=tags)["id"]
    under = f"^{re.escape(root)}/"
    red = api.ok("projects.get_all", name=under, tags=["red"], only_fields=["basename"], order_by=["basename"])
    assert red["projects"] == [{"basename": "alpha"}, {"basename": "gamma"}]
    not_x = api.ok("projects.get_all", name=under, tags=["red", "-x"], only_fields=["basename"])
    assert [p["basename"] for p in not_x["projects"]] == ["gamma"]
    described = api.ok("projects.get_all", name=under, description="one$", only_fields=["basename"], order_by=["-basename"])
    assert [p["basename"] for p in described["projects"]] == ["gamma", "alpha"]
    by_basename = api.ok("projects.get_all", basename="^bet", only_fields=["id"])
    assert by_basename["projects"] == [{"id": ids["beta"]}]
    pages = [
        api.ok("projects.get_all", name=under, order_by=["-name"], page=n, page_size=2, only_fields=["basename"])["projects"]
        for n in (0, 1, 2)
    ]
    assert pages == [[{"basename": "gamma"}, {"basename": "beta"}], [{"basename": "alpha"}], []]
    unprojected = api.ok("projects.get_all", id=[ids["alpha"]])["projects"][0]
    assert {"id", "name", "basename", "created", "last_update", "parent", "company", "user"} <= set(unprojected)
    assert "path" not in unprojected and "rev" not in unprojected and unprojected["tags"] == ["red", "x"]
    without = api.ok("projects.get_all", id=[ids["alpha"]], only_fields=["-description"])["projects"][0]
    assert "description" not in without and without["id"] == ids["alpha"]


def test_get_all_scrolls(api: Api):
    root = uniq()
    for i in range(5):
        api.ok("projects.create", name=f"{root}/item{i}", description="")
    seen: list[str] = []
    scroll_id = ""  # present (even empty) starts a scroll; a null is dropped before the handler sees it
    for _ in range(4):
        page = api.ok("projects.get_all", name=f"^{re.escape(root)}/", order_by=["name"], scroll_id=scroll_id, size=2,
                      only_fields=["name"])
        scroll_id = page["scroll_id"]
        seen += [p["name"] for p in page["projects"]]
    assert seen == [f"{root}/item{i}" for i in range(5)]


def test_get_all_bad_regex_and_bad_paging(api: Api):
    status, sub, _ = error(api, "projects.get_all", name="([")
    assert (status, sub) == (400, 21)
    status, sub, msg = error(api, "projects.get_all", page=-1)
    assert (status, sub) == (400, 12) and "page" in msg


# --- get_all_ex ------------------------------------------------------------------------------------


def test_get_all_ex_stats_count_tasks_of_the_project_and_its_children(server, api: Api):
    root = uniq()
    rid = api.ok("projects.create", name=root, description="")["id"]
    cid = api.ok("projects.create", name=f"{root}/child", description="")["id"]
    empty = [api.ok("projects.create", name=f"{root}/{n}", description="")["id"] for n in ("bbb", "aaa")]
    start = datetime.now(timezone.utc) - timedelta(hours=1)
    put_task(server, rid, status="completed", started=to_iso(start), completed=to_iso(start + timedelta(seconds=90.7)))
    put_task(server, rid, status="created")
    put_task(server, cid, status="in_progress", started=to_iso(start))
    put_task(server, cid, status="stopped", started=to_iso(start), completed=to_iso(start + timedelta(seconds=30)))
    put_task(server, rid, status="failed", system_tags=["archived"])
    result = api.ok("projects.get_all_ex", id=[rid, cid], include_stats=True, order_by=["name"])["projects"]
    top, child = result
    assert top["id"] == rid and child["id"] == cid
    active = top["stats"]["active"]
    assert active["status_count"]["completed"] == 1 and active["status_count"]["created"] == 1
    assert active["status_count"]["in_progress"] == 1 and active["status_count"]["stopped"] == 1
    assert active["status_count"]["failed"] == 0 and active["total_tasks"] == 4
    assert active["total_runtime"] == 120 and active["completed_tasks_24h"] == 2
    assert "archived" not in top["stats"]
    assert top["sub_projects"] == [
        {"id": empty[1], "name": f"{root}/aaa"}, {"id": empty[0], "name": f"{root}/bbb"}, {"id": cid, "name": f"{root}/child"}
    ]
    assert child["sub_projects"] == []
    assert child["stats"]["active"]["total_tasks"] == 2 and child["stats"]["active"]["total_runtime"] == 30

    archived = api.ok("projects.get_all_ex", id=[rid], include_stats=True, stats_for_state="archived")["projects"][0]
    assert archived["stats"]["archived"]["status_count"]["failed"] == 1 and "active" not in archived["stats"]
    own = api.ok("projects.get_all_ex", id=[rid], include_stats=True, stats_with_children=False,
                 check_own_contents=True)["projects"][0]
    assert own["stats"]["active"]["total_tasks"] == 2 and own["sub_projects"] == []
    assert own["own_tasks"] == 3 and own["own_models"] == 0
    plain = api.ok("projects.get_all_ex", id=[rid])["projects"][0]
    assert "stats" not in plain and "sub_projects" not in plain


def test_get_all_ex_marks_hidden_projects_when_searching_hidden(api: Api):
    name = uniq("hid")
    pid = api.ok("projects.create", name=name, description="", system_tags=["hidden"])["id"]
    found = api.ok("projects.get_all_ex", name=exact(name), search_hidden=True, only_fields=["id"])["projects"]
    assert found == [{"id": pid, "hidden": True}]
    assert api.ok("projects.get_all_ex", name=exact(name))["projects"] == []


# --- update ----------------------------------------------------------------------------------------


def test_update_fields(api: Api):
    name = uniq()
    pid = api.ok("projects.create", name=name, description="old")["id"]
    before = api.ok("projects.get_by_id", project=pid)["project"]
    result = api.ok("projects.update", project=pid, description="new", tags=["z", "a"], default_output_destination="file:///x")
    assert result == {"updated": 1, "fields": {"description": "new", "tags": ["a", "z"], "default_output_destination": "file:///x"}}
    after = api.ok("projects.get_by_id", project=pid)["project"]
    assert after["description"] == "new" and after["tags"] == ["a", "z"] and after["name"] == name
    assert after["last_update"] > before["last_update"] and after["created"] == before["created"]


def test_rename_keeps_the_location_and_renames_descendants(api: Api):
    root = uniq()
    api.ok("projects.create", name=f"{root}/old/xxx/yyy", description="")
    old = api.ok("projects.get_all", name=exact(f"{root}/old"), only_fields=["id"])["projects"][0]["id"]
    result = api.ok("projects.update", project=old, name=f"  {root} // new ")
    assert result["updated"] == 1 and result["fields"] == {"name": f"{root}/new"}
    renamed = api.ok("projects.get_by_id", project=old)["project"]
    assert renamed["name"] == f"{root}/new" and renamed["basename"] == "new"
    found = api.ok("projects.get_all", name=f"^{re.escape(root)}/", only_fields=["name"])["projects"]
    assert names(found) == {f"{root}/new", f"{root}/new/xxx", f"{root}/new/xxx/yyy"}

    status, sub, msg = error(api, "projects.update", project=old, name=f"{uniq()}/new")
    assert (status, sub) == (400, 408) and "name=" in msg
    status, sub, _ = error(api, "projects.update", project=old, name="new")  # moving to the top level
    assert (status, sub) == (400, 408)
    api.ok("projects.create", name=f"{root}/taken", description="")
    status, sub, msg = error(api, "projects.update", project=old, name=f"{root}/taken")
    assert (status, sub) == (400, 801) and f"name={root}/taken" in msg
    status, sub, _ = error(api, "projects.update", project=old, name=f"{root}/ab")
    assert (status, sub) == (400, 12)
    assert api.ok("projects.update", project=old, name=f"{root}/new")["updated"] == 1  # its own name is fine


def test_update_of_an_unknown_project(api: Api):
    missing = uuid.uuid4().hex
    status, sub, msg = error(api, "projects.update", project=missing, description="x")
    assert (status, sub) == (400, 401) and f"id={missing}" in msg


# --- delete ----------------------------------------------------------------------------------------


def test_delete_refuses_projects_with_active_tasks_or_models_unless_forced(server, api: Api):
    root = uniq()
    rid = api.ok("projects.create", name=root, description="")["id"]
    cid = api.ok("projects.create", name=f"{root}/child", description="")["id"]
    active = put_task(server, cid, status="in_progress")
    archived = put_task(server, rid, status="stopped", system_tags=["archived"])
    elsewhere = put_task(server, None)
    status, sub, msg = error(api, "projects.delete", project=rid)
    assert (status, sub) == (400, 402) and f"id={rid}" in msg and "force" in msg
    assert stored(server, "tasks", active)["project"] == cid

    result = api.ok("projects.delete", project=rid, force=True)
    assert result["deleted"] == 2 and result["disassociated_tasks"] == 2 and result["deleted_tasks"] == 0
    for tid in (active, archived):
        task = stored(server, "tasks", tid)
        assert task is not None and "project" not in task
    assert stored(server, "tasks", elsewhere) is not None
    for pid in (rid, cid):
        status, sub, _ = error(api, "projects.get_by_id", project=pid)
        assert (status, sub) == (400, 401)

    other = api.ok("projects.create", name=uniq(), description="")["id"]
    put(server, "models", name="model", project=other, system_tags=[])
    status, sub, msg = error(api, "projects.delete", project=other)
    assert (status, sub) == (400, 405) and f"id={other}" in msg


def test_delete_with_only_archived_tasks_needs_no_force(server, api: Api):
    pid = api.ok("projects.create", name=uniq(), description="")["id"]
    tid = put_task(server, pid, system_tags=["archived"])
    assert api.ok("projects.delete", project=pid) == {"deleted": 1, "disassociated_tasks": 1, "deleted_models": 0, "deleted_tasks": 0}
    assert "project" not in stored(server, "tasks", tid)


def test_delete_contents_deletes_tasks_and_models(server, api: Api):
    root = uniq()
    rid = api.ok("projects.create", name=f"{root}/sub", description="")["id"]
    parent_task = put_task(server, rid, status="completed",
                           execution={"artifacts": [{"key": "a", "mode": "output", "uri": "s3://b/a.bin"}]})
    child_elsewhere = put_task(server, None, parent=parent_task)
    model = put(server, "models", name="m", project=rid, system_tags=[], uri="s3://b/model.pt")
    result = api.ok("projects.delete", project=rid, force=True, delete_contents=True)
    assert result["deleted"] == 1 and result["deleted_tasks"] == 1 and result["deleted_models"] == 1
    assert result["disassociated_tasks"] == 0
    assert result["urls"] == {"model_urls": ["s3://b/model.pt"], "event_urls": [], "artifact_urls": ["s3://b/a.bin"]}
    assert stored(server, "tasks", parent_task) is None and stored(server, "models", model) is None
    assert "parent" not in stored(server, "tasks", child_elsewhere)
    assert len(api.ok("projects.get_all", name=exact(root))["projects"]) == 1  # the parent stays


def test_delete_of_an_unknown_project(api: Api):
    missing = uuid.uuid4().hex
    status, sub, msg = error(api, "projects.delete", project=missing)
    assert (status, sub) == (400, 401) and f"id={missing}" in msg


# --- contents: tags, metrics, hyper-parameters -----------------------------------------------------


def test_task_and_model_tags(server, api: Api):
    root = uniq()
    rid = api.ok("projects.create", name=root, description="")["id"]
    cid = api.ok("projects.create", name=f"{root}/child", description="")["id"]
    other = api.ok("projects.create", name=uniq(), description="")["id"]
    put_task(server, rid, tags=["t-b", "t-a"], system_tags=["sys1"])
    put_task(server, cid, tags=["t-c"], system_tags=["archived"])
    put_task(server, other, tags=["t-other"])
    put(server, "models", name="m", project=cid, tags=["m-1"], system_tags=["msys"])
    tags = api.ok("projects.get_task_tags", projects=[rid])
    assert tags == {"tags": ["t-a", "t-b", "t-c"]}
    with_system = api.ok("projects.get_task_tags", projects=[rid], include_system=True)
    assert with_system == {"tags": ["t-a", "t-b", "t-c"], "system_tags": ["archived", "sys1"]}
    filtered = api.ok("projects.get_task_tags", projects=[rid], filter={"system_tags": ["-archived"]})
    assert filtered == {"tags": ["t-a", "t-b"]}
    everything = api.ok("projects.get_task_tags")["tags"]
    assert {"t-a", "t-b", "t-c", "t-other"} <= set(everything)
    assert api.ok("projects.get_model_tags", projects=[rid], include_system=True) == {"tags": ["m-1"], "system_tags": ["msys"]}


def test_unique_metric_variants_and_hyper_parameters(server, api: Api):
    root = uniq()
    rid = api.ok("projects.create", name=root, description="")["id"]
    cid = api.ok("projects.create", name=f"{root}/child", description="")["id"]
    put_task(server, rid, last_metrics={"h1": {"v1": {"metric": "loss", "variant": "train", "value": 1.0},
                                               "v2": {"metric": "loss", "variant": "val", "value": 2.0}}},
             hyperparams={"Args": {"lr": {"section": "Args", "name": "lr", "value": "0.1"},
                                   "batch": {"section": "Args", "name": "batch", "value": "8"}}})
    put_task(server, cid, last_metrics={"h2": {"v3": {"metric": "acc", "variant": "val", "value": 0.5}},
                                        "h1": {"v1": {"metric": "loss", "variant": "train", "value": 3.0}}},
             hyperparams={"General": {"seed": {"section": "General", "name": "seed", "value": "1"}}})
    metrics = api.ok("projects.get_unique_metric_variants", project=rid)["metrics"]
    assert [(m["metric"], m["variant"]) for m in metrics] == [("acc", "val"), ("loss", "train"), ("loss", "val")]
    assert metrics[1] == {"metric": "loss", "metric_hash": "h1", "variant": "train", "variant_hash": "v1"}
    own = api.ok("projects.get_unique_metric_variants", project=rid, include_subprojects=False)["metrics"]
    assert [(m["metric"], m["variant"]) for m in own] == [("loss", "train"), ("loss", "val")]

    params = api.ok("projects.get_hyper_parameters", project=rid)
    assert params == {
        "parameters": [{"section": "Args", "name": "batch"}, {"section": "Args", "name": "lr"},
                       {"section": "General", "name": "seed"}],
        "remaining": 0,
        "total": 3,
    }
    paged = api.ok("projects.get_hyper_parameters", project=rid, page=1, page_size=2)
    assert paged == {"parameters": [{"section": "General", "name": "seed"}], "remaining": 0, "total": 3}
    first = api.ok("projects.get_hyper_parameters", project=rid, page=0, page_size=1)
    assert first["remaining"] == 2 and first["parameters"] == [{"section": "Args", "name": "batch"}]
    assert api.ok("projects.get_hyper_parameters", project=uuid.uuid4().hex) == {"parameters": [], "remaining": 0, "total": 0}


# --- tenancy and public projects -------------------------------------------------------------------


@pytest.fixture(scope="module")
def other_api(server):
    """A client of a second company with its own user and key pair."""
    accounts = server.app.services.accounts
    company, user = uuid.uuid4().hex, uuid.uuid4().hex
    now = to_iso(datetime.now(timezone.utc))
    run(store(server).insert("companies", {"id": company, "company": company, "name": "other", "created": now}))
    run(store(server).insert("users", {"id": user, "company": company, "name": "bob", "role": "user", "created": now}))
    key, secret = new_key_pair()
    run(accounts._add_credentials(user, company, key, secret, "test"))
    client = Api(dataclasses.replace(server, access_key=key, secret_key=secret))
    yield client
    client.http.close()


def test_another_company_cannot_see_or_change_a_project(server, api: Api, other_api: Api):
    name = uniq("private")
    pid = api.ok("projects.create", name=name, description="mine")["id"]
    status, sub, msg = error(other_api, "projects.get_by_id", project=pid)
    assert (status, sub) == (400, 401) and pid in msg
    assert other_api.ok("projects.get_all", name=exact(name))["projects"] == []
    assert other_api.ok("projects.get_all", id=[pid])["projects"] == []
    assert other_api.ok("projects.get_all_ex", name=exact(name))["projects"] == []
    for endpoint, extra in (("projects.update", {"description": "theirs"}), ("projects.delete", {"force": True})):
        status, sub, _ = error(other_api, endpoint, project=pid, **extra)
        assert (status, sub) == (400, 401), endpoint
    status, sub, _ = error(other_api, "projects.make_public", ids=[pid])
    assert (status, sub) == (400, 401)
    put_task(server, pid, tags=["only-company-a"])
    assert "only-company-a" in api.ok("projects.get_task_tags")["tags"]
    assert "only-company-a" not in other_api.ok("projects.get_task_tags")["tags"]
    assert other_api.ok("projects.get_task_tags", projects=[pid]) == {"tags": []}
    # the other company has its own namespace: the same name is free there
    theirs = other_api.ok("projects.create", name=name, description="theirs")["id"]
    assert theirs != pid
    assert api.ok("projects.get_by_id", project=pid)["project"]["description"] == "mine"
    assert [p["id"] for p in api.ok("projects.get_all", name=exact(name))["projects"]] == [pid]


def test_public_projects_are_readable_by_all_and_writable_by_none(api: Api, other_api: Api):
    name = uniq("public")
    pid = api.ok("projects.create", name=name, description="shared")["id"]
    assert api.ok("projects.make_public", ids=[pid]) == {"updated": 1}
    seen = other_api.ok("projects.get_by_id", project=pid)["project"]
    assert seen["company"] == "" and seen["description"] == "shared" and "company_origin" not in seen
    assert [p["id"] for p in other_api.ok("projects.get_all", name=exact(name))["projects"]] == [pid]
    assert other_api.ok("projects.get_all_ex", name=exact(name), non_public=True)["projects"] == []
    for client in (api, other_api):
        status, sub, msg = error(client, "projects.update", project=pid, description="changed")
        assert (status, sub) == (403, 21) and pid in msg
        status, sub, _ = error(client, "projects.delete", project=pid, force=True)
        assert (status, sub) == (403, 21)
    status, sub, _ = error(other_api, "projects.create", name=name, description="")
    assert (status, sub) == (400, 801)
    status, sub, _ = error(other_api, "projects.make_private", ids=[pid])  # only the company it came from
    assert (status, sub) == (400, 401)
    assert api.ok("projects.make_private", ids=[pid]) == {"updated": 1}
    status, sub, _ = error(other_api, "projects.get_by_id", project=pid)
    assert (status, sub) == (400, 401)
    back = api.ok("projects.get_by_id", project=pid)["project"]
    assert back["company"] == DEFAULT_COMPANY and api.ok("projects.update", project=pid, description="mine again")["updated"] == 1


# --- the real SDK ----------------------------------------------------------------------------------


@pytest.mark.filterwarnings("ignore::DeprecationWarning")  # the SDK's vendored pyhocon uses old pyparsing names
def test_the_clearml_sdk_creates_and_finds_projects(server, tmp_path, monkeypatch: pytest.MonkeyPatch, request, sdk_sockets_absorbed):
    home = tmp_path / "home"
    home.mkdir()
    for key, value in {
        "CLEARML_API_HOST": server.url,
        "CLEARML_WEB_HOST": server.url,
        "CLEARML_FILES_HOST": server.url,
        "CLEARML_API_ACCESS_KEY": server.access_key,
        "CLEARML_API_SECRET_KEY": server.secret_key,
        "CLEARML_CONFIG_FILE": str(home / "clearml.conf"),
        "HOME": str(home),
        "CLEARML_OFFLINE_MODE": "0",
    }.items():
        monkeypatch.setenv(key, value)
    from clearml.backend_api.session.client import APIClient
    from clearml.backend_interface.util import get_or_create_project

    client = APIClient()
    session = client.session._Session__http_session  # the SDK never closes its requests session
    request.addfinalizer(session.close)
    name = uniq("sdk")
    created = client.projects.create(name=name)  # the SDK sends just {name}
    found = client.projects.get_all(name=exact(name))
    assert [p.id for p in found] == [created.id]
    project = client.projects.get_by_id(project=created.id)
    assert project.name == name and project.description == ""

    nested = f"{name}/nested run"
    first = get_or_create_project(client.session, nested)
    assert first and re.fullmatch(r"[0-9a-f]{32}", first)
    assert get_or_create_project(client.session, nested) == first  # found, not created again
    children = client.projects.get_all(parent=[created.id], only_fields=["id", "name"], _allow_extra_fields_=True)
    assert [(p.id, p.name) for p in children] == [(first, nested)]
